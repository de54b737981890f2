/**
 * MountProc / UmountProc / MountSysfs / UmountSysfs end to end, as root:
 * the real daemon, a container with its own PID, mount and network
 * namespaces, and a chrooted busybox process in it as the requester.
 */
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import type { ExecutionContext } from 'ava';

import { TestContainer, hostMounts, makeRootfs, mountsAdded, mountsOf, shInside } from './helpers/container.js';
import { daemonPerVariant } from './helpers/variants.js';
import { rootTest, rootTestSerial } from './helpers/root.js';

// Every test runs against both assembly strategies: the fd-based one and the
// fallback for older kernels, forced by configuration.
/** These tests make thousands of mount calls: far above the default rate limits. */
const MANY = Object.fromEntries(['mountProc', 'umountProc', 'mountSysfs', 'umountSysfs'].map((k) => [k, { points: 100_000 }]));

const STRATEGIES = ['detached', 'fallback'] as const;
type Strategy = (typeof STRATEGIES)[number];
const daemons = daemonPerVariant(STRATEGIES, (mountStrategy) => ({ mountStrategy, limits: { mountsPerWorkspace: 2000 }, rateLimits: MANY }));
/** Not the default masks: config `proc` and `sysfs` name what each mount hides (the daemon's mask sets, made once at start). */
const CUSTOM = { proc: { masked: ['cpuinfo', 'acpi'], readOnly: ['sys'] }, sysfs: { masked: ['kernel'] } };
const customMasks = daemonPerVariant(['custom'] as const, () => ({ mountStrategy: 'detached', rateLimits: MANY, ...CUSTOM }));
let n = 0;

/** A registered container with a chrooted requester. */
async function setup(t: ExecutionContext, strategy: Strategy | 'custom') {
  const daemon = strategy === 'custom' ? customMasks.get('custom')! : daemons.get(strategy)!;
  const fs = makeRootfs();
  t.teardown(fs.cleanup);
  const id = `m-${process.pid}-${++n}`;
  const own = [fs.base, join(daemon.stateDir, 'workspaces', id), join(daemon.stateDir, 'fuse', id)];
  const hostBefore = hostMounts(own);
  const c = await TestContainer.start({ mountNs: true });
  t.teardown(async () => {
    await c.stop();
    // Every test leaves what iwsd could have added to the host's mount table
    // as it was (a throwing teardown fails the test).
    const after = hostMounts(own);
    if (JSON.stringify(after) !== JSON.stringify(hostBefore)) throw new Error(`the host's mount table changed: ${JSON.stringify({ before: hostBefore, after })}`);
  });
  const socket = await daemon.add(id, c.initHostPid);
  const pid = await c.spawnChroot(fs.rootfs);
  const host = c.hostPidOf(pid);
  return { c, id, socket, pid, host, daemon, ...fs };
}

for (const strategy of STRATEGIES) {
  rootTest(`${strategy}: MountProc: a masked proc of the container, nosuid,nodev,noexec, visible inside only`, async (t) => {
    const { c, socket, pid, host } = await setup(t, strategy);
    const r = await c.call(socket, 'MountProc', { target: '/proc', pid });
    t.true(r.ok, JSON.stringify(r));

    const mounts = mountsOf(host);
    const proc = mounts.find(([mp, type]) => mp === '/proc' && type === 'proc');
    t.truthy(proc, JSON.stringify(mounts));
    for (const o of ['nosuid', 'nodev', 'noexec']) t.true(proc![2].split(',').includes(o), `${o} in ${proc![2]}`);

    // PID 1 is the container's init (the agent), and the requester is there.
    t.is(shInside(host, 'cat /proc/1/cmdline | tr "\\0" " "').stdout.includes('agent.mjs'), true);
    t.is(shInside(host, `cat /proc/${pid}/comm`).stdout.trim(), 'busybox');
    for (const masked of ['kcore', 'keys', 'timer_list', 'interrupts', 'sched_debug']) {
      if (readdirSync('/proc').includes(masked)) t.is(shInside(host, `cat /proc/${masked} | wc -c`).stdout.trim(), '0', masked);
    }
    const w = shInside(host, 'echo pwned > /proc/sys/kernel/hostname');
    t.not(w.code, 0);
    t.regex(w.stderr, /Read-only file system/);
    if (readdirSync('/proc').includes('sysrq-trigger')) t.regex(shInside(host, 'echo b > /proc/sysrq-trigger').stderr, /Read-only/);
  });
}

for (const strategy of STRATEGIES) {
  rootTest(`${strategy}: MountSysfs: a read-only masked sysfs showing only the container network`, async (t) => {
    const { c, socket, pid, host } = await setup(t, strategy);
    const r = await c.call(socket, 'MountSysfs', { target: '/sys', pid });
    t.true(r.ok, JSON.stringify(r));
    const sys = mountsOf(host).find(([mp, type]) => mp === '/sys' && type === 'sysfs');
    t.truthy(sys);
    for (const o of ['ro', 'nosuid', 'nodev', 'noexec']) t.true(sys![2].split(',').includes(o), `${o} in ${sys![2]}`);
    t.is(shInside(host, 'ls /sys/class/net').stdout.trim(), 'lo');
    const fw = shInside(host, 'ls -A /sys/firmware | wc -l');
    t.is(fw.stdout.trim(), '0', JSON.stringify(fw));
    const u = await c.call(socket, 'UmountSysfs', { target: '/sys', pid });
    t.true(u.ok, JSON.stringify(u));
    t.false(mountsOf(host).some(([mp]) => mp === '/sys'));
  });
}

rootTest('configured masks (config proc, sysfs) are what every MountProc and MountSysfs hides, call after call', async (t) => {
  const { c, socket, pid, host } = await setup(t, 'custom');
  for (let i = 0; i < 3; i++) {
    const r = await c.call(socket, 'MountProc', { target: '/proc', pid });
    t.true(r.ok, JSON.stringify(r));
    // cpuinfo hidden (a /dev/null bind), sys read-only; a default mask not configured here is not applied.
    t.is(shInside(host, 'cat /proc/cpuinfo | wc -c').stdout.trim(), '0', 'cpuinfo masked');
    t.not(shInside(host, 'cat /proc/version | wc -c').stdout.trim(), '0', 'version shown');
    t.not(shInside(host, 'echo 1 > /proc/sys/kernel/ns_last_pid').code, 0, 'sys read-only');
    if (readdirSync('/proc').includes('interrupts')) t.not(shInside(host, 'cat /proc/interrupts | wc -c').stdout.trim(), '0', 'interrupts (a default mask) not configured');
    t.true((await c.call(socket, 'UmountProc', { target: '/proc', pid })).ok);
    const s = await c.call(socket, 'MountSysfs', { target: '/sys', pid });
    t.true(s.ok, JSON.stringify(s));
    t.is(shInside(host, 'ls -A /sys/kernel | wc -l').stdout.trim(), '0', 'sysfs kernel masked');
    t.not(shInside(host, 'ls -A /sys/firmware | wc -l').stdout.trim(), '0', 'firmware (a default mask) not configured');
    t.true((await c.call(socket, 'UmountSysfs', { target: '/sys', pid })).ok);
  }
});

for (const strategy of STRATEGIES) {
  rootTest(`${strategy}: escapes are INVALID_ARGUMENT and mount nothing`, async (t) => {
    const { c, socket, pid, outside } = await setup(t, strategy);
    const before = mountsOf(c.initHostPid);
    const cases: [string, RegExp][] = [
      ['/escape', /symlink/],
      ['/work/sub/out', /symlink/],
      ['/work/../escape', /'\.\.'/],
      ['/../../../../tmp', /'\.\.'/],
      ['/file', /not a directory/],
      ['/nope', /does not exist/],
      ['proc', /relative/],
      ['', /empty/],
    ];
    for (const [target, why] of cases) {
      const r = await c.call(socket, 'MountProc', { target, pid });
      t.is(r.code, 'INVALID_ARGUMENT', `${target}: ${JSON.stringify(r)}`);
      t.regex(r.details ?? '', why, target);
    }
    t.true((await c.call(socket, 'MountProc', { target: '/proc', pid })).ok);
    const withProc = mountsOf(c.initHostPid);
    for (const target of ['/proc/self/root', '/proc/1/root', '/proc/self/cwd', `/proc/${pid}/root/work`]) {
      const r = await c.call(socket, 'MountProc', { target, pid });
      t.is(r.code, 'INVALID_ARGUMENT', `${target}: ${JSON.stringify(r)}`);
    }
    t.deepEqual(mountsAdded(c.initHostPid, withProc), [], 'refused requests mounted nothing');
    t.true(withProc.length > before.length);
    t.deepEqual(readdirSync(outside), []);
  });
}

for (const strategy of STRATEGIES) {
  rootTest(`${strategy}: a PID outside the workspace is refused before anything is mounted`, async (t) => {
    const { c, socket, daemon } = await setup(t, strategy);
    const before = mountsOf(c.initHostPid);
    // The daemon's own host PID and a PID that exists nowhere: one answer,
    // so a workspace cannot probe which host PIDs exist.
    const r1 = await c.call(socket, 'MountProc', { target: '/proc', pid: daemon.proc.pid });
    t.is(r1.code, 'NOT_FOUND', JSON.stringify(r1));
    const r2 = await c.call(socket, 'MountSysfs', { target: '/proc', pid: 2147483000 });
    t.is(r2.code, 'NOT_FOUND', JSON.stringify(r2));
    t.is(r1.details?.replace(String(daemon.proc.pid), 'N'), r2.details?.replace('2147483000', 'N'));
    t.deepEqual(mountsAdded(c.initHostPid, before), []);
  });
}

for (const strategy of STRATEGIES) {
  rootTest(`${strategy}: UmountProc removes only mounts iwsd made for this workspace`, async (t) => {
    const { c, socket, pid, host, daemon } = await setup(t, strategy);
    // The container's own /proc-like mount: a tmpfs the requester mounts itself.
    t.is(shInside(host, '/bin/busybox mount -t tmpfs own /tmp').code, 0);
    const theirs = await c.call(socket, 'UmountProc', { target: '/tmp', pid });
    t.is(theirs.code, 'PERMISSION_DENIED', JSON.stringify(theirs));
    t.true(mountsOf(host).some(([mp, type]) => mp === '/tmp' && type === 'tmpfs'), 'left mounted');
    // The container's original /proc (its init sees the host's proc there)
    // and a proc the requester mounted itself are not ours either.
    const orig = await c.call(socket, 'UmountProc', { target: '/proc', pid: 1 });
    t.is(orig.code, 'PERMISSION_DENIED', JSON.stringify(orig));
    t.true(mountsOf(c.initHostPid).some(([mp, type]) => mp === '/proc' && type === 'proc'), 'left mounted');
    t.is(shInside(host, '/bin/busybox mount -t proc proc /proc').code, 0);
    const own = await c.call(socket, 'UmountProc', { target: '/proc', pid });
    t.is(own.code, 'PERMISSION_DENIED', JSON.stringify(own));
    t.true(mountsOf(host).some(([mp, type]) => mp === '/proc' && type === 'proc'), 'left mounted');
    t.is(shInside(host, '/bin/busybox umount /proc').code, 0);
    // A directory with nothing mounted on it.
    const none = await c.call(socket, 'UmountProc', { target: '/work/target', pid });
    t.is(none.code, 'NOT_FOUND', JSON.stringify(none));

    t.true((await c.call(socket, 'MountProc', { target: '/proc', pid })).ok);
    t.true((await c.call(socket, 'MountSysfs', { target: '/sys', pid })).ok);
    // A proc mount is not a sysfs mount and vice versa.
    t.is((await c.call(socket, 'UmountSysfs', { target: '/proc', pid })).code, 'PERMISSION_DENIED');
    t.is((await c.call(socket, 'UmountProc', { target: '/sys', pid })).code, 'PERMISSION_DENIED');
    // A mask inside our proc is not removable on its own.
    t.is((await c.call(socket, 'UmountProc', { target: '/proc/sys', pid })).code, 'PERMISSION_DENIED');
    // No second workspace can be registered on the same container (it would
    // get a policy and a mount count of its own over the same processes).
    await t.throwsAsync(daemon.add(`m-other-${process.pid}-${++n}`, c.initHostPid), { message: /one registration per container/ });

    t.true((await c.call(socket, 'UmountProc', { target: '/proc', pid })).ok);
    t.true((await c.call(socket, 'UmountSysfs', { target: '/sys', pid })).ok);
    t.false(mountsOf(host).some(([mp]) => mp.startsWith('/proc') || mp.startsWith('/sys')), JSON.stringify(mountsOf(host)));
    // Once gone, it is gone.
    t.is((await c.call(socket, 'UmountProc', { target: '/proc', pid })).code, 'NOT_FOUND');
  });
}

function daemonCounts(pid: number): { fds: number; threads: number } {
  const threads = Number(/^Threads:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
  return { fds: readdirSync(`/proc/${pid}/fd`).length, threads };
}

// One gRPC server serves every workspace socket; a call must act on the
// workspace of the socket its connection came through, never another one.
rootTest('concurrent calls on two workspace sockets each act on their own workspace', async (t) => {
  const a = await setup(t, 'detached');
  const b = await setup(t, 'detached');
  const burst = (rpc: string, unrpc: string, pid: number) =>
    Array.from({ length: 40 }, (_, i) => ({ rpc: i % 2 ? unrpc : rpc, request: { target: '/proc', pid } })).concat([{ rpc, request: { target: '/proc', pid } }]);
  const [ra, rb] = await Promise.all([
    a.c.callMany(a.socket, burst('MountProc', 'UmountProc', a.pid), 1),
    b.c.callMany(b.socket, burst('MountSysfs', 'UmountSysfs', b.pid), 1),
  ]);
  t.deepEqual(ra.filter((r) => !r.ok), []);
  t.deepEqual(rb.filter((r) => !r.ok), []);
  // a ends with a proc at /proc and b with a sysfs there, each only in its own container.
  t.deepEqual(mountsOf(a.host).filter(([mp]) => mp === '/proc').map(([, type]) => type), ['proc']);
  t.deepEqual(mountsOf(b.host).filter(([mp]) => mp === '/proc').map(([, type]) => type), ['sysfs']);
  // Every audit record names the workspace whose socket carried the call.
  const recs = (id: string) => a.daemon.logs.filter((l) => l.workspace === id && typeof l.rpc === 'string');
  for (let i = 0; i < 100 && recs(a.id).length + recs(b.id).length < 82; i++) await new Promise((r) => setTimeout(r, 50));
  t.deepEqual([...new Set(recs(a.id).map((l) => l.rpc))].sort(), ['MountProc', 'UmountProc']);
  t.deepEqual([...new Set(recs(b.id).map((l) => l.rpc))].sort(), ['MountSysfs', 'UmountSysfs']);
  t.is(recs(a.id).length, 41);
  t.is(recs(b.id).length, 41);
});

for (const strategy of STRATEGIES) {
  rootTestSerial(`${strategy}: 1,000 MountProc/UmountProc cycles leave fds, threads and the mount table as they were`, async (t) => {
    const { c, socket, pid, host, daemon } = await setup(t, strategy);
    const cycle = [
      { rpc: 'MountProc', request: { target: '/proc', pid } },
      { rpc: 'UmountProc', request: { target: '/proc', pid } },
    ];
    // Warm up (connections, libuv pool threads), then let closed connections settle.
    await c.callMany(socket, Array.from({ length: 10 }, () => cycle).flat());
    await new Promise((r) => setTimeout(r, 500));
    const mountsBefore = mountsOf(host);
    const before = daemonCounts(daemon.proc.pid!);
    const results = await c.callMany(socket, Array.from({ length: 1000 }, () => cycle).flat());
    t.deepEqual(results.filter((r) => !r.ok), [], 'every call succeeded');
    await new Promise((r) => setTimeout(r, 500));
    t.deepEqual(mountsAdded(host, mountsBefore), []);
    const after = daemonCounts(daemon.proc.pid!);
    // Serial: no other test talks to this daemon meanwhile.
    t.deepEqual(after, before);
  });
}

for (const strategy of STRATEGIES) {
  rootTest(`${strategy}: race: a directory swapped with a symlink to a host path never redirects a mount`, async (t) => {
    const { c, socket, pid, rootfs, outside } = await setup(t, strategy);
    // /work/a is swapped between a real directory and a symlink to a host
    // directory outside the root; both contain "target". A mount must land in
    // the real one or be refused, never follow the symlink.
    mkdirSync(join(rootfs, 'work/a/target'), { recursive: true });
    mkdirSync(join(outside, 'target'));
    await c.startSwapper(join(rootfs, 'work/a'), join(rootfs, 'work/alink'), outside);
    const calls = Array.from({ length: 600 }, () => ({ rpc: 'MountProc', request: { target: '/work/a/target', pid } }));
    const results = await c.callMany(socket, calls, 8);
    await c.stopSwapper();
    const outcomes = new Set(results.map((r) => (r.ok ? 'OK' : r.code)));
    for (const o of outcomes) t.true(['OK', 'INVALID_ARGUMENT'].includes(o!), `unexpected outcome ${o}`);
    const ok = results.filter((r) => r.ok).length;
    t.log(`${ok} of ${results.length} mounts succeeded, ${results.length - ok} refused under the race`);
    t.true(ok > 0 && ok < results.length, 'the race was real: some calls won, some lost');
    // In the container's full view (its init has the host's root), every proc
    // mount iwsd made lies inside the rootfs, none under the outside dir.
    const ours = mountsOf(c.initHostPid).filter(([mp, type]) => type === 'proc' && mp.startsWith('/tmp/'));
    t.is(ours.filter(([mp]) => mp.endsWith('/target')).length, ok, 'one proc (plus its read-only submounts) per success');
    for (const [mp] of ours) t.true(mp.startsWith(`${rootfs}/work/`) && !mp.startsWith(outside), `mount at ${mp} escaped the root`);
    t.deepEqual(readdirSync(join(outside, 'target')), [], 'nothing appeared behind the symlink');
  });
}
