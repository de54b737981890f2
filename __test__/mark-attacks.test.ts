/**
 * Attacks on the mark (PrepareForUserNS), each run as the attacker it names
 * (issue 11, item 5): setuid and device nodes through the mark, and ring root
 * trying to take nosuid/nodev off the mark. Temp dirs only; every container,
 * ring and daemon is cleaned up also when a test fails.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import test, { type ExecutionContext } from 'ava';

import { TestContainer, hostMounts, makeRootfs, mountsOf, nspid, sleeperInNewUserns } from './helpers/container.js';
import { GITPOD_SHIFT as SHIFT } from './helpers/daemon.js';
import { daemonPerVariant } from './helpers/variants.js';
import { rootTest } from './helpers/root.js';

const METHODS = ['idmapped', 'fuse'] as const;
type Method = (typeof METHODS)[number];
const daemons = daemonPerVariant(METHODS, (method) => ({ shift: { method } }));
let n = 0;

const MARK = '/.workspace/mark';
/** The unprivileged container user of the attacks. */
const USER = 1000;

/**
 * A static x86-64 program that exits with its effective uid (mod 256):
 * geteuid(); exit(euid). 0 means it ran as root.
 */
function euidProgram(): Buffer {
  const code = Buffer.from([0xb8, 0x6b, 0, 0, 0, 0x0f, 0x05, 0x89, 0xc7, 0xb8, 0x3c, 0, 0, 0, 0x0f, 0x05]);
  const b = Buffer.alloc(120 + code.length);
  Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]).copy(b, 0);
  b.writeUInt16LE(2, 16); // ET_EXEC
  b.writeUInt16LE(0x3e, 18); // x86-64
  b.writeUInt32LE(1, 20);
  b.writeBigUInt64LE(0x400078n, 24); // entry
  b.writeBigUInt64LE(64n, 32); // phoff
  b.writeUInt16LE(64, 52);
  b.writeUInt16LE(56, 54);
  b.writeUInt16LE(1, 56);
  b.writeUInt32LE(1, 64); // PT_LOAD
  b.writeUInt32LE(5, 68); // R+X
  b.writeBigUInt64LE(0x400000n, 80);
  b.writeBigUInt64LE(0x400000n, 88);
  b.writeBigUInt64LE(BigInt(b.length), 96);
  b.writeBigUInt64LE(BigInt(b.length), 104);
  b.writeBigUInt64LE(0x1000n, 112);
  code.copy(b, 120);
  return b;
}

interface Sh {
  code: number;
  stdout: string;
  stderr: string;
}

function run(args: string[]): Sh {
  const r = spawnSync('nsenter', args, { encoding: 'utf8' });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** In the container's namespaces and root: as container root, or as `uid`. */
function inContainer(init: number, argv: string[], uid?: number): Sh {
  const who = uid === undefined ? [] : ['--setuid', String(uid), '--setgid', String(uid)];
  return run(['--target', String(init), '--mount', '--pid', '--net', '--root', '--wd=/', ...who, '--', ...argv]);
}

/** As root of the ring `ring` (host PID): its user and mount namespaces, its root. */
function asRingRoot(ring: number, script: string): Sh {
  return run(['--target', String(ring), '--user', '--mount', '--root', '--wd=/', '--', '/bin/busybox', 'sh', '-c', script]);
}


/**
 * Starts a ring inside the container: `busybox unshare -U [-m] sleep`, as
 * `uid` (the unprivileged user) or as container root (as workspacekit does,
 * with its own mount namespace). Returns its host PID.
 */
async function startRing(t: ExecutionContext, init: number, opts: { uid?: number; ownMountNs?: boolean; inRing?: number }): Promise<number> {
  const flags = opts.ownMountNs ? ['-U', '-m'] : ['-U'];
  const who = opts.uid === undefined ? [] : ['--setuid', String(opts.uid), '--setgid', String(opts.uid)];
  const enter =
    opts.inRing === undefined
      ? ['--target', String(init), '--mount', '--pid', '--net', '--root', '--wd=/', ...who]
      : ['--target', String(opts.inRing), '--user', '--mount', '--pid', '--root', '--wd=/'];
  const p = spawn('nsenter', [...enter, '--', '/bin/busybox', 'unshare', ...flags, '/bin/busybox', 'sleep', '100000'], { stdio: 'ignore' });
  t.teardown(() => {
    p.kill('SIGKILL');
  });
  const outer = readlinkSync(`/proc/${opts.inRing ?? 'self'}/ns/user`);
  return sleeperInNewUserns(p, outer, 'ring process');
}

async function setup(t: ExecutionContext, method: Method) {
  const daemon = daemons.get(method)!;
  const fs = makeRootfs();
  t.teardown(fs.cleanup);
  // Only what iwsd could have added (other programs mount meanwhile on a busy node).
  const hostBefore = hostMounts([fs.base, daemon.base]);
  writeFileSync(join(fs.rootfs, 'bin/euid'), euidProgram(), { mode: 0o755 });
  const c = await TestContainer.start({ rootfs: fs.rootfs });
  t.teardown(async () => {
    await c.stop();
    const after = hostMounts([fs.base, daemon.base]);
    if (after.join('\n') !== hostBefore.join('\n')) throw new Error(`the host's mount table changed: ${JSON.stringify({ before: hostBefore, after })}`);
  });
  const id = `ma-${process.pid}-${++n}`;
  const socket = await daemon.add(id, c.initHostPid);
  const prep = await c.call(socket, 'PrepareForUserNS', {});
  if (!prep.ok) throw new Error(`PrepareForUserNS: ${JSON.stringify(prep)}`);
  return { c, socket, id, daemon, ...fs };
}

/** Writes the shift mapping as the uid and gid map of `ring` through WriteIDMapping. */
async function mapRing(c: TestContainer, socket: string, ring: number) {
  const inside = nspid(ring).at(-1)!;
  const out = [];
  for (const gid of [false, true]) out.push(await c.call(socket, 'WriteIDMapping', { pid: inside, gid, mapping: SHIFT }));
  return out;
}

function markOptions(hostPid: number): string[] {
  const m = mountsOf(hostPid).find(([mp]) => mp === MARK);
  if (!m) throw new Error(`no mark in ${hostPid}'s mount table`);
  return m[2].split(',');
}

if (process.arch !== 'x64') test('mark attacks need x86-64 (the euid probe is an x86-64 program)', (t) => t.fail());

for (const method of METHODS) {
  rootTest(`${method}: the mark is nosuid,nodev`, async (t) => {
    const { c } = await setup(t, method);
    const o = markOptions(c.initHostPid);
    t.true(o.includes('nosuid') && o.includes('nodev'), o.join(','));
  });

  rootTest(`${method}: an unprivileged user's setuid-root binary made through the mark does not raise euid`, async (t) => {
    const { c, socket, rootfs } = await setup(t, method);
    // The unprivileged user makes a ring and asks for the shift mapping.
    const ring = await startRing(t, c.initHostPid, { uid: USER });
    const maps = await mapRing(c, socket, ring);
    // Gitpod's ring0 is an unprivileged user: its ring gets the shift mapping.
    for (const m of maps) t.true(m.ok, JSON.stringify(m));
    // Ring root: on-disk uid 0 shows as its own; it copies a program through
    // the mark and makes it setuid.
    const made = asRingRoot(ring, `cp /bin/euid ${MARK}/tmp/suid && chmod 4755 ${MARK}/tmp/suid`);
    t.is(made.code, 0, made.stderr);
    t.is(inContainer(c.initHostPid, ['/bin/euid'], USER).code, USER & 0xff, 'the probe works');
    // The unprivileged user runs it, through the mark and from the normal path.
    for (const path of [`${MARK}/tmp/suid`, '/tmp/suid']) {
      const r = inContainer(c.initHostPid, [path], USER);
      if (r.code === 127 || /No such file|not found/.test(r.stderr)) continue;
      t.is(r.code, USER & 0xff, `${path} ran with euid ${r.code} (mod 256), not the user's`);
    }
    // Through an idmapped mark the program is setuid root on disk (the mark's
    // purpose: ring root is on-disk root); the container's root mount is
    // nosuid, which is why it ran without privilege from the normal path.
    const onDisk = join(rootfs, 'tmp/suid');
    if (method === 'idmapped') {
      const st = statSync(onDisk);
      t.true(st.uid === 0 && (st.mode & 0o4000) !== 0, 'the attack really planted a setuid-root program');
      t.true(mountsOf(c.initHostPid).find(([mp]) => mp === '/')![2].split(',').includes('nosuid'), 'the container root is nosuid');
    } else if (existsSync(onDisk)) {
      t.fail(`${onDisk}: a FUSE mark's copy-ups must not reach the container's root filesystem`);
    }
  });

  rootTest(`${method}: a device node reached through the mark cannot be opened`, async (t) => {
    const { c, socket } = await setup(t, method);
    // Container root has CAP_MKNOD: through the mark, and on the normal path.
    const viaMark = inContainer(c.initHostPid, ['/bin/busybox', 'sh', '-c', `mknod -m 666 ${MARK}/tmp/null-m c 1 3`]);
    t.log('mknod through the mark:', viaMark.code === 0 ? 'made' : viaMark.stderr.trim());
    const plain = inContainer(c.initHostPid, ['/bin/busybox', 'sh', '-c', 'mknod -m 666 /tmp/null-p c 1 3']);
    t.is(plain.code, 0, plain.stderr);
    const ring = await startRing(t, c.initHostPid, { ownMountNs: true });
    for (const m of await mapRing(c, socket, ring)) t.true(m.ok, JSON.stringify(m));
    const mk = asRingRoot(ring, `mknod -m 666 ${MARK}/tmp/null-r c 1 3`);
    t.not(mk.code, 0, 'ring root made a device node (it has no CAP_MKNOD on the host)');
    let tried = 0;
    for (const name of ['null-m', 'null-p']) {
      const p = `${MARK}/tmp/${name}`;
      if (inContainer(c.initHostPid, ['/bin/busybox', 'test', '-c', p]).code !== 0) continue;
      tried++;
      const opens = [
        ['container root', inContainer(c.initHostPid, ['/bin/busybox', 'sh', '-c', `echo x > ${p}`])],
        ['the unprivileged user', inContainer(c.initHostPid, ['/bin/busybox', 'sh', '-c', `echo x > ${p}`], USER)],
        ['ring root', asRingRoot(ring, `echo x > ${p}`)],
      ] as const;
      for (const [who, r] of opens) {
        t.not(r.code, 0, `${p} opened by ${who}`);
        t.regex(r.stderr, /Permission denied/, `${p} by ${who}: ${r.stderr}`);
      }
    }
    t.true(tried > 0, 'no device node reachable through the mark to try');
  });

  rootTest(`${method}: ring root cannot take nosuid or nodev off the mark`, async (t) => {
    const { c, socket } = await setup(t, method);
    // As workspacekit does: container root makes the ring with its own mount
    // namespace (a copy of the container's, made after the mark), and iwsd
    // writes its maps.
    const ring = await startRing(t, c.initHostPid, { ownMountNs: true });
    for (const m of await mapRing(c, socket, ring)) t.true(m.ok, JSON.stringify(m));
    const o = markOptions(ring);
    t.true(o.includes('nosuid') && o.includes('nodev'), `in the ring: ${o.join(',')}`);
    for (const opts of ['remount,bind,suid', 'remount,bind,dev', 'remount,bind,suid,dev']) {
      const r = asRingRoot(ring, `mount -o ${opts} ${MARK}`);
      t.not(r.code, 0, `ring root: mount -o ${opts} ${MARK} succeeded`);
    }
    // A bind of the mark keeps the locks.
    const b = asRingRoot(ring, `mkdir -p /tmp/m && mount --bind ${MARK} /tmp/m && mount -o remount,bind,suid,dev /tmp/m`);
    t.not(b.code, 0, 'ring root: remount of a bind of the mark succeeded');
    t.true(markOptions(ring).includes('nosuid'));
    // A ring in the container's own mount namespace has no say over it at all.
    const flat = await startRing(t, c.initHostPid, { ownMountNs: false });
    for (const m of await mapRing(c, socket, flat)) t.true(m.ok, JSON.stringify(m));
    const r = asRingRoot(flat, `mount -o remount,bind,suid,dev ${MARK}`);
    t.not(r.code, 0, 'ring root without its own mount namespace remounted the mark');
    const after = markOptions(c.initHostPid);
    t.true(after.includes('nosuid') && after.includes('nodev'), after.join(','));
  });
}

