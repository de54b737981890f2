/**
 * A FUSE mark whose helper is stopped or killed mid-use, and teardown while
 * calls are in flight (issue 13): Teardown answers, no native borrow error,
 * and nothing of the workspace is left (state file, fuse/<id>,
 * workspaces/<id>, mounts, the helper). Root only, real containers.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import test, { type ExecutionContext } from 'ava';

import { TestContainer, hostMounts, makeRootfs, mountsOf, waitFor, fusePids } from './helpers/container.js';
import * as native from '../src/native.js';
import { GITPOD_SHIFT as SHIFT, TestDaemon } from './helpers/daemon.js';
import { isRoot, rootTest } from './helpers/root.js';

let daemon: TestDaemon;
let n = 0;
const MARK = '/.workspace/mark';

test.before(async () => {
  if (!isRoot) return;
  daemon = await TestDaemon.start({ shift: { method: 'fuse' } });
});

test.after.always(async () => {
  await daemon?.stop();
});

async function setup(t: ExecutionContext) {
  const fs = makeRootfs();
  t.teardown(fs.cleanup);
  const id = `ft-${process.pid}-${++n}`;
  const own = [fs.base, join(daemon.stateDir, 'workspaces', id), join(daemon.stateDir, 'fuse', id)];
  const hostBefore = hostMounts(own);
  const c = await TestContainer.start({ rootfs: fs.rootfs });
  t.teardown(async () => {
    for (const pid of fusePids(id)) process.kill(pid, 'SIGKILL');
    await c.stop();
    const after = hostMounts(own);
    if (JSON.stringify(after) !== JSON.stringify(hostBefore)) throw new Error(`the host's mount table changed: ${JSON.stringify({ before: hostBefore, after })}`);
  });
  const socket = await daemon.add(id, c.initHostPid);
  const p = await c.call(socket, 'PrepareForUserNS', {});
  if (!p.ok) throw new Error(`PrepareForUserNS: ${JSON.stringify(p)}`);
  return { c, socket, id };
}

/** What the workspace may leave behind; every entry must be false/empty. */
function leftovers(id: string, initHostPid: number | undefined) {
  return {
    state: existsSync(join(daemon.stateDir, 'state', `${id}.json`)),
    fuseDir: existsSync(join(daemon.stateDir, 'fuse', id)),
    workspaceDir: existsSync(join(daemon.stateDir, 'workspaces', id)),
    helpers: fusePids(id),
    mark: initHostPid !== undefined && existsSync(`/proc/${initHostPid}`) ? mountsOf(initHostPid).some(([mp]) => mp === MARK) : false,
  };
}
const NOTHING = { state: false, fuseDir: false, workspaceDir: false, helpers: [], mark: false };

for (const signal of ['SIGSTOP', 'SIGKILL'] as const) {
  rootTest(`Teardown of a FUSE mark whose fuse-overlayfs got ${signal} mid-use answers, and nothing is left`, async (t) => {
    const { c, socket, id } = await setup(t);
    const [helper] = fusePids(id);
    t.truthy(helper, 'a helper serves the mark');
    process.kill(helper!, signal);
    // Mid-use: a read through the mark (from the host) that the stopped
    // server never answers, or that fails on the dead one.
    const reader = new Promise<void>((resolve) => {
      readFile(`/proc/${c.initHostPid}/root${MARK}/file`).then(() => resolve(), () => resolve());
    });
    const td = await c.call(socket, 'Teardown', {});
    // Everything can still be cleaned: the mark's FUSE connection is aborted
    // (SIGSTOP) or was by the kernel (SIGKILL), so the unmount cannot block.
    t.true(td.ok && td.response?.success === true, JSON.stringify(td));
    await reader; // released by the abort
    t.false(mountsOf(c.initHostPid).some(([mp]) => mp === MARK), 'mark gone');
    t.deepEqual(fusePids(id), [], 'helper gone');
    t.is((await daemon.cli(['workspace', 'rm', '--id', id])).code, 0);
    t.deepEqual(leftovers(id, c.initHostPid), NOTHING);
  });
}

for (const how of ['workspace rm', 'container exit'] as const) {
  rootTest(`${how} while MountProc/WriteIDMapping/Teardown run in a loop and a Teardown is in flight: no borrow errors, nothing left`, async (t) => {
    const { c, socket, id } = await setup(t);
    const seen = daemon.logs.length;
    // The helper is stopped first, so the loop's first Teardown is in flight
    // for seconds (SIGTERM goes unanswered for the 2 s grace) when the
    // workspace goes; another Teardown waits behind it.
    const [helper] = fusePids(id);
    t.truthy(helper, 'a helper serves the mark');
    process.kill(helper!, 'SIGSTOP');
    await c.flood(
      socket,
      [
        { rpc: 'MountProc', request: { target: '/tmp/p', pid: 1 } },
        { rpc: 'WriteIDMapping', request: { pid: 1, gid: false, mapping: SHIFT } },
        { rpc: 'Teardown', request: {} },
      ],
      6,
      2,
    );
    const teardown = c.call(socket, 'Teardown', {}).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 400));
    const init = c.initHostPid;
    if (how === 'workspace rm') {
      const r = await daemon.cli(['workspace', 'rm', '--id', id]);
      t.is(r.code, 0, r.stderr);
      const f = await c.unflood();
      t.true(f.calls > 0, JSON.stringify(f));
    } else {
      await c.stop();
    }
    await daemon.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith(`workspace ${id} torn down`), 30_000);
    // (After a container exit its caller is gone with it: nothing answers.)
    if (how === 'workspace rm') await teardown;
    await waitFor('the helper to be gone', () => (fusePids(id).length === 0 ? true : undefined), 20_000).catch(() => undefined);
    const logs = daemon.logs.slice(seen);
    const borrow = logs.filter((l) => JSON.stringify(l).includes('borrow'));
    t.deepEqual(borrow, [], 'no native borrow errors');
    const failed = logs.filter((l) => JSON.stringify(l).includes('automatic teardown failed'));
    t.deepEqual(failed, []);
    t.deepEqual(leftovers(id, how === 'workspace rm' ? init : undefined), NOTHING);
  });
}

rootTest('WipingTeardown with doWipe removes a FUSE mark and its helper; the workspace then leaves nothing', async (t) => {
  const { c, socket, id } = await setup(t);
  t.is(fusePids(id).length, 1);
  const w = await c.call(socket, 'WipingTeardown', { doWipe: true });
  t.deepEqual(w.response, { success: true }, JSON.stringify(w));
  t.false(mountsOf(c.initHostPid).some(([mp]) => mp === MARK), 'mark gone');
  t.deepEqual(fusePids(id), [], 'helper gone');
  t.true((await c.call(socket, 'Teardown', {})).response?.success === true, 'Teardown finds nothing left to do');
  t.is((await daemon.cli(['workspace', 'rm', '--id', id])).code, 0);
  t.deepEqual(leftovers(id, c.initHostPid), NOTHING);
});

rootTest('a MountProc through a FUSE mark whose helper is stopped fails past its deadline (connection aborted) instead of hanging', async (t) => {
  const { c, socket, id } = await setup(t);
  // The target is under the mark, in the container's mount namespace.
  const [helper] = fusePids(id);
  process.kill(helper!, 'SIGSTOP');
  const started = Date.now();
  const r = await c.call(socket, 'MountProc', { pid: 1, target: `${MARK}/proc` });
  const took = Date.now() - started;
  t.log(`MountProc through the stopped mark answered after ${took} ms: ${JSON.stringify(r)}`);
  t.is(r.code, 'UNAVAILABLE', JSON.stringify(r));
  t.regex(r.details ?? '', /FUSE mark .* did not answer within 10 s; its FUSE connection \d+ was aborted/);
  const td = await c.call(socket, 'Teardown', {});
  t.true(td.ok && td.response?.success === true, JSON.stringify(td));
  t.is((await daemon.cli(['workspace', 'rm', '--id', id])).code, 0);
  t.deepEqual(leftovers(id, c.initHostPid), NOTHING);
});

rootTest('Container.close() while native calls on it are pending: no borrow error, the calls settle, later ones are refused', async (t) => {
  const c = await TestContainer.startFor(t);
  const handle = await native.openContainer(c.initHostPid);
  // Each pending task holds the handle (napi keeps the object borrowed until it settles).
  const pending = Array.from({ length: 8 }, () =>
    native.umount(handle, 'embedder', { pid: 1, target: '/nonexistent-iwsd-test', owned: [], pidStrategy: 'auto' }).then(
      () => 'ok',
      (e: unknown) => `${(e as Error).message} (${(e as { detail?: string }).detail ?? ''})`,
    ),
  );
  t.notThrows(() => handle.close(), 'close() while tasks hold the handle');
  const settled = await Promise.all(pending);
  t.false(settled.some((m) => m.includes('borrow')), JSON.stringify(settled));
  const after = await native.umount(handle, 'embedder', { pid: 1, target: '/x', owned: [], pidStrategy: 'auto' }).catch((e: unknown) => e as { detail?: string });
  t.regex(String((after as { detail?: string }).detail), /container handle is closed/);
});
