/**
 * iwsd as an NRI plugin of a real containerd 2 (v2.4.2, built by .ci/run),
 * on private paths, with crictl-made host-network pods from offline
 * busybox images: a workspace pod gets a read-only /.workspace with a
 * served daemon.sock; a plain pod gets nothing; containerd and iwsd
 * restarts lose and double nothing; with iwsd away a workspace pod that
 * requires the plugin does not start, and starts once iwsd is back;
 * stopping the pod tears the workspace down.
 *
 * Needs root and the containerd binaries (helpers/containerd.ts); skipped
 * visibly without them, and failed instead when IWSD_REQUIRE_CONTAINERD=1
 * (.ci/run sets it).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import test, { type ExecutionContext } from 'ava';

import { containerdMissing, isSocket, mountOf, TestContainerd } from './helpers/containerd.js';
import { mountsOf, nspid, spawnUsernsInside, TestContainer, readMap } from './helpers/container.js';
import { TestDaemon } from './helpers/daemon.js';
import { isRoot, requireRoot } from './helpers/root.js';

const missing = !isRoot ? 'needs root' : containerdMissing();
// Not root: like every root test (a failure under IWSD_REQUIRE_ROOT=1). Root without
// the binaries: a failure under IWSD_REQUIRE_CONTAINERD=1 (.ci/run builds them).
const required = isRoot ? process.env.IWSD_REQUIRE_CONTAINERD === '1' : requireRoot;

type Impl = (t: ExecutionContext) => Promise<void>;
function serial(title: string, impl: Impl): void {
  if (!missing) test.serial(title, impl);
  else if (required) test.serial(title, (t) => t.fail(`cannot run: ${missing}`));
  else test.skip(`${title} (${missing})`, impl);
}

const PLUGIN = 'iwsd';
const wsAnnotations = (id: string) => ({
  'iwsd.io/workspace': 'true',
  'iwsd.io/workspace-id': id,
  // containerd's default validator: no start without the plugin.
  'required-plugins.noderesource.dev/pod': JSON.stringify([PLUGIN]),
});

let cd: TestContainerd | undefined;
let daemon: TestDaemon | undefined;
let ws1: { podId: string; id: string; pid: number } | undefined;

function startDaemon(): Promise<TestDaemon> {
  return TestDaemon.start({ logLevel: 'debug', nri: { enabled: true, socket: cd!.nriSocket, pluginName: PLUGIN, pluginIndex: '50' } });
}

function registeredCount(d: TestDaemon): number {
  return d.logs.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('NRI: registered as plugin')).length;
}

async function until(what: string, f: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await f())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${cd ? `\ncontainerd log:\n${cd.tail(15)}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function ls(d: TestDaemon): Promise<{ id: string; pid: number }[]> {
  const r = await d.cli(['workspace', 'ls', '--json']);
  return (JSON.parse(r.stdout) as { id: string; pid: number }[]).map((w) => ({ id: w.id, pid: w.pid }));
}

/** Calls from inside the container: WriteIDMapping for a user-namespaced process, MountProc. */
async function servedFromInside(t: ExecutionContext, pid: number, socket: string): Promise<void> {
  const inside = await TestContainer.attach(pid);
  try {
    const child = await inside.spawnUserns();
    const w = await inside.call(socket, 'WriteIDMapping', { pid: child, gid: false, mapping: [{ containerId: 0, hostId: 33333, size: 1 }] });
    t.true(w.ok, JSON.stringify(w));
    t.deepEqual(readMap(inside.hostPidOf(child), 'uid_map'), [[0, 33333, 1]]);
  } finally {
    await detach(inside);
  }
}

/** Stops an attached agent without killing the container's init (TestContainer.stop kills initHostPid). */
async function detach(c: TestContainer): Promise<void> {
  c.initHostPid = 0;
  await c.stop();
}

test.before(async () => {
  if (missing) return;
  cd = await TestContainerd.start();
  daemon = await startDaemon();
  await until('iwsd registered with containerd', () => registeredCount(daemon!) >= 1);
});

test.after.always(async () => {
  await cd?.stop();
  await daemon?.stop();
});

serial('a workspace pod gets /.workspace read-only with a served daemon.sock', async (t) => {
  t.timeout(120_000);
  ws1 = cd!.runContainer({ name: 'ws1', uid: 'uid-ws1', annotations: wsAnnotations('ws1') });
  const { pid } = ws1;
  t.deepEqual(await ls(daemon!), [{ id: 'ws1', pid }]);
  t.true(isSocket(`/proc/${pid}/root/.workspace/daemon.sock`), 'daemon.sock inside at /.workspace');
  const opts = mountOf(pid, '/.workspace');
  t.truthy(opts, 'a mount at /.workspace');
  t.regex(opts!, /^ro\b/);
  const sock = join(daemon!.stateDir, 'workspaces', 'ws1', 'daemon.sock');
  await servedFromInside(t, pid, sock);
  // MountProc onto a directory of the container's image, by a process in its mount namespace.
  const inside = await TestContainer.attach(pid);
  t.teardown(() => detach(inside));
  const ring = await spawnUsernsInside(pid);
  t.teardown(ring.stop);
  const m = await inside.call(sock, 'MountProc', { target: '/work/target', pid: nspid(ring.host).at(-1)! });
  t.true(m.ok, JSON.stringify(m));
  const mounts = mountsOf(ring.host);
  t.truthy(mounts.find(([mp, type]) => mp === '/work/target' && type === 'proc'), JSON.stringify(mounts));
});

serial('iwsd doctor shows the NRI connection', async (t) => {
  const r = await daemon!.cli(['doctor', '--json', '--config', join(daemon!.base, 'config.json')]);
  const nri = (JSON.parse(r.stdout) as { nri?: { socketPresent: boolean; plugin: string; daemon?: { connected: boolean; runtime: string } } }).nri;
  t.like(nri, { socketPresent: true, plugin: '50-iwsd', daemon: { connected: true } });
  t.regex(nri?.daemon?.runtime ?? '', /^containerd 2\.4\.2/);
});

serial('a pod without the annotation gets nothing', async (t) => {
  t.timeout(60_000);
  const before = await ls(daemon!);
  const plain = cd!.runContainer({ name: 'plain', uid: 'uid-plain' });
  t.is(mountOf(plain.pid, '/.workspace'), undefined);
  t.false(existsSync(`/proc/${plain.pid}/root/.workspace`));
  t.deepEqual(await ls(daemon!), before);
  cd!.crictl(['rmp', '-f', plain.podId]);
});

serial('containerd restarted: iwsd reconnects, Synchronize loses and doubles nothing', async (t) => {
  t.timeout(120_000);
  const n = registeredCount(daemon!);
  const syncs = daemon!.logs.filter((l) => String(l.msg).startsWith('NRI: synchronized')).length;
  await cd!.stopDaemon();
  await until('the loss logged', () => daemon!.logs.some((l) => String(l.msg).startsWith('NRI: connection to')));
  await cd!.startDaemon();
  await until('iwsd registered again', () => registeredCount(daemon!) > n);
  await until('a new Synchronize', () => daemon!.logs.filter((l) => String(l.msg).startsWith('NRI: synchronized')).length > syncs);
  const last = daemon!.logs.filter((l) => String(l.msg).startsWith('NRI: synchronized')).at(-1)!;
  t.like(last, { registered: 0, adopted: 1, dropped: 0 });
  t.deepEqual(await ls(daemon!), [{ id: 'ws1', pid: ws1!.pid }]);
  await servedFromInside(t, ws1!.pid, join(daemon!.stateDir, 'workspaces', 'ws1', 'daemon.sock'));
});

serial('iwsd away: a workspace pod requiring the plugin does not start; once iwsd is back it does, and running workspaces are registered again', async (t) => {
  t.timeout(120_000);
  daemon!.proc.kill('SIGTERM');
  await new Promise((r) => daemon!.proc.once('exit', r));
  const spec = { name: 'ws2', uid: 'uid-ws2', annotations: wsAnnotations('ws2') };
  const podId = cd!.runPod(spec);
  const refused = cd!.createContainer(podId, spec);
  t.is(refused.id, undefined);
  t.regex(refused.error ?? '', /required plugin \\?"iwsd\\?" not present/);

  await daemon!.restart();
  await until('iwsd registered with containerd', () => registeredCount(daemon!) >= 1);
  await until('Synchronize', () => daemon!.logs.some((l) => String(l.msg).startsWith('NRI: synchronized')));
  t.deepEqual(await ls(daemon!), [{ id: 'ws1', pid: ws1!.pid }]);
  const c = cd!.createContainer(podId, spec, 'main2');
  t.truthy(c.id, c.error);
  cd!.crictl(['start', c.id!]);
  const pid = cd!.pid(c.id!);
  t.deepEqual((await ls(daemon!)).sort((a, b) => a.id.localeCompare(b.id)), [
    { id: 'ws1', pid: ws1!.pid },
    { id: 'ws2', pid },
  ]);
  await servedFromInside(t, pid, join(daemon!.stateDir, 'workspaces', 'ws2', 'daemon.sock'));
  cd!.crictl(['rmp', '-f', podId]);
});

serial('stopping the pod tears the workspace down', async (t) => {
  t.timeout(60_000);
  cd!.crictl(['stopp', ws1!.podId]);
  await until('ws1 gone', async () => !(await ls(daemon!)).some((w) => w.id === 'ws1'));
  // The directory the plugin prepared goes when the container is removed.
  cd!.crictl(['rmp', ws1!.podId]);
  await until('its directory removed', () => !existsSync(join(daemon!.stateDir, 'workspaces', 'ws1')));
  t.deepEqual(await ls(daemon!), []);
});
