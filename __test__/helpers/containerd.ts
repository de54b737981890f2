/**
 * A real containerd 2 (with NRI and the CRI plugin) for tests, on private
 * paths only: everything under one temp dir, nothing in /run/containerd,
 * /var/lib/containerd or /opt/containerd. Images are made offline from
 * busybox-static (OCI image layout tarballs) and imported. Pods are made
 * with crictl. `stop()` removes every pod, kills containerd and its shims,
 * unmounts and removes the temp dir.
 *
 * Binaries: $IWSD_CONTAINERD_BIN, else <repo>/.tools/containerd/bin (where
 * .ci/run builds containerd v2.4.2, ctr, containerd-shim-runc-v2, crictl).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { writeOciLayout } from '../../scripts/oci-layout.mjs';
import { killByCommandLine, terminate, unmountUnder } from './process.js';

export const CONTAINERD_BIN = process.env.IWSD_CONTAINERD_BIN || fileURLToPath(new URL('../../.tools/containerd/bin', import.meta.url));
const BINARIES = ['containerd', 'ctr', 'containerd-shim-runc-v2', 'crictl'];

/** Why containerd tests cannot run here, or undefined. */
export function containerdMissing(): string | undefined {
  const missing = BINARIES.filter((b) => !existsSync(join(CONTAINERD_BIN, b)));
  if (missing.length) return `${missing.join(', ')} not in ${CONTAINERD_BIN} (set IWSD_CONTAINERD_BIN, or run .ci/run's build step)`;
  if (!existsSync('/usr/sbin/runc')) return '/usr/sbin/runc missing (apt-get install runc)';
  if (!existsSync('/bin/busybox')) return '/bin/busybox missing (apt-get install busybox-static)';
  return undefined;
}

export const BUSYBOX_IMAGE = 'docker.io/library/busybox:local';
export const PAUSE_IMAGE = 'registry.k8s.io/pause:3.10.1';

function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: opts.env, timeout: opts.timeoutMs ?? 60_000 });
  return { code: r.status ?? -1, stdout: r.stdout ?? '', stderr: (r.stderr ?? '') + (r.error ? String(r.error) : '') };
}

/** A busybox-static rootfs with the directories the tests use. */
function makeImageRootfs(dir: string): void {
  for (const d of ['bin', 'proc', 'sys', 'dev', 'tmp', 'etc', 'work/target']) mkdirSync(join(dir, d), { recursive: true });
  copyFileSync('/bin/busybox', join(dir, 'bin/busybox'));
  chmodSync(join(dir, 'bin/busybox'), 0o755);
  for (const a of ['sh', 'sleep', 'cat', 'ls', 'echo', 'mount', 'touch']) symlinkSync('busybox', join(dir, 'bin', a));
  writeFileSync(join(dir, 'etc/passwd'), 'root:x:0:0:root:/:/bin/sh\n');
  writeFileSync(join(dir, 'etc/group'), 'root:x:0:\n');
}

/** An OCI image layout tarball (see scripts/oci-layout.mjs). */
export function makeImage(rootfs: string, out: string, name: string, entrypoint: string[], cmd: string[]): void {
  const layout = `${out}.d`;
  mkdirSync(layout, { recursive: true });
  const layerTar = join(layout, 'layer.tar');
  const tar = run('tar', ['--numeric-owner', '--owner=0', '--group=0', '-C', rootfs, '-cf', layerTar, '.']);
  if (tar.code !== 0) throw new Error(`tar: ${tar.stderr}`);
  writeOciLayout(layout, {
    layerTar,
    name,
    config: { architecture: 'amd64', os: 'linux', config: { Entrypoint: entrypoint, Cmd: cmd, Env: ['PATH=/bin'], WorkingDir: '/' } },
  });
  const t2 = run('tar', ['-C', layout, '-cf', out, '.']);
  if (t2.code !== 0) throw new Error(`tar: ${t2.stderr}`);
  rmSync(layout, { recursive: true, force: true });
}

function config(lab: string): string {
  return `version = 3
root = '${lab}/root'
state = '${lab}/state'
temp = '${lab}/tmp'
imports = []

[grpc]
  address = '${lab}/containerd.sock'

[ttrpc]
  address = '${lab}/containerd.sock.ttrpc'

[debug]
  level = 'info'

[plugins]
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = '${PAUSE_IMAGE}'

  [plugins.'io.containerd.cri.v1.runtime']
    # without CAP_SYS_RESOURCE the sandbox's oom_score_adj -998 fails otherwise
    restrict_oom_score_adj = true

  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
    BinaryName = '/usr/sbin/runc'
    Root = '${lab}/runc-root'
    SystemdCgroup = false

  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ['${lab}/cni/bin']
    conf_dir = '${lab}/cni/net.d'

  [plugins.'io.containerd.grpc.v1.cri']
    disable_tcp_service = true
    stream_server_address = '127.0.0.1'
    stream_server_port = '0'

  [plugins.'io.containerd.nri.v1.nri']
    disable = false
    socket_path = '${lab}/nri/nri.sock'
    plugin_path = '${lab}/nri/plugins'
    plugin_config_path = '${lab}/nri/conf.d'
    plugin_registration_timeout = '5s'
    plugin_request_timeout = '2s'
    disable_connections = false

  [plugins.'io.containerd.nri.v1.nri'.default_validator]
    enable = true

  [plugins.'io.containerd.shim.v1.manager']
    socket_dir = '${lab}/s'

  [plugins.'io.containerd.internal.v1.opt']
    path = '${lab}/opt'
`;
}

export interface PodSpec {
  name: string;
  uid: string;
  annotations?: Record<string, string>;
}

export class TestContainerd {
  readonly lab = mkdtempSync(join(tmpdir(), 'iwsd-containerd-'));
  #proc: ChildProcess | undefined;
  readonly env: NodeJS.ProcessEnv = { ...process.env, PATH: `${CONTAINERD_BIN}:${process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'}` };

  get nriSocket(): string {
    return join(this.lab, 'nri/nri.sock');
  }

  get log(): string {
    return join(this.lab, 'containerd.log');
  }

  static async start(): Promise<TestContainerd> {
    const c = new TestContainerd();
    try {
      for (const d of ['nri/plugins', 'nri/conf.d', 'cni/bin', 'cni/net.d', 's', 'opt', 'runc-root', 'images', 'pods']) mkdirSync(join(c.lab, d), { recursive: true });
      writeFileSync(join(c.lab, 'containerd.toml'), config(c.lab));
      writeFileSync(join(c.lab, 'crictl.yaml'), `runtime-endpoint: unix://${c.lab}/containerd.sock\nimage-endpoint: unix://${c.lab}/containerd.sock\ntimeout: 30\n`);
      await c.startDaemon();
      const rootfs = join(c.lab, 'images/rootfs');
      makeImageRootfs(rootfs);
      makeImage(rootfs, join(c.lab, 'images/busybox.tar'), BUSYBOX_IMAGE, ['/bin/sh', '-c'], ['sleep 100000']);
      makeImage(rootfs, join(c.lab, 'images/pause.tar'), PAUSE_IMAGE, ['/bin/sleep'], ['2147483647']);
      for (const img of ['busybox.tar', 'pause.tar']) c.ctr(['-n', 'k8s.io', 'images', 'import', '--platform', 'linux/amd64', join(c.lab, 'images', img)]);
      return c;
    } catch (err) {
      await c.stop();
      throw err;
    }
  }

  /** Starts containerd (again) and waits for its CRI socket. */
  async startDaemon(): Promise<void> {
    const out = openSync(this.log, 'a');
    this.#proc = spawn(join(CONTAINERD_BIN, 'containerd'), ['--config', join(this.lab, 'containerd.toml')], { stdio: ['ignore', out, out], env: this.env });
    const end = Date.now() + 30_000;
    for (;;) {
      if (this.#proc.exitCode !== null) throw new Error(`containerd exited (${this.#proc.exitCode}): ${this.tail()}`);
      if (existsSync(this.nriSocket) && this.crictlRaw(['version']).code === 0) return;
      if (Date.now() > end) throw new Error(`containerd did not come up: ${this.tail()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** SIGTERM containerd and wait (containers and shims keep running). */
  async stopDaemon(): Promise<void> {
    if (this.#proc) await terminate(this.#proc);
  }

  tail(lines = 30): string {
    try {
      return readFileSync(this.log, 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  }

  ctr(args: string[]): string {
    const r = run(join(CONTAINERD_BIN, 'ctr'), ['-a', join(this.lab, 'containerd.sock'), ...args], { env: this.env });
    if (r.code !== 0) throw new Error(`ctr ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  }

  crictlRaw(args: string[]): { code: number; stdout: string; stderr: string } {
    return run(join(CONTAINERD_BIN, 'crictl'), ['--config', join(this.lab, 'crictl.yaml'), ...args], { env: this.env, timeoutMs: 60_000 });
  }

  crictl(args: string[]): string {
    const r = this.crictlRaw(args);
    if (r.code !== 0) throw new Error(`crictl ${args.join(' ')}: ${r.stderr}`);
    return r.stdout.trim();
  }

  #podFile(p: PodSpec): string {
    const f = join(this.lab, 'pods', `${p.name}.pod.json`);
    writeFileSync(
      f,
      JSON.stringify({
        metadata: { name: p.name, namespace: 'default', uid: p.uid, attempt: 0 },
        annotations: p.annotations ?? {},
        linux: { security_context: { namespace_options: { network: 2 } } },
      }),
    );
    return f;
  }

  /** A host-network pod (no CNI); returns its sandbox id. */
  runPod(p: PodSpec): string {
    return this.crictl(['runp', this.#podFile(p)]);
  }

  /** Creates a container `name` in the pod (busybox sleep); returns its id, or the failure. */
  createContainer(podId: string, p: PodSpec, name = 'main'): { id?: string; error?: string } {
    const f = join(this.lab, 'pods', `${p.name}.${name}.json`);
    writeFileSync(f, JSON.stringify({ metadata: { name }, image: { image: BUSYBOX_IMAGE }, command: ['/bin/sleep', '100000'] }));
    const r = this.crictlRaw(['create', podId, f, this.#podFile(p)]);
    return r.code === 0 ? { id: r.stdout.trim() } : { error: r.stderr };
  }

  /** runp + create + start; returns the ids and the container's init pid. */
  runContainer(p: PodSpec): { podId: string; id: string; pid: number } {
    const podId = this.runPod(p);
    const c = this.createContainer(podId, p);
    if (!c.id) throw new Error(`crictl create: ${c.error}`);
    this.crictl(['start', c.id]);
    return { podId, id: c.id, pid: this.pid(c.id) };
  }

  pid(containerId: string): number {
    return (JSON.parse(this.crictl(['inspect', containerId])) as { info: { pid: number } }).info.pid;
  }

  /** Kills what is left, unmounts and removes the temp dir. Never throws. */
  async stop(): Promise<void> {
    if (this.#proc && this.#proc.exitCode === null) this.crictlRaw(['rmp', '-fa']);
    await this.stopDaemon().catch(() => undefined);
    // Shims (and their containers) that outlived containerd: found by our lab path.
    killByCommandLine(this.lab);
    spawnSync('runc', ['--root', join(this.lab, 'runc-root'), 'list', '-q'], { encoding: 'utf8' })
      .stdout?.split('\n')
      .filter(Boolean)
      .forEach((id) => spawnSync('runc', ['--root', join(this.lab, 'runc-root'), 'delete', '-f', id]));
    unmountUnder(this.lab);
    rmSync(this.lab, { recursive: true, force: true });
  }
}

/** Whether `path` inside process `pid`'s mount namespace is a mount point, and its options. */
export function mountOf(pid: number, path: string): string | undefined {
  for (const l of readFileSync(`/proc/${pid}/mountinfo`, 'utf8').split('\n')) {
    const f = l.split(' ');
    if (f[4] === path) return f[5];
  }
  return undefined;
}

export function isSocket(path: string): boolean {
  try {
    return statSync(path).isSocket();
  } catch {
    return false;
  }
}

