/**
 * Attacks of "Hostile workspace, part 1" that go through mount namespaces,
 * each run through the real daemon as the attacker it names, in a container
 * shaped like an OCI runtime's (own root, PID, mount and network namespaces).
 * Each of them succeeded against a565479.
 */
import { spawn } from 'node:child_process';
import { readlinkSync, writeFileSync } from 'node:fs';


import { DEFAULT_PROC_MASKS, DEFAULT_SYSFS_MASKS } from '../src/api/native.js';
import { TestContainer, children, makeRootfs, mountsOf, nspid, shAsUserns, waitFor } from './helpers/container.js';
import { daemonPerVariant } from './helpers/variants.js';
import { rootTest } from './helpers/root.js';

const STRATEGIES = ['detached', 'fallback'] as const;
const daemons = daemonPerVariant(STRATEGIES, (mountStrategy) => ({ mountStrategy }));
let n = 0;

/** Mount points at or under `dir` in the test's own (the host's) mount namespace. */
function hostMountsUnder(dir: string): string[] {
  return mountsOf(process.pid)
    .map(([mp]) => mp)
    .filter((mp) => mp === dir || mp.startsWith(`${dir}/`));
}


/**
 * A ring: a process in the container (its root, mount and PID namespaces) in a
 * new user *and* mount namespace, uid/gid 0 mapped, as workspacekit's ring1.
 */
async function startRing(initHostPid: number): Promise<{ host: number; pid: number; stop: () => void }> {
  const p = spawn(
    'nsenter',
    ['--target', String(initHostPid), '--mount', '--pid', '--root', '--wd=/', '--', '/bin/busybox', 'unshare', '-U', '-m', '/bin/busybox', 'sleep', '100000'],
    { stdio: 'ignore' },
  );
  const selfUserns = readlinkSync('/proc/self/ns/user');
  const host = await waitFor('ring process', () => {
    const kid = children(p.pid!)[0];
    if (kid === undefined) return undefined;
    try {
      return readlinkSync(`/proc/${kid}/ns/user`) !== selfUserns ? kid : undefined;
    } catch {
      return undefined;
    }
  });
  for (const f of ['uid_map', 'gid_map']) writeFileSync(`/proc/${host}/${f}`, '0 0 1\n');
  return { host, pid: nspid(host).at(-1)!, stop: () => p.kill('SIGKILL') };
}

for (const strategy of STRATEGIES) {
  rootTest(`${strategy}: mount calls naming a process in the host's mount namespace are PERMISSION_DENIED and mount nothing on the host`, async (t) => {
    const fs = makeRootfs();
    t.teardown(fs.cleanup);
    const c = await TestContainer.startFor(t, { rootfs: fs.rootfs });
    const socket = await daemons.get(strategy)!.add(`am-${process.pid}-${++n}`, c.initHostPid);
    // The agent joined only the container's PID namespace (nsenter --pid), so
    // the process it starts lives in the host's mount namespace.
    const pid = await c.spawnUserns();
    const target = fs.outside;
    for (const rpc of ['MountProc', 'MountSysfs', 'UmountProc', 'UmountSysfs']) {
      const r = await c.call(socket, rpc, { target, pid });
      t.is(r.code, 'PERMISSION_DENIED', `${rpc}: ${JSON.stringify(r)}`);
      t.regex(r.details ?? '', /host's mount namespace/);
    }
    t.deepEqual(hostMountsUnder(fs.base), [], 'nothing was mounted on the host');
  });

  rootTest(`${strategy}: ring root cannot unmount a mask or make a read-only part writable`, async (t) => {
    const fs = makeRootfs();
    t.teardown(fs.cleanup);
    const c = await TestContainer.startFor(t, { rootfs: fs.rootfs });
    const socket = await daemons.get(strategy)!.add(`am-${process.pid}-${++n}`, c.initHostPid);
    const ring = await startRing(c.initHostPid);
    t.teardown(ring.stop);
    const proc = await c.call(socket, 'MountProc', { target: '/work/target', pid: ring.pid });
    t.true(proc.ok, JSON.stringify(proc));
    const sysfs = await c.call(socket, 'MountSysfs', { target: '/work/sub', pid: ring.pid });
    t.true(sysfs.ok, JSON.stringify(sysfs));
    const bb = '/bin/busybox';
    const sh = (script: string) => shAsUserns(ring.host, script);
    t.is(sh(`${bb} id -u`).stdout.trim(), '0', 'ring root');
    const present = (p: string) => sh(`test -e ${p}`).code === 0;
    // Every default mask and read-only part this kernel has (entries it
    // lacks are skipped by iwsd too).
    let tried = 0;
    for (const mask of [...DEFAULT_PROC_MASKS.masked, ...DEFAULT_PROC_MASKS.readOnly]) {
      if (!present(`/work/target/${mask}`)) continue;
      tried++;
      t.not(sh(`${bb} umount /work/target/${mask}`).code, 0, `umount ${mask}`);
      t.not(sh(`${bb} umount -l /work/target/${mask}`).code, 0, `umount -l ${mask}`);
      t.not(sh(`${bb} mount -o remount,bind,rw /work/target/${mask}`).code, 0, `remount rw ${mask}`);
    }
    t.true(tried >= 8, `only ${tried} masks present`);
    t.regex(sh('echo pwned > /work/target/sys/kernel/hostname').stderr, /Read-only/);
    t.is(sh(`${bb} cat /work/target/keys | ${bb} wc -c`).stdout.trim(), '0', 'keys still masked');
    t.not(sh(`${bb} mount -o remount,bind,rw /work/sub`).code, 0, 'sysfs stays read-only');
    for (const mask of DEFAULT_SYSFS_MASKS.masked) {
      if (present(`/work/sub/${mask}`)) t.not(sh(`${bb} umount -l /work/sub/${mask}`).code, 0, `umount sysfs ${mask}`);
    }
    // A bind without the masks (non-recursive) is refused too.
    t.not(sh(`${bb} mkdir -p /tmp/x && ${bb} mount --bind /work/target /tmp/x`).code, 0, 'bind proc without masks');
    // iwsd can still take its whole proc away.
    const um = await c.call(socket, 'UmountProc', { target: '/work/target', pid: ring.pid });
    t.true(um.ok, JSON.stringify(um));
    t.false(mountsOf(ring.host).some(([mp]) => mp.startsWith('/work/target')));
  });
}
