/**
 * The mount-table checks of the suite compare only what iwsd could have added
 * (hostMounts): they must hold while another program mounts and unmounts on
 * the host meanwhile, as any node running a container runtime does, and still
 * see a mount that lands where iwsd works.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

import { TestContainer, hostMountinfo, hostMounts, makeRootfs, startHostMounter } from './helpers/container.js';
import { TestDaemon } from './helpers/daemon.js';
import { rootTest } from './helpers/root.js';

rootTest('hostMounts ignores another program mounting on the host and sees a mount under the test paths', async (t) => {
  const fs = makeRootfs();
  t.teardown(fs.cleanup);
  const own = [fs.base];
  const before = hostMounts(own);
  const mounter = startHostMounter();
  let stopped = false;
  t.teardown(async () => {
    if (!stopped) await mounter.stop();
  });
  const raw = new Set<string>();
  for (let i = 0; i < 50; i++) {
    raw.add(hostMountinfo());
    t.deepEqual(hostMounts(own), before);
    await new Promise((r) => setTimeout(r, 5));
  }
  t.true(raw.size > 1, 'the whole host table did change meanwhile');

  // A mount of any type under the test's paths, and a proc where an escaped
  // mount would land, are seen.
  const target = join(fs.rootfs, 'work/target');
  t.is(spawnSync('mount', ['-t', 'tmpfs', 'leak', target]).status, 0);
  try {
    t.notDeepEqual(hostMounts(own), before);
  } finally {
    spawnSync('umount', [target]);
  }
  t.deepEqual(hostMounts(own), before);
  mkdirSync('/run/iwsd-test-escape', { recursive: true });
  t.is(spawnSync('mount', ['-t', 'proc', 'proc', '/run/iwsd-test-escape']).status, 0);
  try {
    t.true(hostMounts(own).includes('/run/iwsd-test-escape proc proc'));
  } finally {
    spawnSync('umount', ['/run/iwsd-test-escape']);
    spawnSync('rmdir', ['/run/iwsd-test-escape']);
  }
  stopped = true;
  const cycles = await mounter.stop();
  t.log(`the other program mounted and unmounted ${cycles} times`);
  t.true(cycles > 0);
});

rootTest('a workspace mounts, prepares and tears down while another program mounts on the host: nothing of ours is left', async (t) => {
  const daemon = await TestDaemon.startFor(t);
  const fs = makeRootfs();
  t.teardown(fs.cleanup);
  const own = [fs.base, daemon.base];
  const before = hostMounts(own);
  const mounter = startHostMounter();
  let stopped = false;
  t.teardown(async () => {
    if (!stopped) await mounter.stop();
  });

  const c = await TestContainer.startFor(t, { rootfs: fs.rootfs });
  const socket = await daemon.add('busy-host', c.initHostPid);
  const targets = Array.from({ length: 20 }, (_, i) => `/work/t${i}`);
  for (const d of targets) mkdirSync(join(fs.rootfs, d), { recursive: true });
  // Before PrepareForUserNS: after it the container root is shared, and a
  // MountProc onto it is refused (PropagatesToPeers).
  for (const target of targets) t.true((await c.call(socket, 'MountProc', { target, pid: 1 })).ok);
  for (const target of targets) t.true((await c.call(socket, 'UmountProc', { target, pid: 1 })).ok);
  t.true((await c.call(socket, 'PrepareForUserNS', {})).ok);
  t.true((await c.call(socket, 'Teardown', {})).response?.success === true);
  await c.stop();
  await daemon.waitForLog((l) => l.workspace === 'busy-host' && l.reason === 'container exited');

  stopped = true;
  const cycles = await mounter.stop();
  t.log(`the other program mounted and unmounted ${cycles} times meanwhile`);
  t.true(cycles > 0);
  t.deepEqual(hostMounts(own), before, "nothing of ours leaked into the host's mount table");
});
