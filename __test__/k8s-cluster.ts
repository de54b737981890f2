/**
 * A real one-node Kubernetes v1.37.2 for __test__/k8s-e2e.test.ts: an
 * embedded etcd, kube-apiserver, kube-controller-manager (daemonset and
 * serviceaccount controllers), kube-scheduler and a kubelet on the test
 * containerd (helpers/containerd.ts: NRI on, private paths), all on
 * 127.0.0.1 with free ports and everything under one temp dir. No CNI: pods
 * use the host network.
 *
 * What kubelet changes on the host anyway, and how it is undone by stop():
 * the sysctls it sets without protectKernelDefaults (saved before, written
 * back), iptables chains (makeIPTablesUtilChains: false; any new KUBE-*
 * chain is removed), paths it hard-codes (/var/lib/kubelet/device-plugins,
 * /var/log/containers symlinks, ...: whatever did not exist before is
 * removed), every process started here (killed, found by the temp dir in
 * its command line). hostChanges() says what is still different.
 *
 * Binaries: $IWSD_K8S_BIN, else <repo>/.tools/k8s/v1.37.2/bin (tools/k8s/build.sh).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import type { TestContainerd } from './helpers/containerd.js';
import { killByCommandLine, processes, terminate, unmountUnder } from './helpers/process.js';

export const K8S_VERSION = 'v1.37.2';
export const K8S_BIN = process.env.IWSD_K8S_BIN || fileURLToPath(new URL(`../.tools/k8s/${K8S_VERSION}/bin`, import.meta.url));
const BINARIES = ['etcd-embed', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kubelet', 'kubectl'];

export function k8sMissing(): string | undefined {
  const missing = BINARIES.filter((b) => !existsSync(join(K8S_BIN, b)));
  return missing.length ? `${missing.join(', ')} not in ${K8S_BIN} (run tools/k8s/build.sh, or npm run test:k8s)` : undefined;
}

/** The sysctls kubelet sets when protectKernelDefaults is false. */
const SYSCTLS = ['vm/overcommit_memory', 'vm/panic_on_oom', 'kernel/panic', 'kernel/panic_on_oops', 'kernel/keys/root_maxkeys', 'kernel/keys/root_maxbytes'];
/** Host paths kubelet (or a runtime default) may create despite --root-dir. */
const HOST_PATHS = ['/var/lib/kubelet', '/var/log/containers', '/var/log/pods', '/run/kubernetes', '/var/run/kubernetes', '/etc/kubernetes', '/var/lib/cni', '/etc/cni', '/opt/cni', '/run/containerd', '/var/lib/containerd', '/opt/containerd', '/run/iwsd', '/var/run/nri', '/run/nri'];

interface HostSnapshot {
  sysctls: Record<string, string>;
  paths: Record<string, string[] | null>;
  iptables: Record<string, string[]>;
}

function iptablesChains(): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const tool of ['iptables', 'ip6tables']) {
    for (const table of ['filter', 'nat', 'mangle']) {
      const r = spawnSync(tool, ['-w', '-t', table, '-S'], { encoding: 'utf8' });
      if (r.status !== 0) continue; // not installed, or no such table
      out[`${tool}/${table}`] = r.stdout.split('\n').filter((l) => l.startsWith('-N ') || l.startsWith('-A ')).sort();
    }
  }
  return out;
}

function snapshot(): HostSnapshot {
  const sysctls: Record<string, string> = {};
  for (const s of SYSCTLS) sysctls[s] = readFileSync(`/proc/sys/${s}`, 'utf8').trim();
  const paths: Record<string, string[] | null> = {};
  for (const p of HOST_PATHS) {
    try {
      paths[p] = lstatSync(p).isDirectory() ? readdirSync(p).sort() : [];
    } catch {
      paths[p] = null;
    }
  }
  return { sysctls, paths, iptables: iptablesChains() };
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

export class TestCluster {
  readonly lab = mkdtempSync(join(tmpdir(), 'iwsd-k8s-'));
  readonly nodeName = 'iwsd-e2e';
  readonly timings: Record<string, number> = {};
  readonly #procs = new Map<string, ChildProcess>();
  readonly #before: HostSnapshot = snapshot();
  #ports: Record<string, number> = {};
  readonly cd: TestContainerd;

  private constructor(cd: TestContainerd) {
    this.cd = cd;
  }

  get kubeconfig(): string {
    return join(this.lab, 'kubeconfig');
  }

  /** A directory on a shared mount (Bidirectional hostPath volumes need one), for iwsd's state. */
  get sharedDir(): string {
    return join(this.lab, 'shared');
  }

  static async start(cd: TestContainerd): Promise<TestCluster> {
    const c = new TestCluster(cd);
    try {
      await c.#start();
      return c;
    } catch (err) {
      await c.stop();
      throw err;
    }
  }

  async #start(): Promise<void> {
    const t0 = Date.now();
    const L = this.lab;
    for (const d of ['etcd', 'pki', 'apiserver-certs', 'kcm-certs', 'scheduler-certs', 'kubelet', 'kubelet-certs', 'manifests', 'pod-logs', 'shared', 'logs']) mkdirSync(join(L, d), { recursive: true });
    // Bidirectional propagation needs the hostPath on a shared mount; the host's / is private here.
    // A bind of our own dir onto itself, made shared: one mount under the temp dir, removed by stop().
    for (const args of [['--bind', this.sharedDir, this.sharedDir], ['--make-shared', this.sharedDir]]) {
      const r = spawnSync('mount', args, { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`mount ${args.join(' ')}: ${r.stderr}`);
    }
    for (const p of ['etcdClient', 'etcdPeer', 'apiserver', 'kubelet', 'kubeletHealthz', 'kcm', 'scheduler']) this.#ports[p] = await freePort();
    const P = this.#ports;

    const token = randomBytes(16).toString('hex');
    writeFileSync(join(L, 'pki/tokens.csv'), `${token},iwsd-e2e-admin,iwsd-e2e-admin,system:masters\n`, { mode: 0o600 });
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    writeFileSync(join(L, 'pki/sa.pub'), publicKey.export({ type: 'spki', format: 'pem' }));
    writeFileSync(join(L, 'pki/sa.key'), privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    writeFileSync(
      this.kubeconfig,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters:',
        `- name: e2e\n  cluster:\n    server: https://127.0.0.1:${P.apiserver}\n    insecure-skip-tls-verify: true`,
        'users:',
        `- name: admin\n  user:\n    token: ${token}`,
        'contexts:',
        '- name: e2e\n  context:\n    cluster: e2e\n    user: admin',
        'current-context: e2e',
        '',
      ].join('\n'),
      { mode: 0o600 },
    );

    this.#spawn('etcd', 'etcd-embed', ['--data-dir', join(L, 'etcd'), '--listen-client', `http://127.0.0.1:${P.etcdClient}`, '--listen-peer', `http://127.0.0.1:${P.etcdPeer}`]);
    this.#spawn('kube-apiserver', 'kube-apiserver', [
      `--etcd-servers=http://127.0.0.1:${P.etcdClient}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      // a loopback advertise address is refused by the default endpoint reconciler
      '--endpoint-reconciler-type=none',
      `--secure-port=${P.apiserver}`,
      `--cert-dir=${join(L, 'apiserver-certs')}`,
      '--service-cluster-ip-range=10.96.0.0/24',
      '--service-account-issuer=https://kubernetes.default.svc',
      `--service-account-key-file=${join(L, 'pki/sa.pub')}`,
      `--service-account-signing-key-file=${join(L, 'pki/sa.key')}`,
      `--token-auth-file=${join(L, 'pki/tokens.csv')}`,
      '--authorization-mode=AlwaysAllow',
      '--allow-privileged=true',
      '--profiling=false',
    ]);
    await this.#until('the API server ready', () => this.kubectlRaw(['get', '--raw', '/readyz']).code === 0, 120_000);
    this.timings.apiserverReadyMs = Date.now() - t0;

    const common = [`--kubeconfig=${this.kubeconfig}`, '--leader-elect=false', '--bind-address=127.0.0.1', '--profiling=false'];
    this.#spawn('kube-controller-manager', 'kube-controller-manager', [...common, '--controllers=daemonset,serviceaccount', `--secure-port=${P.kcm}`, `--cert-dir=${join(L, 'kcm-certs')}`, '--use-service-account-credentials=false']);
    this.#spawn('kube-scheduler', 'kube-scheduler', [...common, `--secure-port=${P.scheduler}`, `--cert-dir=${join(L, 'scheduler-certs')}`]);

    writeFileSync(
      join(L, 'kubelet-config.yaml'),
      `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: ${P.kubelet}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: ${P.kubeletHealthz}
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
# the host is cgroup v1 (hybrid), without systemd cgroup management for us
cgroupDriver: cgroupfs
cgroupsPerQOS: false
enforceNodeAllocatable: []
failCgroupV1: false
failSwapOn: false
# true would refuse to start unless the host already has kubelet's sysctls; false sets them
# (saved and restored by the test)
protectKernelDefaults: false
# no KUBE-FIREWALL / KUBE-KUBELET-CANARY chains on the host
makeIPTablesUtilChains: false
containerRuntimeEndpoint: unix://${this.cd.lab}/containerd.sock
imageServiceEndpoint: unix://${this.cd.lab}/containerd.sock
staticPodPath: ${join(L, 'manifests')}
podLogsDir: ${join(L, 'pod-logs')}
resolvConf: /etc/resolv.conf
# the images are imported, never pulled: never garbage-collect them
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {"memory.available": "100Mi"}
localStorageCapacityIsolation: false
`,
    );
    this.#spawn('kubelet', 'kubelet', [
      `--config=${join(L, 'kubelet-config.yaml')}`,
      `--kubeconfig=${this.kubeconfig}`,
      `--root-dir=${join(L, 'kubelet')}`,
      `--cert-dir=${join(L, 'kubelet-certs')}`,
      `--hostname-override=${this.nodeName}`,
    ]);
    await this.#until(`node ${this.nodeName} registered`, () => this.kubectlRaw(['get', 'node', this.nodeName]).code === 0, 120_000);
    await this.#until('the default service account', () => this.kubectlRaw(['-n', 'default', 'get', 'serviceaccount', 'default']).code === 0, 60_000);
    this.timings.clusterReadyMs = Date.now() - t0;
  }

  #spawn(name: string, bin: string, args: string[]): void {
    const out = openSync(join(this.lab, 'logs', `${name}.log`), 'a');
    const p = spawn(join(K8S_BIN, bin), args, { stdio: ['ignore', out, out] });
    this.#procs.set(name, p);
  }

  async #until(what: string, f: () => boolean, ms: number): Promise<void> {
    const end = Date.now() + ms;
    while (!f()) {
      for (const [name, p] of this.#procs) if (p.exitCode !== null) throw new Error(`${name} exited (${p.exitCode}) while waiting for ${what}:\n${this.tail(name)}`);
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}\n${[...this.#procs.keys()].map((n) => `--- ${n}\n${this.tail(n, 8)}`).join('\n')}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  tail(name: string, lines = 30): string {
    try {
      return readFileSync(join(this.lab, 'logs', `${name}.log`), 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  }

  kubectlRaw(args: string[], input?: string): { code: number; stdout: string; stderr: string } {
    const r = spawnSync(join(K8S_BIN, 'kubectl'), [`--kubeconfig=${this.kubeconfig}`, '--request-timeout=30s', ...args], { encoding: 'utf8', input, timeout: 90_000, maxBuffer: 64 << 20 });
    return { code: r.status ?? -1, stdout: r.stdout ?? '', stderr: (r.stderr ?? '') + (r.error ? String(r.error) : '') };
  }

  kubectl(args: string[], input?: string): string {
    const r = this.kubectlRaw(args, input);
    if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json(args: string[]): any {
    return JSON.parse(this.kubectl([...args, '-o', 'json']));
  }

  /** Stops everything, undoes kubelet's host changes; returns what was undone. Never throws. */
  async stop(): Promise<string[]> {
    const undone: string[] = [];
    // kubelet first: it would restart what the others stop.
    for (const name of ['kubelet', 'kube-scheduler', 'kube-controller-manager', 'kube-apiserver', 'etcd']) {
      const p = this.#procs.get(name);
      if (p) await terminate(p);
    }
    for (const k of killByCommandLine(this.lab)) undone.push(`killed ${k}`);
    const now = snapshot();
    for (const [s, v] of Object.entries(this.#before.sysctls)) {
      if (now.sysctls[s] !== v) {
        try {
          writeFileSync(`/proc/sys/${s}`, v);
          undone.push(`sysctl ${s} ${now.sysctls[s]} -> ${v}`);
        } catch (err) {
          undone.push(`sysctl ${s}: could not restore ${v}: ${(err as Error).message}`);
        }
      }
    }
    for (const [p, before] of Object.entries(this.#before.paths)) {
      if (before === null) {
        if (existsSync(p) || isLink(p)) {
          rmSync(p, { recursive: true, force: true });
          undone.push(`removed ${p}`);
        }
      } else {
        for (const e of now.paths[p] ?? []) {
          if (before.includes(e)) continue;
          const f = join(p, e);
          // only what points into our lab, or what kubelet makes there by name
          const link = isLink(f) ? readlinkSync(f) : '';
          if (link.includes(this.lab) || p === '/var/lib/kubelet') {
            rmSync(f, { recursive: true, force: true });
            undone.push(`removed ${f}`);
          }
        }
      }
    }
    for (const [key, rules] of Object.entries(now.iptables)) {
      const [tool, table] = key.split('/') as [string, string];
      const old = new Set(this.#before.iptables[key] ?? []);
      for (const r of rules.filter((r) => r.startsWith('-A ') && !old.has(r))) {
        spawnSync(tool, ['-w', '-t', table, ...r.replace(/^-A /, '-D ').split(' ')]);
        undone.push(`${tool} -t ${table} ${r} (deleted)`);
      }
      for (const r of rules.filter((r) => r.startsWith('-N ') && !old.has(r))) {
        spawnSync(tool, ['-w', '-t', table, '-X', r.slice(3)]);
        undone.push(`${tool} -t ${table} ${r} (deleted)`);
      }
    }
    unmountUnder(this.lab);
    spawnSync('chattr', ['-R', '-f', '-i', this.lab], { stdio: 'ignore' });
    rmSync(this.lab, { recursive: true, force: true });
    return undone;
  }

  /** What differs on the host from before start(): empty when nothing was left behind. */
  hostChanges(): string[] {
    const now = snapshot();
    const diff: string[] = [];
    for (const [s, v] of Object.entries(this.#before.sysctls)) if (now.sysctls[s] !== v) diff.push(`sysctl ${s}: ${v} -> ${now.sysctls[s]}`);
    for (const [p, v] of Object.entries(this.#before.paths)) if (JSON.stringify(now.paths[p]) !== JSON.stringify(v)) diff.push(`${p}: ${JSON.stringify(v)} -> ${JSON.stringify(now.paths[p])}`);
    for (const k of new Set([...Object.keys(this.#before.iptables), ...Object.keys(now.iptables)])) {
      if (JSON.stringify(now.iptables[k]) !== JSON.stringify(this.#before.iptables[k])) diff.push(`${k} rules changed`);
    }
    if (existsSync(this.lab)) diff.push(`${this.lab} still exists`);
    for (const l of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) if (l.split(' ')[4]?.startsWith(this.lab)) diff.push(`mount ${l.split(' ')[4]}`);
    for (const { pid } of processes((c) => c.includes(this.lab))) diff.push(`process ${pid}`);
    return diff;
  }
}

function isLink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}
