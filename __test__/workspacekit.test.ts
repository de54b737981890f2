/**
 * Gitpod's workspacekit against iwsd, ring by ring, with real namespaces: the
 * sequence of components/workspacekit/cmd/rings.go (seed-era, 2021-08) and
 * the mount handler of pkg/seccomp/notify.go, played by gRPC clients
 * (agent.mjs) in a container made like an OCI runtime makes one (its own
 * root, `/.workspace` bound read-only, init as uid 33333 without
 * capabilities):
 *
 * - ring0 (uid 33333, no capabilities) calls PrepareForUserNS as an OLD
 *   client: no metadata, and only SHIFTFS or FUSE are acted on (workspacekit
 *   exits "unknown FS shift method" on anything else);
 * - ring1 (a new user and mount namespace made by uid 33333, after the
 *   mark) has WriteIDMapping write its own uid map, then its gid map
 *   (0→33333 size 1, 1→100000 size 65534); then, as the FUSE branch does,
 *   bind-mounts the mark recursively onto a fresh /tmp/supervisor* dir (plus
 *   /workspace and a tmpfs /tmp), starts ring2 in new mount and PID
 *   namespaces, and calls MountProc on <ring2 root>/proc for ring2's pid;
 * - ring2 chroots into that dir (FUSE branch: chroot, not pivot_root), lists
 *   `/`, reads its uid_map and creates a file; ring1 then answers ring2's
 *   `mount -t sysfs` with MountSysfs (target as ring2 sees it, ring2's pid);
 * - ring1 exits, ring0 calls Teardown, the container exits, and nothing iwsd
 *   made is left.
 *
 * Run with the default configuration (shift auto: idmapped on this kernel)
 * and with `shift.method: fuse`. Also: a client that knows IDMAPPED learns
 * the true method, and no client can change the mark by what it sends.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import test, { type ExecutionContext } from 'ava';

import { Agent, descendant } from './helpers/agentClient.js';
import { hostMounts, makeRootfs, mountsOf, nspid, readMap, TestContainer, waitFor, fusePids } from './helpers/container.js';
import { IWSD, TestDaemon } from './helpers/daemon.js';
import { daemonPerVariant } from './helpers/variants.js';
import { rootTest } from './helpers/root.js';
import { StateStore } from '../src/state.js';

const REPO = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '');
/** Gitpod's workspace user: ring0, and the owner of ring1's user namespace. */
const RING0 = 33333;
/** workspacekit's ring1 mapping, written for uid and gid alike. */
const MAPPING = [
  { containerId: 0, hostId: RING0, size: 1 },
  { containerId: 1, hostId: 100000, size: 65534 },
];
/** The socket and mark where workspacekit expects them. */
const SOCKET = '/.workspace/daemon.sock';
const MARK = '/.workspace/mark';
/** workspacekit's deadlines: ring0's context (connect + PrepareForUserNS), ring1's, Teardown's and the seccomp handler's. */
const RING0_MS = 30_000;
const RING1_MS = 10_000;

/**
 * The FUSE variant hung before the lower layer became a non-recursive clone
 * of the container's root (it was /proc/<init>/root, the mark included, so
 * the mark recursed into itself). A message here skips it.
 */
const FUSE_SKIP = undefined as string | undefined;

const VARIANTS = [
  { name: 'default config (shift auto: idmapped here)', config: {}, mark: 'idmapped' },
  { name: 'shift.method fuse', config: { shift: { method: 'fuse' } }, mark: 'fuse' },
] as const;

const daemons = daemonPerVariant(VARIANTS, (v) => v.config);
let n = 0;

function status(hostPid: number): Record<string, string> {
  return Object.fromEntries(
    readFileSync(`/proc/${hostPid}/status`, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()]),
  );
}

/** True when `hostPid` has exited (a zombie counts). */
function gone(hostPid: number): boolean {
  try {
    return status(hostPid).State!.startsWith('Z');
  } catch {
    return true;
  }
}

/**
 * A workspace container as an OCI runtime makes it for Gitpod: its own root
 * (a busybox rootfs; the host's /usr and this repository bound read-only so
 * the gRPC clients can run inside), `<state-dir>/workspaces/<id>` bound
 * read-only at /.workspace, a /workspace directory, /tmp mode 1777, init as
 * uid 33333; registered with `daemon`.
 */
async function workspace(t: ExecutionContext, daemon: TestDaemon) {
  const fs = makeRootfs();
  t.teardown(fs.cleanup);
  const id = `wk-${process.pid}-${++n}`;
  const wsDir = join(daemon.stateDir, 'workspaces', id);
  mkdirSync(wsDir, { recursive: true, mode: 0o755 });
  for (const d of ['workspace', 'usr', '.workspace']) mkdirSync(join(fs.rootfs, d), { recursive: true });
  chmodSync(join(fs.rootfs, 'tmp'), 0o1777);
  symlinkSync('usr/lib', join(fs.rootfs, 'lib'));
  symlinkSync('usr/lib64', join(fs.rootfs, 'lib64'));
  // A /dev of its own with a null device (node opens it), a mount apart from the root as
  // a runtime's /dev tmpfs is: PrepareForUserNS makes the root nodev.
  const dev = join(fs.base, 'dev');
  mkdirSync(dev);
  const mknod = spawnSync('mknod', ['-m', '666', join(dev, 'null'), 'c', '1', '3'], { encoding: 'utf8' });
  if (mknod.status !== 0) throw new Error(`mknod: ${mknod.stderr}`);
  // What iwsd could have added to the host's mount table (see hostMounts).
  const own = [fs.base, wsDir, join(daemon.stateDir, 'fuse', id)];
  const hostBefore = hostMounts(own);
  const c = await TestContainer.startFor(t, {
    rootfs: fs.rootfs,
    initUid: RING0,
    binds: [
      { source: wsDir, target: '/.workspace', readOnly: true },
      { source: dev, target: '/dev' },
      { source: '/usr', target: '/usr', readOnly: true },
      { source: REPO, target: REPO, readOnly: true },
    ],
  });
  await daemon.add(id, c.initHostPid);
  const enter = ['nsenter', '--target', String(c.initHostPid), '--mount', '--pid', '--'];
  const asRing0 = ['setpriv', `--reuid=${RING0}`, `--regid=${RING0}`, '--clear-groups', '--'];
  return { c, id, wsDir, own, hostBefore, enter, asRing0, ...fs };
}

for (const v of VARIANTS) {
  const title = `workspacekit's ring sequence (${v.name}): an old client is answered FUSE, ring2 is root over its own files, nothing is left`;
  if (v.mark === 'fuse' && FUSE_SKIP) {
    test.skip(`${title} — SKIPPED: ${FUSE_SKIP}`, () => undefined);
    continue;
  }
  rootTest(title, async (t) => {
    const daemon = daemons.get(v)!;
    const { c, id, wsDir, own, hostBefore, enter, asRing0, rootfs } = await workspace(t, daemon);

    // ---- ring0: uid 33333 without capabilities, an old client ---------------------------
    const ring0 = await Agent.start(t, [...enter, ...asRing0]);
    const s0 = status(ring0.host);
    t.is(s0.Uid!.split(/\s+/)[1], String(RING0), 'ring0 runs as 33333');
    t.is(s0.CapEff, '0000000000000000', 'ring0 has no effective capabilities');
    const prep = await ring0.call(SOCKET, 'PrepareForUserNS', {}, { deadlineMs: RING0_MS });
    t.true(prep.ok, JSON.stringify(prep));
    const fsShift = prep.response?.fsShift;
    // workspacekit's ring1: FSShiftMethod_value[...] or Fatal("unknown FS shift method").
    if (fsShift !== 'FUSE' && fsShift !== 'SHIFTFS') return t.fail(`workspacekit would exit "unknown FS shift method": fs_shift ${String(fsShift)}`);
    t.is(fsShift, 'FUSE', 'shiftfs is not available here; the mark is bound');
    t.is(prep.response?.fullWorkspaceBackup, false);
    // The daemon made the mark it was configured for, and its log line says what it answered.
    const st = (await new StateStore(daemon.stateDir).load(id))!;
    t.is(st.mark?.method, v.mark);
    const line = await daemon.waitForLog((l) => l.workspace === id && l.rpc === 'PrepareForUserNS' && l.result === 'OK');
    t.like(line, { fsShift: { mark: v.mark, answered: 'FUSE' } });
    t.is(line.msg, `PrepareForUserNS ok: mark ${v.mark}, answered fs_shift FUSE`);

    // ---- ring1: new user + mount namespace of uid 33333, made after the mark ---------------
    // (util-linux unshare, propagation unchanged: what Go's clone(CLONE_NEWUSER|CLONE_NEWNS) does.)
    const ring1 = await Agent.start(t, [...enter, ...asRing0, 'unshare', '--user', '--mount', '--propagation', 'unchanged', '--']);
    for (const gid of [false, true]) {
      const w = await ring1.call(SOCKET, 'WriteIDMapping', { pid: ring1.pid, gid, mapping: MAPPING }, { deadlineMs: RING1_MS });
      t.true(w.ok, `WriteIDMapping gid=${gid}: ${JSON.stringify(w)}`);
    }
    const mapLines = MAPPING.map((m) => [m.containerId, m.hostId, m.size]);
    t.deepEqual(readMap(ring1.host, 'uid_map'), mapLines);
    t.deepEqual(readMap(ring1.host, 'gid_map'), mapLines);
    // The FUSE branch: the mark, recursively, as ring2's root; /workspace into it; a tmpfs /tmp.
    const mk = await ring1.run(['/bin/busybox', 'mktemp', '-d', '/tmp/supervisorXXXXXX']);
    t.is(mk.code, 0, mk.stderr);
    const root2 = mk.stdout.trim();
    for (const argv of [
      ['/bin/busybox', 'mount', '-o', 'rbind', MARK, root2],
      ['/bin/busybox', 'mount', '-o', 'rbind', '/workspace', `${root2}/workspace`],
      ['/bin/busybox', 'mount', '-t', 'tmpfs', 'tmpfs', `${root2}/tmp`],
    ]) {
      const r = await ring1.run(argv);
      t.is(r.code, 0, `${argv.join(' ')}: ${r.stderr}`);
    }

    // ---- ring2: new mount + PID namespaces; waits for its proc, then chroots -----------------
    const marker = `ring2-${id}`;
    const inner =
      'ls -ln / > /ring2.out && echo uid_map >> /ring2.out && cat /proc/self/uid_map >> /ring2.out && echo id $(id -u) >> /ring2.out && ' +
      'while [ ! -e /sys/kernel ]; do sleep 0.05; done; ls /sys > /ring2.sys.tmp && /bin/busybox mv /ring2.sys.tmp /ring2.sys; exec sleep 100000';
    const script = `: ${marker}; cd ${root2}; while [ ! -e ${root2}/proc/1/status ]; do /bin/busybox sleep 0.05; done; exec /bin/busybox chroot ${root2} /bin/busybox sh -c '${inner}'`;
    // --kill-child: ring2 dies with ring1's child as with workspacekit's Pdeathsig SIGKILL.
    await ring1.spawn(['/usr/bin/unshare', '--mount', '--pid', '--fork', '--kill-child', '--propagation', 'unchanged', '--', '/bin/busybox', 'sh', '-c', script]);
    const ring2Host = await waitFor('ring2', () => descendant(ring1.host, (cmd, p) => cmd.includes(marker) && nspid(p).length === 3));
    const ring2 = nspid(ring2Host)[1]!; // as ring1 (in the container's PID namespace) sees it
    t.is(nspid(ring2Host)[2], 1, 'ring2 is PID 1 of its namespace');
    const proc = await ring1.call(SOCKET, 'MountProc', { target: `${root2}/proc`, pid: ring2 }, { deadlineMs: RING1_MS });
    t.true(proc.ok, `MountProc: ${JSON.stringify(proc)}`);
    const out = await waitFor('ring2 output', () => {
      try {
        const s = readFileSync(`/proc/${ring2Host}/root/ring2.out`, 'utf8');
        return /^id \d+$/m.test(s) ? s : undefined;
      } catch {
        return undefined;
      }
    }, 20_000);
    // ring2 lists / (through the mark: owned by root, as in the image) and is root in its namespace.
    t.regex(out, /^d\S+\s+\d+\s+0\s+0\s.*\sbin$/m, out);
    t.regex(out, /^uid_map\n\s*0\s+33333\s+1\n\s*1\s+100000\s+65534$/m, out);
    t.regex(out, /^id 0$/m, out);
    // The file ring2's root made is owned by uid 0 on disk.
    const fuse = fusePids(id);
    t.is(fuse.length, v.mark === 'fuse' ? 1 : 0, 'a FUSE helper only for a FUSE mark');
    const onDisk = v.mark === 'fuse' ? join(`/proc/${fuse[0]}/root`, daemon.stateDir, 'fuse', id, 'upper', 'ring2.out') : join(rootfs, 'ring2.out');
    t.is(statSync(onDisk).uid, 0, onDisk);
    t.is(statSync(onDisk).gid, 0, onDisk);

    // ---- ring1's seccomp handler: ring2's `mount -t sysfs sysfs /sys` -----------------------
    const sys = await ring1.call(SOCKET, 'MountSysfs', { target: '/sys', pid: ring2 }, { deadlineMs: RING1_MS });
    t.true(sys.ok, `MountSysfs: ${JSON.stringify(sys)}`);
    const listed = await waitFor('ring2 sees sysfs', () => {
      try {
        return readFileSync(`/proc/${ring2Host}/root/ring2.sys`, 'utf8');
      } catch {
        return undefined;
      }
    });
    t.regex(listed, /^kernel$/m);
    const ring2Mounts = mountsOf(ring2Host);
    t.truthy(ring2Mounts.find(([mp, type]) => mp === '/proc' && type === 'proc'), JSON.stringify(ring2Mounts));
    t.truthy(ring2Mounts.find(([mp, type]) => mp === '/sys' && type === 'sysfs'), JSON.stringify(ring2Mounts));
    t.false(mountsOf(c.initHostPid).some(([, type]) => type === 'proc' || type === 'sysfs'), 'nothing mounted in the container’s own namespace');

    // ---- ring1 exits (ring2 with it), ring0 tears down, the container exits -----------------
    await ring1.exit();
    // Gone, or a zombie of the container's init (busybox sleep reaps nothing).
    await waitFor('ring2 gone', () => (gone(ring2Host) ? true : undefined));
    const td = await ring0.call(SOCKET, 'Teardown', {}, { deadlineMs: RING1_MS });
    t.true(td.ok && td.response?.success === true, JSON.stringify(td));
    t.false(mountsOf(c.initHostPid).some(([mp]) => mp === MARK), 'mark unmounted');
    t.deepEqual(fusePids(id), [], 'no FUSE helper left');
    await ring0.exit();
    await c.stop();
    await daemon.waitForLog((l) => l.workspace === id && typeof l.msg === 'string' && l.msg.includes('torn down'), 20_000);
    // Nothing iwsd made is left: its state, its FUSE dirs, the socket (the runtime's bind
    // source, made by this test, stays, emptied), host mounts.
    t.false(existsSync(join(daemon.stateDir, 'state', `${id}.json`)), 'state file archived');
    t.false(existsSync(join(daemon.stateDir, 'fuse', id)), 'FUSE dirs removed');
    t.deepEqual(readdirSync(wsDir), [], 'workspace directory emptied');
    t.deepEqual(hostMounts(own), hostBefore, 'the host’s mount table: nothing added');
    t.deepEqual(
      daemon.logs.filter((l) => l.workspace === id && typeof l.level === 'number' && l.level >= 40).map((l) => l.msg),
      [],
      'no warnings for this workspace',
    );
  });
}

// ---- a client that knows IDMAPPED; what no client can do -------------------------------------

/** A plain pivoted container and a root gRPC client inside its PID namespace. */
async function simple(t: ExecutionContext, daemon: TestDaemon) {
  const fs = makeRootfs();
  t.teardown(fs.cleanup);
  const c = await TestContainer.startFor(t, { rootfs: fs.rootfs });
  const id = `wk-${process.pid}-${++n}`;
  const socket = await daemon.add(id, c.initHostPid);
  return { c, id, socket, rootfs: fs.rootfs };
}

/** The mark as the container sees it: fs type, mount options, super options (no ids). */
function markOf(hostPid: number): string[] {
  const line = readFileSync(`/proc/${hostPid}/mountinfo`, 'utf8')
    .split('\n')
    .find((l) => l.split(' ')[4] === MARK);
  if (!line) return [];
  const f = line.split(' ');
  const sep = f.indexOf('-');
  return [f[sep + 1]!, f[5]!, f[sep + 3]!];
}

rootTest('a client that sends iwsd-fs-shift-accept: idmapped learns the true method; the mark is the same as an old client’s', async (t) => {
  const daemon = daemons.get(VARIANTS[0])!;
  const old = await simple(t, daemon);
  const knows = await simple(t, daemon);
  const picky = await simple(t, daemon);
  const a = await old.c.call(old.socket, 'PrepareForUserNS', {});
  const b = await knows.c.call(knows.socket, 'PrepareForUserNS', {}, { metadata: { 'iwsd-fs-shift-accept': 'idmapped' } });
  // A client that asks for FUSE (or anything else) gets no FUSE mark: only the label is the client's.
  const p = await picky.c.call(picky.socket, 'PrepareForUserNS', {}, { metadata: { 'iwsd-fs-shift-accept': 'fuse, shiftfs' } });
  t.is(a.response?.fsShift, 'FUSE', JSON.stringify(a));
  t.is(b.response?.fsShift, 'IDMAPPED', JSON.stringify(b));
  t.is(p.response?.fsShift, 'FUSE', JSON.stringify(p));
  const marks = [old, knows, picky].map((w) => markOf(w.c.initHostPid));
  t.false(marks[0]![0]!.startsWith('fuse'), `not a FUSE mount: ${marks[0]!.join(' ')}`);
  t.regex(marks[0]![1]!, /(^|,)idmapped(,|$)/, `an idmapped mount: ${marks[0]!.join(' ')}`);
  t.deepEqual(marks[1], marks[0], 'same mark type and options');
  t.deepEqual(marks[2], marks[0], 'same mark type and options');
  for (const w of [old, knows, picky]) {
    t.deepEqual(fusePids(w.id), [], 'no FUSE helper');
    const st = (await new StateStore(daemon.stateDir).load(w.id))!;
    t.is(st.mark?.method, 'idmapped');
  }
  // The same ownership view through each.
  for (const w of [old, knows, picky]) t.is(statSync(`/proc/${w.c.initHostPid}/root${MARK}/bin/busybox`).uid, 33333);
  for (const w of [old, knows, picky]) t.true((await w.c.call(w.socket, 'Teardown', {})).response?.success === true);
});

rootTest('`iwsd call PrepareForUserNS` and iwsd/client (iwsd’s own clients) show the true method; on a FUSE daemon the header changes nothing', async (t) => {
  const idm = await simple(t, daemons.get(VARIANTS[0])!);
  const agent = await Agent.start(t, ['nsenter', '--target', String(idm.c.initHostPid), '--pid', '--']);
  const r = await agent.run([process.execPath, IWSD, 'call', 'PrepareForUserNS', '--socket', idm.socket]);
  t.is(r.code, 0, r.stderr);
  t.is((JSON.parse(r.stdout) as { fsShift: string }).fsShift, 'IDMAPPED', r.stdout);
  t.true((await idm.c.call(idm.socket, 'Teardown', {})).ok);
  // And the library client (iwsd/client, built into dist/).
  const lib = await simple(t, daemons.get(VARIANTS[0])!);
  const libAgent = await Agent.start(t, ['nsenter', '--target', String(lib.c.initHostPid), '--pid', '--']);
  const script = `import { createClient } from ${JSON.stringify(join(REPO, 'dist/api/client.js'))}; const c = createClient(${JSON.stringify(lib.socket)}); console.log(JSON.stringify(await c.prepareForUserNS())); c.close();`;
  const viaLib = await libAgent.run([process.execPath, '--input-type=module', '-e', script]);
  t.is(viaLib.code, 0, viaLib.stderr);
  t.is((JSON.parse(viaLib.stdout) as { fsShift: string }).fsShift, 'IDMAPPED', viaLib.stdout);
  t.true((await lib.c.call(lib.socket, 'Teardown', {})).ok);

  const fuseDaemon = daemons.get(VARIANTS[1])!;
  const f = await simple(t, fuseDaemon);
  const p = await f.c.call(f.socket, 'PrepareForUserNS', {}, { metadata: { 'iwsd-fs-shift-accept': 'idmapped' } });
  t.is(p.response?.fsShift, 'FUSE', JSON.stringify(p));
  t.is(fusePids(f.id).length, 1, 'a FUSE mark, as configured');
  t.true((await f.c.call(f.socket, 'Teardown', {})).response?.success === true);
});

rootTest('shift.idmappedAnswer: idmapped reports the true method to old clients too, and a SIGHUP applies it to running workspaces', async (t) => {
  const daemon = await TestDaemon.startFor(t, {});
  const before = await simple(t, daemon);
  const after = await simple(t, daemon);
  t.is((await before.c.call(before.socket, 'PrepareForUserNS', {})).response?.fsShift, 'FUSE');
  writeFileSync(join(daemon.base, 'config.json'), JSON.stringify({ shift: { idmappedAnswer: 'idmapped', method: 'fuse' } }));
  daemon.proc.kill('SIGHUP');
  const rec = await daemon.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('configuration reloaded'));
  t.deepEqual(rec.applied, ['shift.idmappedAnswer']);
  t.deepEqual(rec.needsRestart, ['shift.method']);
  // `after` was registered before the reload; its mark is still idmapped (shift.method needs a restart).
  t.is((await after.c.call(after.socket, 'PrepareForUserNS', {})).response?.fsShift, 'IDMAPPED');
  t.deepEqual(fusePids(after.id), []);
  for (const w of [before, after]) t.true((await w.c.call(w.socket, 'Teardown', {})).response?.success === true);
});
