/**
 * iwsd on a real one-node Kubernetes v1.37.2 (k8s-cluster.ts: etcd, API
 * server, controller manager, scheduler and kubelet built from Go modules,
 * on the test containerd with NRI; loopback and private paths only),
 * deployed from contrib/kubernetes with `kubectl apply -k` (an overlay that
 * only points it at the test's paths and the imported image) and the image
 * of `npm run image`:
 *   the iwsd pod becomes Ready (gRPC health on the admin socket) and
 *   registers with containerd's NRI; a workspace pod made from
 *   contrib/kubernetes/workspace-pod.yaml gets /.workspace and a process in
 *   it calls WriteIDMapping and MountProc through /.workspace/daemon.sock;
 *   deleting the iwsd pod (the DaemonSet brings it back) loses no workspace;
 *   a rolling update never runs two iwsd at once and keeps workspaces
 *   served; with iwsd off the node a workspace pod does not start (the
 *   required-plugins annotation) and starts once iwsd is back; deleting the workspace pod tears the workspace down; and
 *   nothing is left on the host (sysctls, iptables, paths kubelet touches,
 *   mounts, processes).
 *
 * Slow (minutes) and heavy to build: runs only with IWSD_E2E_K8S=1
 * (`npm run test:k8s` builds the binaries and the image, then runs it);
 * skipped visibly otherwise. With IWSD_E2E_K8S=1 a missing prerequisite is
 * a failure.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

import test, { type ExecutionContext } from 'ava';
import { parse, stringify } from 'yaml';

import { BUSYBOX_IMAGE, containerdMissing, isSocket, mountOf, TestContainerd } from './helpers/containerd.js';
import { mountsOf, nspid, readMap, spawnUsernsInside, TestContainer } from './helpers/container.js';
import { isRoot } from './helpers/root.js';
import { k8sMissing, TestCluster } from './k8s-cluster.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const IMAGE_TAR = process.env.IWSD_IMAGE_TAR || join(ROOT, 'dist-image/iwsd-oci.tar');
const enabled = process.env.IWSD_E2E_K8S === '1';
const missing = !enabled
  ? 'set IWSD_E2E_K8S=1 (npm run test:k8s)'
  : !isRoot
    ? 'needs root'
    : (containerdMissing() ?? k8sMissing() ?? (existsSync(IMAGE_TAR) ? undefined : `${IMAGE_TAR} missing (npm run image)`));

type Impl = (t: ExecutionContext) => Promise<void>;
function serial(title: string, impl: Impl): void {
  if (!missing) test.serial(title, impl);
  else if (enabled) test.serial(title, (t) => t.fail(`cannot run: ${missing}`));
  else test.skip(`${title} (${missing})`, impl);
}

const NS = 'iwsd-system';
let cd: TestContainerd | undefined;
let k: TestCluster | undefined;
let stateDir = '';
let imageName = '';
let ws1: { pid: number; id: string } | undefined;
const timings: Record<string, number> = {};

async function until<T>(what: string, f: () => T | undefined | false | Promise<T | undefined | false>, ms = 120_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}\nkubelet:\n${k?.tail('kubelet', 15)}\ncontainerd:\n${cd?.tail(10)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Obj = Record<string, any>;

/** The iwsd pods of the DaemonSet. */
function iwsdPods(): Obj[] {
  return (k!.json(['-n', NS, 'get', 'pods', '-l', 'app.kubernetes.io/name=iwsd']).items as Obj[]).filter((p) => !p.metadata.deletionTimestamp);
}
const ready = (p: Obj) => (p.status?.conditions as Obj[] | undefined)?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;

/** iwsd serve processes on the host (hostPID: the DaemonSet's container runs in the host's PID namespace). */
/**
 * The `iwsd serve` daemons on the node: processes running it whose parent does not. The core's
 * short-lived helpers (the user-namespace child of a mark, proc's helper) are forks of the daemon and
 * show its command line while they live; they are not a second daemon.
 */
function iwsdProcesses(): number[] {
  const serving = new Map<number, number>();
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (!argv.includes('/opt/iwsd/bin/iwsd.js') || !argv.includes('serve')) continue;
      const ppid = /^PPid:\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
      serving.set(Number(pid), Number(ppid));
    } catch {
      /* gone */
    }
  }
  return [...serving].filter(([, ppid]) => !serving.has(ppid)).map(([pid]) => pid);
}

/** `iwsd workspace ls` on the node, against the pod's admin socket in the hostPath state dir. */
function workspaces(): { id: string; pid: number }[] {
  const r = spawnSync(process.execPath, [join(ROOT, 'bin/iwsd.js'), 'workspace', 'ls', '--json', '--state-dir', stateDir], { encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`iwsd workspace ls: ${r.stderr}`);
  return (JSON.parse(r.stdout) as { id: string; pid: number }[]).map((w) => ({ id: w.id, pid: w.pid })).sort((a, b) => a.id.localeCompare(b.id));
}

/** The overlay: contrib/kubernetes as its base, pointed at the test's state dir, NRI socket dir and image. */
function writeOverlay(dir: string): void {
  const ds = parse(readFileSync(join(ROOT, 'contrib/kubernetes/daemonset.yaml'), 'utf8')) as Obj;
  const cm = parse(readFileSync(join(ROOT, 'contrib/kubernetes/configmap.yaml'), 'utf8')) as Obj;
  const config = JSON.parse(cm.data['config.json'] as string) as Obj;
  const c = ds.spec.template.spec.containers[0] as Obj;
  const oldState = config.stateDir as string;
  const fix = (s: string) => s.split(oldState).join(stateDir);
  const volumes = (ds.spec.template.spec.volumes as Obj[]).map((v) =>
    v.name === 'state' ? { ...v, hostPath: { ...v.hostPath, path: stateDir } } : v.name === 'nri' ? { ...v, hostPath: { ...v.hostPath, path: join(cd!.lab, 'nri') } } : v,
  );
  const mounts = (c.volumeMounts as Obj[]).map((m) => (m.name === 'state' ? { ...m, mountPath: stateDir } : m));
  const probe = (p: Obj) => ({ ...p, exec: { command: (p.exec.command as string[]).map(fix) } });
  const ops = [
    { op: 'replace', path: '/spec/template/spec/volumes', value: volumes },
    { op: 'replace', path: '/spec/template/spec/containers/0/volumeMounts', value: mounts },
    { op: 'replace', path: '/spec/template/spec/containers/0/image', value: imageName },
    // imported, never pulled
    { op: 'replace', path: '/spec/template/spec/containers/0/imagePullPolicy', value: 'Never' },
    ...['startupProbe', 'readinessProbe', 'livenessProbe'].map((p) => ({ op: 'replace', path: `/spec/template/spec/containers/0/${p}`, value: probe(c[p] as Obj) })),
  ];
  const cmOps = [{ op: 'replace', path: '/data/config.json', value: JSON.stringify({ ...config, stateDir, logLevel: 'debug' }, null, 2) }];
  writeFileSync(
    join(dir, 'kustomization.yaml'),
    stringify({
      apiVersion: 'kustomize.config.k8s.io/v1beta1',
      kind: 'Kustomization',
      resources: [relative(dir, join(ROOT, 'contrib/kubernetes'))],
      patches: [
        { target: { kind: 'DaemonSet', name: 'iwsd' }, patch: JSON.stringify(ops) },
        { target: { kind: 'ConfigMap', name: 'iwsd-config' }, patch: JSON.stringify(cmOps) },
      ],
    }),
  );
}

/** contrib/kubernetes/workspace-pod.yaml as a host-network pod (no CNI here) on our node with the local busybox. */
function workspacePod(name: string, id: string): string {
  const pod = parse(readFileSync(join(ROOT, 'contrib/kubernetes/workspace-pod.yaml'), 'utf8')) as Obj;
  pod.metadata.name = name;
  pod.metadata.annotations['iwsd.io/workspace-id'] = id;
  pod.spec.hostNetwork = true;
  pod.spec.nodeName = k!.nodeName;
  pod.spec.terminationGracePeriodSeconds = 1;
  const c = pod.spec.containers[0] as Obj;
  c.image = BUSYBOX_IMAGE;
  c.imagePullPolicy = 'Never';
  c.command = ['/bin/sleep', '100000'];
  return stringify(pod);
}

/** The host pid of a running pod's container, through the CRI. */
function containerPid(podName: string, container: string): number | undefined {
  const ids = cd!.crictl(['ps', '-q', '--state', 'Running', '--name', `^${container}$`, '--label', `io.kubernetes.pod.name=${podName}`]).split('\n').filter(Boolean);
  return ids.length === 1 ? cd!.pid(ids[0]!) : undefined;
}

/** A process of the workspace pod calls WriteIDMapping and MountProc through its /.workspace/daemon.sock. */
async function servedThroughDotWorkspace(t: ExecutionContext, pid: number): Promise<void> {
  // /proc/<init>/root is the container's root in its own mount namespace: this is its /.workspace.
  const sock = `/proc/${pid}/root/.workspace/daemon.sock`;
  t.true(isSocket(sock), 'daemon.sock at /.workspace inside the pod');
  t.regex(mountOf(pid, '/.workspace') ?? '', /^ro\b/, '/.workspace is a read-only mount');
  const inside = await TestContainer.attach(pid);
  try {
    const child = await inside.spawnUserns();
    const w = await inside.call(sock, 'WriteIDMapping', { pid: child, gid: false, mapping: [{ containerId: 0, hostId: 33333, size: 1 }] });
    t.true(w.ok, JSON.stringify(w));
    t.deepEqual(readMap(inside.hostPidOf(child), 'uid_map'), [[0, 33333, 1]]);
    const ring = await spawnUsernsInside(pid);
    try {
      const m = await inside.call(sock, 'MountProc', { target: '/work/target', pid: nspid(ring.host).at(-1)! });
      t.true(m.ok, JSON.stringify(m));
      t.truthy(mountsOf(ring.host).find(([mp, type]) => mp === '/work/target' && type === 'proc'));
    } finally {
      ring.stop();
    }
  } finally {
    inside.initHostPid = 0; // detach: never kill the pod's init
    await inside.stop();
  }
}

test.before(async () => {
  if (missing) return;
  const t0 = Date.now();
  cd = await TestContainerd.start();
  const imported = cd.ctr(['-n', 'k8s.io', 'images', 'import', '--platform', 'linux/amd64', IMAGE_TAR]);
  const index = JSON.parse(spawnSync('tar', ['-xOf', IMAGE_TAR, 'index.json'], { encoding: 'utf8' }).stdout) as { manifests: { annotations: Record<string, string> }[] };
  imageName = index.manifests[0]!.annotations['io.containerd.image.name']!;
  if (!imported.includes(imageName)) throw new Error(`ctr import did not name ${imageName}: ${imported}`);
  timings.containerdAndImagesMs = Date.now() - t0;
  k = await TestCluster.start(cd);
  Object.assign(timings, k.timings);
  stateDir = join(k.sharedDir, 'iwsd');
});

test.after.always(async () => {
  await k?.stop();
  await cd?.stop();
});

serial('the iwsd DaemonSet from contrib/kubernetes becomes Ready and registers with NRI', async (t) => {
  t.timeout(300_000);
  const t0 = Date.now();
  const overlay = join(k!.lab, 'overlay');
  mkdirSync(overlay);
  writeOverlay(overlay);
  t.log(k!.kubectl(['apply', '-k', overlay]).trim());
  const pod = await until('the iwsd pod Ready', () => iwsdPods().find(ready), 240_000);
  timings.iwsdReadyMs = Date.now() - t0;
  t.is(pod.spec.nodeName, k!.nodeName);
  t.deepEqual(iwsdProcesses().length, 1);
  // The container's log through the CRI (the API server cannot reach a kubelet that serves on loopback only).
  const logs = await until('NRI registration in the iwsd log', () => {
    const ids = cd!.crictl(['ps', '-q', '--name', '^iwsd$', '--label', `io.kubernetes.pod.name=${pod.metadata.name}`]).split('\n').filter(Boolean);
    const r = ids.length === 1 ? cd!.crictlRaw(['logs', ids[0]!]) : undefined;
    const out = r ? `${r.stdout}${r.stderr}` : '';
    return out.includes('NRI: registered as plugin') ? out : undefined;
  }, 60_000);
  t.regex(logs, /NRI: registered as plugin/);
  t.true(isSocket(join(stateDir, 'admin.sock')), 'the admin socket in the hostPath state dir');
  t.deepEqual(workspaces(), []);
});

serial('a workspace pod gets /.workspace; its process calls WriteIDMapping and MountProc through it', async (t) => {
  t.timeout(300_000);
  const t0 = Date.now();
  k!.kubectl(['apply', '-f', '-'], workspacePod('ws1', 'ws1'));
  const pid = await until('ws1 running', () => containerPid('ws1', 'workspace'));
  timings.workspacePodRunningMs = Date.now() - t0;
  ws1 = { pid, id: 'ws1' };
  t.deepEqual(workspaces(), [{ id: 'ws1', pid }]);
  await servedThroughDotWorkspace(t, pid);
});

serial('deleting the iwsd pod: the DaemonSet brings it back and no workspace is lost', async (t) => {
  t.timeout(300_000);
  const t0 = Date.now();
  const [old] = iwsdPods();
  k!.kubectl(['-n', NS, 'delete', 'pod', old!.metadata.name, '--wait=true', '--timeout=120s']);
  const fresh = await until('a new iwsd pod Ready', () => iwsdPods().find((p) => p.metadata.uid !== old!.metadata.uid && ready(p)), 240_000);
  timings.iwsdPodReplacedMs = Date.now() - t0;
  t.not(fresh.metadata.uid, old!.metadata.uid);
  t.is(iwsdProcesses().length, 1);
  t.deepEqual(workspaces(), [{ id: 'ws1', pid: ws1!.pid }]);
  await servedThroughDotWorkspace(t, ws1!.pid);
});

serial('a rolling update never runs two iwsd at once and keeps workspaces served', async (t) => {
  t.timeout(400_000);
  const t0 = Date.now();
  const [old] = iwsdPods();
  let most = 0;
  let running = true;
  const watch = (async () => {
    while (running) {
      most = Math.max(most, iwsdProcesses().length);
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  try {
    k!.kubectl(['-n', NS, 'rollout', 'restart', 'daemonset/iwsd']);
    // polled (not `kubectl rollout status`, which would block the sampling above)
    await until('the rollout done', () => {
      const ds = k!.json(['-n', NS, 'get', 'daemonset', 'iwsd']) as Obj;
      const st = ds.status as Obj;
      return st.observedGeneration >= ds.metadata.generation && st.updatedNumberScheduled === 1 && st.numberAvailable === 1 && st.numberReady === 1;
    }, 240_000);
    await until('the new pod Ready', () => iwsdPods().find((p) => p.metadata.uid !== old!.metadata.uid && ready(p)), 240_000);
  } finally {
    running = false;
    await watch;
  }
  timings.rollingUpdateMs = Date.now() - t0;
  t.is(most, 1, 'at most one iwsd serve process at any time');
  t.is(iwsdPods().length, 1);
  t.deepEqual(workspaces(), [{ id: 'ws1', pid: ws1!.pid }]);
  await servedThroughDotWorkspace(t, ws1!.pid);
  // and a workspace created after the update is served too
  k!.kubectl(['apply', '-f', '-'], workspacePod('ws2', 'ws2'));
  const pid2 = await until('ws2 running', () => containerPid('ws2', 'workspace'));
  t.deepEqual(workspaces(), [
    { id: 'ws1', pid: ws1!.pid },
    { id: 'ws2', pid: pid2 },
  ]);
  await servedThroughDotWorkspace(t, pid2);
});

serial('no iwsd on the node: a workspace pod does not start (required-plugins); once iwsd is back it starts and is served', async (t) => {
  t.timeout(400_000);
  const t0 = Date.now();
  // Take iwsd off the node the Kubernetes way: a nodeSelector no node matches.
  k!.kubectl(['-n', NS, 'patch', 'daemonset', 'iwsd', '--type', 'merge', '-p', JSON.stringify({ spec: { template: { spec: { nodeSelector: { 'iwsd-e2e/absent': 'true' } } } } })]);
  await until('iwsd gone from the node', () => (iwsdPods().length === 0 && iwsdProcesses().length === 0) || undefined, 120_000);
  k!.kubectl(['apply', '-f', '-'], workspacePod('ws3', 'ws3'));
  const why = await until('ws3 refused by the validator', () => {
    const pod = k!.json(['get', 'pod', 'ws3']) as Obj;
    const w = (pod.status?.containerStatuses as Obj[] | undefined)?.[0]?.state?.waiting as Obj | undefined;
    return w?.reason === 'CreateContainerError' && /required plugin/.test(String(w.message)) ? String(w.message) : undefined;
  }, 120_000);
  t.regex(why, /required plugin \\?"iwsd\\?" not present/);
  t.is(containerPid('ws3', 'workspace'), undefined, 'the workspace container did not start');
  // Running workspaces are not affected by iwsd's absence (their container keeps running).
  t.truthy(containerPid('ws1', 'workspace'));
  // iwsd back (the kubelet retries ws3's container with backoff).
  k!.kubectl(['-n', NS, 'patch', 'daemonset', 'iwsd', '--type', 'json', '-p', JSON.stringify([{ op: 'remove', path: '/spec/template/spec/nodeSelector/iwsd-e2e~1absent' }])]);
  await until('iwsd Ready again', () => iwsdPods().find(ready), 240_000);
  const pid3 = await until('ws3 running', () => containerPid('ws3', 'workspace'), 300_000);
  timings.failClosedRoundTripMs = Date.now() - t0;
  t.true(workspaces().some((w) => w.id === 'ws3' && w.pid === pid3));
  t.true(workspaces().some((w) => w.id === 'ws1' && w.pid === ws1!.pid), 'ws1 restored and adopted');
  await servedThroughDotWorkspace(t, pid3);
});

serial('deleting a workspace pod tears the workspace down', async (t) => {
  t.timeout(300_000);
  const t0 = Date.now();
  for (const name of ['ws1', 'ws2', 'ws3']) k!.kubectl(['delete', 'pod', name, '--wait=true', '--timeout=120s']);
  await until('the workspaces gone', () => workspaces().length === 0 || undefined);
  await until('their directories removed', () => ['ws1', 'ws2', 'ws3'].every((id) => !existsSync(join(stateDir, 'workspaces', id))));
  timings.teardownMs = Date.now() - t0;
  t.deepEqual(workspaces(), []);
});

serial('stopping the cluster leaves nothing behind on the host', async (t) => {
  t.timeout(180_000);
  const t0 = Date.now();
  const undone = await k!.stop();
  await cd!.stop();
  timings.stopMs = Date.now() - t0;
  t.log(`undone on the host: ${undone.length ? undone.join('; ') : 'nothing'}`);
  t.deepEqual(k!.hostChanges(), []);
  t.deepEqual(iwsdProcesses(), [], 'no iwsd left running');
  t.false(existsSync(cd!.lab));
  t.log(`timings (ms): ${JSON.stringify(timings)}`);
  k = undefined;
  cd = undefined;
});
