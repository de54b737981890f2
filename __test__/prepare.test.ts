/**
 * PrepareForUserNS and Teardown end to end, as root, with both shift methods
 * (idmapped and fuse): a container with its own root (bind + pivot_root, as
 * OCI runtimes do), mount, PID and network namespaces; the gRPC client runs
 * in its PID namespace.
 */
import { readdirSync, readFileSync, statSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';

import type { ExecutionContext } from 'ava';

import { TestContainer, hostMounts, makeRootfs, mountsAdded, mountsOf, shAsUserns, spawnUsernsInside, fusePids } from './helpers/container.js';
import { GITPOD_SHIFT as SHIFT, TestDaemon } from './helpers/daemon.js';
import { daemonPerVariant } from './helpers/variants.js';
import { rootTest } from './helpers/root.js';
import { StateStore } from '../src/state.js';

const METHODS = ['idmapped', 'fuse'] as const;
type Method = (typeof METHODS)[number];
const daemons = daemonPerVariant(METHODS, (method) => ({ shift: { method } }));
let n = 0;

const MARK = '/.workspace/mark';

async function setup(
  t: ExecutionContext,
  method: Method,
  prepareRootfs?: (rootfs: string, outside: string) => void,
  daemon: TestDaemon = daemons.get(method)!,
) {
  const fs = makeRootfs();
  t.teardown(fs.cleanup);
  const id = `p-${process.pid}-${++n}`;
  // What iwsd could have added to the host's mount table (see hostMounts).
  const own = [fs.base, join(daemon.stateDir, 'workspaces', id), join(daemon.stateDir, 'fuse', id)];
  const hostBefore = hostMounts(own);
  prepareRootfs?.(fs.rootfs, fs.outside);
  const c = await TestContainer.start({ rootfs: fs.rootfs });
  t.teardown(async () => {
    await c.stop();
    const after = hostMounts(own);
    if (JSON.stringify(after) !== JSON.stringify(hostBefore)) throw new Error(`the host's mount table changed: ${JSON.stringify({ before: hostBefore, after })}`);
  });
  const socket = await daemon.add(id, c.initHostPid);
  return { c, socket, id, daemon, ...fs };
}

function daemonFds(d: TestDaemon): number {
  return readdirSync(`/proc/${d.proc.pid}/fd`).length;
}

for (const method of METHODS) {
  rootTest(`${method}: PrepareForUserNS mounts a shifted mark; a user namespace with the shift mapping sees root`, async (t) => {
    const { c, socket, id, daemon, rootfs } = await setup(t, method);
    const r = await c.call(socket, 'PrepareForUserNS', {});
    t.true(r.ok, JSON.stringify(r));
    // A client without iwsd-fs-shift-accept (as Gitpod's) is told FUSE for both: bind the mark
    // (workspacekit.test.ts has the rest of that); the mark is the configured one.
    t.deepEqual(r.response, { fsShift: 'FUSE', fullWorkspaceBackup: false, persistentVolumeClaim: false });
    t.is((await new StateStore(daemon.stateDir).load(id))?.mark?.method, method);

    // The container's root is shared now, inside its own namespace only.
    const info = readFileSync(`/proc/${c.initHostPid}/mountinfo`, 'utf8').split('\n');
    t.true(info.some((l) => l.split(' ')[4] === '/' && / shared:\d+/.test(l)), info.join('\n'));
    t.true(mountsOf(c.initHostPid).some(([mp]) => mp === MARK));

    // From the host, through the mark: on-disk uid 0 shows as 33333.
    t.is(statSync(join(rootfs, 'bin/busybox')).uid, 0);
    t.is(statSync(`/proc/${c.initHostPid}/root${MARK}/bin/busybox`).uid, 33333);

    // In a user namespace whose map equals the shift mapping (written through
    // WriteIDMapping, from inside the container): uid 0, and files it
    // creates through the mark are owned by uid 0 on disk.
    const u = await spawnUsernsInside(c.initHostPid);
    t.teardown(u.stop);
    const inside = Number(readFileSync(`/proc/${u.host}/status`, 'utf8').match(/^NSpid:.*\s(\d+)$/m)![1]);
    for (const gid of [false, true]) {
      const w = await c.call(socket, 'WriteIDMapping', { pid: inside, gid, mapping: SHIFT });
      t.true(w.ok, JSON.stringify(w));
    }
    t.is(shAsUserns(u.host, `stat -c %u ${MARK}/bin/busybox`).stdout.trim(), '0');
    const made = shAsUserns(u.host, `echo hi > ${MARK}/created`);
    t.is(made.code, 0, made.stderr);
    // FUSE copy-ups land on the helper's private tmpfs: seen through its root.
    const onDisk = method === 'fuse' ? join(`/proc/${fusePids(id)[0]}/root`, daemon.stateDir, 'fuse', id, 'upper', 'created') : join(rootfs, 'created');
    t.is(statSync(onDisk).uid, 0, onDisk);
    if (method === 'fuse') t.throws(() => statSync(join(rootfs, 'created')), undefined, 'fuse writes land in the upper dir');

    t.true((await c.call(socket, 'Teardown', {})).response?.success === true);
  });

  rootTest(`${method}: Teardown removes the mark and its helper, and both calls are one-shot`, async (t) => {
    const { c, socket, daemon, id } = await setup(t, method);
    // Warm up connections, then measure.
    await c.call(socket, 'Teardown', { }).then(() => undefined, () => undefined);
    t.is((await c.call(socket, 'Teardown', {})).code, 'RESOURCE_EXHAUSTED', 'the warm-up already used Teardown');
    // One registration per container: a fresh one under a new id, once the
    // first is removed.
    t.is((await daemon.cli(['workspace', 'rm', '--id', id])).code, 0);
    const id2 = `p-${process.pid}-${++n}`;
    const c2 = { socket: await daemon.add(id2, c.initHostPid) };
    await new Promise((r) => setTimeout(r, 300));
    const fdsBefore = daemonFds(daemon);
    t.true((await c.call(c2.socket, 'PrepareForUserNS', {})).ok);
    t.is((await c.call(c2.socket, 'PrepareForUserNS', {})).code, 'RESOURCE_EXHAUSTED');
    t.is(fusePids(id2).length, method === 'fuse' ? 1 : 0);
    const td = await c.call(c2.socket, 'Teardown', {});
    t.true(td.ok && td.response?.success === true, JSON.stringify(td));
    t.is((await c.call(c2.socket, 'Teardown', {})).code, 'RESOURCE_EXHAUSTED');
    t.false(mountsOf(c.initHostPid).some(([mp]) => mp === MARK), 'mark gone');
    t.deepEqual(fusePids(id2), [], 'no fuse-overlayfs left');
    await new Promise((r) => setTimeout(r, 300));
    t.true(daemonFds(daemon) <= fdsBefore, `daemon fds ${fdsBefore} -> ${daemonFds(daemon)}`);
  });

  rootTest(`${method}: a mark path through a symlink to a host directory is refused`, async (t) => {
    const { c, socket, outside } = await setup(t, method, (rootfs, out) => symlinkSync(out, join(rootfs, '.workspace')));
    const before = mountsOf(c.initHostPid);
    const r = await c.call(socket, 'PrepareForUserNS', {});
    t.is(r.code, 'INVALID_ARGUMENT', JSON.stringify(r));
    t.regex(r.details ?? '', /symlink/);
    t.deepEqual(mountsAdded(c.initHostPid, before), []);
    t.deepEqual(readdirSync(outside), []);
    t.is((await c.call(socket, 'PrepareForUserNS', {})).code, 'RESOURCE_EXHAUSTED', 'a failed call used the shot');
  });

  rootTest(`${method}: one-shot state survives daemon restarts`, async (t) => {
    // A daemon of its own: it restarts under this test.
    const own = await TestDaemon.startFor(t, { shift: { method } });
    const { c, id, daemon } = await setup(t, method, undefined, own);
    const socket = join(daemon.stateDir, 'workspaces', id, 'daemon.sock');
    t.true((await c.call(socket, 'PrepareForUserNS', {})).ok);
    // The restarted daemon serves the workspace again by itself, on the same
    // socket path.
    await daemon.restart();
    t.is((await c.call(socket, 'PrepareForUserNS', {})).code, 'RESOURCE_EXHAUSTED');
    // Teardown after a restart still finds and removes the mark (and, for
    // fuse, the helper the previous daemon process started).
    const td = await c.call(socket, 'Teardown', {});
    t.true(td.ok && td.response?.success === true, JSON.stringify(td));
    t.false(mountsOf(c.initHostPid).some(([mp]) => mp === MARK));
    t.deepEqual(fusePids(id), [], 'helper stopped');
    await daemon.restart();
    t.is((await c.call(socket, 'Teardown', {})).code, 'RESOURCE_EXHAUSTED');
  });
}
