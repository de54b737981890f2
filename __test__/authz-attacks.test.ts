/**
 * Authorization per call (issue 12, items 1, 2 and 4), each attack run as
 * the attacker it names: an unprivileged uid and a second uid in one
 * container, container root, ring root. Every refusal is asserted by its
 * reason, with proof that nothing was written, mounted or unmounted; the
 * permitted cases (container root as before, ring root writing its own maps,
 * Gitpod's ring sequence) still work.
 *
 * The containers here have their own PID and (private) mount namespaces and
 * share the host's filesystems, so that the callers can be real gRPC clients
 * (agent.mjs) run by any identity: `nsenter` into the container, `setpriv`
 * to the uid, `unshare -U -m` for a ring. The workspace directory is bound
 * into the container as a runtime binds it at /.workspace.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import test, { type ExecutionContext } from 'ava';

import { Agent, descendant } from './helpers/agentClient.js';
import { nspid, readMap, waitFor, type CallResult } from './helpers/container.js';
import { TestDaemon } from './helpers/daemon.js';
import { isRoot, rootTest } from './helpers/root.js';

/** Gitpod's ring0 user; the default policy's root range. */
const RING0 = 33333;
/** Unprivileged users of the container. */
const USER = 1000;
const OTHER = 2000;
const RING_MAP = [
  { containerId: 0, hostId: RING0, size: 1 },
  { containerId: 1, hostId: 100000, size: 65534 },
];

let daemon: TestDaemon;
let permissive: TestDaemon;
let n = 0;

test.before(async () => {
  if (!isRoot) return;
  daemon = await TestDaemon.start({ shift: { method: 'auto' } });
  permissive = await TestDaemon.start({ idPolicy: { allowSetgroups: true } });
});

test.after.always(async () => {
  await daemon?.stop();
  await permissive?.stop();
});

/** A process's PID inside the container (the level below the test's). */
function inContainer(host: number): number {
  return nspid(host)[1]!;
}

/** The mounts `host` sees (its mountinfo lines). */
function mountCount(host: number): number {
  return readFileSync(`/proc/${host}/mountinfo`, 'utf8').split('\n').filter(Boolean).length;
}

function mountedAt(host: number, path: string): string[] {
  return readFileSync(`/proc/${host}/mountinfo`, 'utf8')
    .split('\n')
    .filter((l) => l.split(' ')[4] === path)
    .map((l) => l.split(' - ')[1]!.split(' ')[0]!);
}

/**
 * A container: its own PID and private mount namespace, init `sleep` as
 * `initUid` (default root); its workspace registered with `d` and the
 * workspace directory bound at `<dir>/ws`.
 */
async function setup(t: ExecutionContext, opts: { initUid?: number; d?: TestDaemon } = {}) {
  const d = opts.d ?? daemon;
  const dir = mkdtempSync('/tmp/iwsd-authz-');
  chmodSync(dir, 0o755);
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const sub of ['ws', 'mark', 'open', 'mine', 'ring2']) mkdirSync(join(dir, sub), { mode: 0o755 });
  chownSync(join(dir, 'mine'), USER, USER);
  chownSync(join(dir, 'ring2'), RING0, RING0);
  chmodSync(join(dir, 'open'), 0o777);
  const as = opts.initUid === undefined ? [] : ['setpriv', '--reuid', String(opts.initUid), '--regid', String(opts.initUid), '--clear-groups'];
  const k = ++n;
  const marker = String(100000 + k);
  const u = spawn('unshare', ['--pid', '--fork', '--kill-child', '--mount', '--propagation', 'private', '--', ...as, 'sleep', marker], { stdio: 'ignore' });
  t.teardown(() => {
    u.kill('SIGKILL');
  });
  const init = await waitFor('container init', () => descendant(u.pid!, (c) => c === `sleep\0${marker}\0`));
  const id = `authz-${process.pid}-${k}`;
  await d.add(id, init, ['--mark-path', join(dir, 'mark')]);
  const bind = spawnSync('nsenter', ['--target', String(init), '--mount', '--', 'mount', '--bind', join(d.stateDir, 'workspaces', id), join(dir, 'ws')]);
  if (bind.status !== 0) throw new Error(`bind: ${bind.stderr.toString()}`);
  const enter = ['nsenter', '--target', String(init), '--mount', '--pid', '--'];
  /** An agent as `uid` (no capabilities), with `groups` (default none), in a ring of its own with `ring`. */
  const agent = (who: { uid?: number; groups?: number[]; ring?: boolean } = {}) => {
    const cred =
      who.uid === undefined
        ? []
        : ['setpriv', '--reuid', String(who.uid), '--regid', String(who.uid), ...(who.groups?.length ? ['--groups', who.groups.join(',')] : ['--clear-groups']), '--'];
    return Agent.start(t, [...enter, ...cred, ...(who.ring ? ['unshare', '-U', '-m', '--'] : [])]);
  };
  return { init, dir, id, k, socket: join(dir, 'ws', 'daemon.sock'), agent };
}

/** A refusal with `code`, whose audit record names `reason` (the core's Reason; the caller sees the message). */
async function refused(t: ExecutionContext, r: CallResult, code: string, reason: string, what: string): Promise<void> {
  t.false(r.ok, `${what}: ${JSON.stringify(r)}`);
  t.is(r.code, code, `${what}: ${JSON.stringify(r)}`);
  const audit = await Promise.any([daemon, permissive].map((d) => d.waitForLog((l) => l.result === code && l.error === r.details, 2000))).catch(() => undefined);
  t.is(audit?.reason, reason, `${what}: reason in the audit record`);
}

// ---- the caller of a call is the process that connected, as it connected ----------

rootTest('a connection opened as root is not root’s once its process changed its euid (as a setuid exec would, the other way round)', async (t) => {
  const { socket, agent, init, dir } = await setup(t);
  const root = await agent();
  const target = join(dir, 'open');
  t.true((await root.callHeld(socket, 'MountProc', { pid: root.pid, target })).ok, 'as connected');
  t.true((await root.callHeld(socket, 'UmountProc', { pid: root.pid, target })).ok);
  await root.seteuid(USER);
  const before = mountCount(init);
  await refused(t, await root.callHeld(socket, 'MountProc', { pid: root.pid, target: '/etc' }), 'PERMISSION_DENIED', 'CredentialsChanged', 'euid changed');
  t.is(mountCount(init), before);
  await root.seteuid(0);
  t.true((await root.callHeld(socket, 'MountProc', { pid: root.pid, target })).ok, 'back to the euid it connected with');
  t.true((await root.callHeld(socket, 'UmountProc', { pid: root.pid, target })).ok);
});

// ---- WriteIDMapping ----------------------------------------------------------------

rootTest('WriteIDMapping: a second uid cannot write the map of another uid’s user namespace; its owner (ring user) and container root can', async (t) => {
  const { socket, agent } = await setup(t);
  const victim = await agent({ uid: RING0, ring: true }); // ring1 of the ring user, unmapped
  const attacker = await agent({ uid: OTHER });
  const r = await attacker.call(socket, 'WriteIDMapping', { pid: victim.pid, gid: false, mapping: RING_MAP });
  await refused(t, r, 'PERMISSION_DENIED', 'NotUserNamespaceOwner', 'other uid');
  t.deepEqual(readMap(victim.host, 'uid_map'), [], 'nothing written');
  // A uid that owns its namespace but is not the ring user: no ids delegated to it.
  const own = await agent({ uid: USER, ring: true });
  await refused(t, await own.call(socket, 'WriteIDMapping', { pid: own.pid, gid: false, mapping: RING_MAP }), 'PERMISSION_DENIED', 'MapNotDelegated', 'not the ring user');
  t.deepEqual(readMap(own.host, 'uid_map'), []);
  // Ring root writes its own maps (it owns its namespace, from inside it).
  const ok = await victim.call(socket, 'WriteIDMapping', { pid: victim.pid, gid: false, mapping: RING_MAP });
  t.true(ok.ok, JSON.stringify(ok));
  t.deepEqual(readMap(victim.host, 'uid_map'), [
    [0, RING0, 1],
    [1, 100000, 65534],
  ]);
  // Container root may write any ring's map.
  const root = await agent();
  const byRoot = await root.call(socket, 'WriteIDMapping', { pid: own.pid, gid: false, mapping: RING_MAP });
  t.true(byRoot.ok, JSON.stringify(byRoot));
});

rootTest('WriteIDMapping: a ring user cannot write the map of a sibling ring it owns from outside its parent', async (t) => {
  const { socket, agent } = await setup(t);
  const a = await agent({ uid: RING0, ring: true });
  const b = await agent({ uid: RING0, ring: true });
  t.true((await a.call(socket, 'WriteIDMapping', { pid: a.pid, gid: false, mapping: RING_MAP })).ok);
  // a is root of its ring and owns b's namespace (same creator), but b's is no child of a's.
  const r = await a.call(socket, 'WriteIDMapping', { pid: b.pid, gid: false, mapping: RING_MAP });
  await refused(t, r, 'PERMISSION_DENIED', 'UserNamespaceOutOfReach', 'sibling ring');
  t.deepEqual(readMap(b.host, 'uid_map'), []);
});

// ---- setgroups ----------------------------------------------------------------------

for (const allow of [false, true]) {
  rootTest(`setgroups ${allow ? 'allowed by policy: ring root can drop a group (the attack the default stops)' : 'denied before gid_map: ring root cannot drop a supplementary group to read a file it denies'}`, async (t) => {
    const { socket, agent, dir } = await setup(t, { d: allow ? permissive : daemon });
    // Readable by others, not by members of OTHER.
    const secret = join(dir, 'secret');
    writeFileSync(secret, 'secret\n');
    chownSync(secret, 0, OTHER);
    chmodSync(secret, 0o604);
    const ring = await agent({ uid: RING0, groups: [OTHER], ring: true });
    for (const gid of [false, true]) {
      const r = await ring.call(socket, 'WriteIDMapping', { pid: ring.pid, gid, mapping: RING_MAP });
      t.true(r.ok, JSON.stringify(r));
    }
    t.is(readFileSync(`/proc/${ring.host}/setgroups`, 'utf8').trim(), allow ? 'allow' : 'deny');
    t.not((await ring.run(['cat', secret])).code, 0, 'the group denies it');
    const dropped = await ring.run(['setpriv', '--clear-groups', 'cat', secret]);
    if (allow) t.is(dropped.stdout, 'secret\n', JSON.stringify(dropped));
    else t.not(dropped.code, 0, JSON.stringify(dropped));
  });
}

// ---- MountProc / MountSysfs / Umount* ------------------------------------------------

rootTest('Mount*: an unprivileged uid cannot mount over root-owned /etc or into the container’s namespace; nothing is mounted', async (t) => {
  const { socket, agent, init, dir } = await setup(t);
  const user = await agent({ uid: USER });
  const before = mountCount(init);
  for (const [rpc, target] of [
    ['MountProc', '/etc'],
    ['MountSysfs', '/etc'],
    ['MountProc', join(dir, 'mine')],
  ] as const) {
    const r = await user.call(socket, rpc, { pid: user.pid, target });
    await refused(t, r, 'PERMISSION_DENIED', 'NotMountNamespaceOwner', `${rpc} ${target}`);
  }
  t.is(mountCount(init), before, 'nothing mounted');
  t.true(readFileSync(`/proc/${init}/root/etc/passwd`, 'utf8').length > 0);
});

rootTest('Mount*: container root still mounts, but only onto a directory it may write; another uid cannot unmount it, root can', async (t) => {
  const { socket, agent, init, dir } = await setup(t);
  const root = await agent();
  const user = await agent({ uid: USER });
  const target = join(dir, 'open');
  const m = await root.call(socket, 'MountProc', { pid: root.pid, target });
  t.true(m.ok, JSON.stringify(m));
  t.deepEqual(mountedAt(init, target), ['proc']);
  const s = await root.call(socket, 'MountSysfs', { pid: root.pid, target: join(dir, 'mine') });
  t.true(s.ok, JSON.stringify(s));
  for (const [rpc, path] of [
    ['UmountProc', target],
    ['UmountSysfs', join(dir, 'mine')],
  ] as const) {
    await refused(t, await user.call(socket, rpc, { pid: user.pid, target: path }), 'PERMISSION_DENIED', 'NotMountNamespaceOwner', `${rpc} by uid ${USER}`);
  }
  t.deepEqual(mountedAt(init, target), ['proc'], 'still mounted');
  t.true((await root.call(socket, 'UmountProc', { pid: root.pid, target })).ok);
  t.true((await root.call(socket, 'UmountSysfs', { pid: root.pid, target: join(dir, 'mine') })).ok);
  t.deepEqual(mountedAt(init, target), []);
});

// ---- PrepareForUserNS / Teardown, and Gitpod's ring sequence -------------------------

rootTest('PrepareForUserNS/Teardown: refused to an unprivileged uid without using the shot; Gitpod’s ring sequence works', async (t) => {
  const { socket, agent, init, dir, k } = await setup(t, { initUid: RING0 });
  const other = await agent({ uid: USER });
  for (const rpc of ['PrepareForUserNS', 'Teardown']) {
    await refused(t, await other.call(socket, rpc, {}), 'PERMISSION_DENIED', 'NotWorkspaceOwner', `${rpc} by uid ${USER}`);
  }
  // ring0: the init's uid, no capabilities.
  const ring0 = await agent({ uid: RING0 });
  const prep = await ring0.call(socket, 'PrepareForUserNS', {});
  t.true(prep.ok, `the shot was not used by the refusal: ${JSON.stringify(prep)}`);
  // ring1: root of the user namespace ring0 made, writes its own maps.
  const ring1 = await agent({ uid: RING0, ring: true });
  for (const gid of [false, true]) {
    const r = await ring1.call(socket, 'WriteIDMapping', { pid: ring1.pid, gid, mapping: RING_MAP });
    t.true(r.ok, JSON.stringify(r));
  }
  // ring2: its child in new mount and PID namespaces.
  const marker = String(200000 + k);
  const ring2 = await ring1.spawn(['unshare', '-m', '-p', '-f', '--propagation', 'private', 'sleep', marker], marker);
  const target = join(dir, 'ring2');
  const proc = await ring1.call(socket, 'MountProc', { pid: inContainer(ring2), target });
  t.true(proc.ok, JSON.stringify(proc));
  const sys = await ring1.call(socket, 'MountSysfs', { pid: inContainer(ring2), target: join(dir, 'open') });
  t.true(sys.ok, JSON.stringify(sys));
  t.deepEqual(mountedAt(ring2, target), ['proc']);
  t.deepEqual(mountedAt(init, target), [], 'only in ring2’s namespace');
  // ring2's namespace is ring1's to change, not the other uid's; nor ring0's mounts ring1's to undo.
  await refused(t, await other.call(socket, 'UmountProc', { pid: inContainer(ring2), target }), 'PERMISSION_DENIED', 'NotMountNamespaceOwner', 'other uid unmounts in ring2');
  await refused(t, await other.call(socket, 'MountProc', { pid: inContainer(ring2), target: join(dir, 'open') }), 'PERMISSION_DENIED', 'NotMountNamespaceOwner', 'other uid mounts in ring2');
  // ring0 owns ring1's user namespace, so it may change ring2's mounts, but not undo one made for ring1.
  await refused(t, await ring0.call(socket, 'UmountProc', { pid: inContainer(ring2), target }), 'PERMISSION_DENIED', 'NotMountOwner', 'ring0 unmounts ring1’s mount');
  t.deepEqual(mountedAt(ring2, target), ['proc']);
  t.true((await ring1.call(socket, 'UmountProc', { pid: inContainer(ring2), target })).ok);
  t.deepEqual(mountedAt(ring2, target), []);
  // Teardown by ring0 (the init's uid).
  const td = await ring0.call(socket, 'Teardown', {});
  t.true(td.ok, JSON.stringify(td));
});

rootTest('Mount*: ring root cannot mount onto a directory it may not write (root-owned, unmapped in its namespace)', async (t) => {
  const { socket, agent, dir, k } = await setup(t, { initUid: RING0 });
  const ring1 = await agent({ uid: RING0, ring: true });
  for (const gid of [false, true]) t.true((await ring1.call(socket, 'WriteIDMapping', { pid: ring1.pid, gid, mapping: RING_MAP })).ok);
  const marker = String(300000 + k);
  const ring2 = await ring1.spawn(['unshare', '-m', '-p', '-f', '--propagation', 'private', 'sleep', marker], marker);
  const before = mountCount(ring2);
  const r = await ring1.call(socket, 'MountProc', { pid: inContainer(ring2), target: join(dir, 'mine') });
  await refused(t, r, 'PERMISSION_DENIED', 'TargetNotWritable', 'uid 1000’s directory');
  t.is(mountCount(ring2), before);
});

// ---- propagation amplification ----------------------------------------------------

rootTest('Mount*: 20 MountProcs onto a shared target with 50 peer namespaces are refused; no mount table grows', async (t) => {
  const { socket, agent, init, dir, k } = await setup(t);
  const root = await agent();
  t.true((await root.call(socket, 'PrepareForUserNS', {})).ok, 'makes the container root shared');
  // 50 namespaces made in the container, copies of its (shared) root: 25 peers, 25 less privileged (slaves).
  const peers: number[] = [];
  for (let i = 0; i < 50; i++) {
    const marker = String(400000 + k * 100 + i);
    const ring = i % 2 ? ['setpriv', '--reuid', String(RING0), '--regid', String(RING0), '--clear-groups', 'unshare', '-U', '-m', '--propagation', 'unchanged'] : ['unshare', '-m', '--propagation', 'unchanged'];
    const p = spawn('nsenter', ['--target', String(init), '--mount', '--pid', '--', ...ring, 'sleep', marker], { stdio: 'ignore' });
    t.teardown(() => {
      p.kill('SIGKILL');
    });
    peers.push(await waitFor('peer namespace', () => descendant(p.pid!, (c) => c === `sleep\0${marker}\0`)));
  }
  const before = [init, ...peers].map(mountCount);
  const calls = Array.from({ length: 20 }, () => root.call(socket, 'MountProc', { pid: root.pid, target: join(dir, 'open') }));
  for (const r of await Promise.all(calls)) await refused(t, r, 'FAILED_PRECONDITION', 'PropagatesToPeers', 'onto the shared root');
  t.deepEqual([init, ...peers].map(mountCount), before, 'no mount anywhere');
  // In a ring's private namespace the same mount works.
  const marker = String(500000 + k);
  const ring = ['setpriv', '--reuid', String(RING0), '--regid', String(RING0), '--clear-groups', 'unshare', '-U', '-m', '--propagation', 'private'];
  const p = spawn('nsenter', ['--target', String(init), '--mount', '--pid', '--', ...ring, 'sleep', marker], { stdio: 'ignore' });
  t.teardown(() => {
    p.kill('SIGKILL');
  });
  const priv = await waitFor('private namespace', () => descendant(p.pid!, (c) => c === `sleep\0${marker}\0`));
  const ok = await root.call(socket, 'MountProc', { pid: inContainer(priv), target: join(dir, 'open') });
  t.true(ok.ok, JSON.stringify(ok));
  t.deepEqual([init, ...peers].map(mountCount), before, 'nothing propagated');
  t.true((await root.call(socket, 'Teardown', {})).ok);
});

// ---- WipingTeardown ------------------------------------------------------------

rootTest('WipingTeardown: refused to an unprivileged uid (mark kept); doWipe false does nothing; doWipe removes the mark, again and again, leaving Teardown its shot', async (t) => {
  const { socket, agent, init, dir } = await setup(t, { initUid: RING0 });
  const mark = join(dir, 'mark');
  const ring0 = await agent({ uid: RING0 });
  t.true((await ring0.call(socket, 'PrepareForUserNS', {})).ok);
  const marked = () => mountedAt(init, mark).length > 0;
  t.true(marked());
  const other = await agent({ uid: USER });
  await refused(t, await other.call(socket, 'WipingTeardown', { doWipe: true }), 'PERMISSION_DENIED', 'NotWorkspaceOwner', `WipingTeardown by uid ${USER}`);
  t.true(marked(), 'a refused WipingTeardown unmounts nothing');
  const keep = await ring0.call(socket, 'WipingTeardown', { doWipe: false });
  t.deepEqual(keep.response, { success: true }, JSON.stringify(keep));
  t.true(marked(), 'doWipe false removes nothing');
  for (let i = 0; i < 2; i++) {
    const wipe = await ring0.call(socket, 'WipingTeardown', { doWipe: true });
    t.deepEqual(wipe.response, { success: true }, `call ${i + 1}: ${JSON.stringify(wipe)}`);
    t.false(marked(), 'the mark is gone');
  }
  // Teardown's shot is left to it (nothing to remove any more); PrepareForUserNS stays used.
  t.deepEqual((await ring0.call(socket, 'Teardown', {})).response, { success: true });
  t.is((await ring0.call(socket, 'PrepareForUserNS', {})).code, 'RESOURCE_EXHAUSTED');
});
