/**
 * Workspace-controlled bytes and the daemon's storage (issue 11, item 6,
 * FUSE part): a FUSE mark's copy-ups fill only that workspace's own bounded
 * store, and a full state store makes an RPC answer a clear error and undo
 * what it mounted. Stores are tmpfs in private mount namespaces (the FUSE
 * helper's, a test daemon's): nothing fills the real /tmp.
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, openSync, readFileSync, readlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';

import test, { type ExecutionContext } from 'ava';

import { TestContainer, children, hostMounts, makeRootfs, mountsAdded, mountsOf, nspid, waitFor } from './helpers/container.js';
import { GITPOD_SHIFT as SHIFT, TestDaemon } from './helpers/daemon.js';
import { isRoot, rootTest } from './helpers/root.js';

const MARK = '/.workspace/mark';
const UPPER_BYTES = 8 << 20;
let fuse: TestDaemon | undefined;
let n = 0;

test.before(async () => {
  if (!isRoot) return;
  fuse = await TestDaemon.start({ shift: { method: 'fuse' }, limits: { fuseUpperBytes: UPPER_BYTES } });
});

test.after.always(async () => {
  await fuse?.stop();
});

function sh(args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync('nsenter', args, { encoding: 'utf8' });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}


async function container(t: ExecutionContext, daemon: TestDaemon) {
  const fs = makeRootfs();
  t.teardown(fs.cleanup);
  // Only what iwsd could have added (other programs mount meanwhile on a busy node).
  const hostBefore = hostMounts([fs.base, daemon.base]);
  const c = await TestContainer.start({ rootfs: fs.rootfs });
  t.teardown(async () => {
    await c.stop();
    const after = hostMounts([fs.base, daemon.base]);
    if (after.join('\n') !== hostBefore.join('\n')) throw new Error(`the host's mount table changed: ${JSON.stringify({ before: hostBefore, after })}`);
  });
  const id = `st-${process.pid}-${++n}`;
  const socket = await daemon.add(id, c.initHostPid);
  return { c, id, socket, ...fs };
}

/** A ring as workspacekit makes it (container root: unshare -U -m), mapped through WriteIDMapping. */
async function ring(t: ExecutionContext, c: TestContainer, socket: string): Promise<number> {
  const p = spawn('nsenter', ['--target', String(c.initHostPid), '--mount', '--pid', '--root', '--wd=/', '--', '/bin/busybox', 'unshare', '-U', '-m', '/bin/busybox', 'sleep', '100000'], {
    stdio: 'ignore',
  });
  t.teardown(() => {
    p.kill('SIGKILL');
  });
  const self = readlinkSync('/proc/self/ns/user');
  const host = await waitFor('ring', () => {
    const kid = children(p.pid!)[0];
    try {
      return kid !== undefined && readlinkSync(`/proc/${kid}/ns/user`) !== self && readFileSync(`/proc/${kid}/cmdline`, 'utf8').startsWith('/bin/busybox\x00sleep') ? kid : undefined;
    } catch {
      return undefined;
    }
  });
  for (const gid of [false, true]) {
    const r = await c.call(socket, 'WriteIDMapping', { pid: nspid(host).at(-1), gid, mapping: SHIFT });
    if (!r.ok) throw new Error(`WriteIDMapping: ${JSON.stringify(r)}`);
  }
  return host;
}

const internal = (d: TestDaemon) => d.logs.filter((l) => l.result === 'INTERNAL');

rootTest("fuse: filling a mark's copy-up store is ENOSPC for the writer; another workspace is unaffected", async (t) => {
  const d = fuse!;
  const a = await container(t, d);
  t.true((await a.c.call(a.socket, 'PrepareForUserNS', {})).ok);
  const r = await ring(t, a.c, a.socket);
  // Ring root writes through the mark: ~4x the store (bounded, so a daemon
  // without a bound fills nothing real either).
  const loops = Math.ceil((4 * UPPER_BYTES) / readFileSync('/bin/busybox').length);
  const fill = sh([
    '--target', String(r), '--user', '--mount', '--root', '--wd=/', '--',
    '/bin/busybox', 'sh', '-c', `i=0; while [ $i -lt ${loops} ]; do cat /bin/busybox >> ${MARK}/tmp/fill || exit 7; i=$((i+1)); done`,
  ]);
  t.is(fill.code, 7, `the writer was not stopped (${fill.code}): ${fill.stderr}`);
  t.regex(fill.stderr, /No space left on device/);
  // Another workspace: PrepareForUserNS and MountProc work as ever.
  const b = await container(t, d);
  // (MountProc first: after PrepareForUserNS the container root is shared and a MountProc onto it refused.)
  const mp = await b.c.call(b.socket, 'MountProc', { target: '/proc', pid: 1 });
  t.true(mp.ok, JSON.stringify(mp));
  const prep = await b.c.call(b.socket, 'PrepareForUserNS', {});
  t.true(prep.ok, JSON.stringify(prep));
  // And the full workspace itself still gets answers, none INTERNAL.
  const td = await a.c.call(a.socket, 'Teardown', {});
  t.true(td.ok && td.response?.success === true, JSON.stringify(td));
  t.true((await b.c.call(b.socket, 'Teardown', {})).ok);
  t.deepEqual(internal(d), []);
});

rootTest('a full state store: MountProc and PrepareForUserNS answer UNAVAILABLE and leave no mount behind', async (t) => {
  const d = await TestDaemon.startFor(t, { shift: { method: 'idmapped' } }, [], { stateStoreTmpfs: 'size=64k' });
  const w = await container(t, d);
  const before = mountsOf(w.c.initHostPid);
  // Fill the daemon's (private, 64 KiB) state store from the host.
  const filler = openSync(join(`/proc/${d.proc.pid}/root`, d.stateDir, 'state', 'filler'), 'w');
  try {
    const chunk = Buffer.alloc(4096, 1);
    for (let i = 0; i < 64; i++) writeSync(filler, chunk);
    t.fail('the state store did not fill');
  } catch (err) {
    t.is((err as NodeJS.ErrnoException).code, 'ENOSPC');
  } finally {
    closeSync(filler);
  }
  for (const [rpc, req] of [
    ['MountProc', { target: '/proc', pid: 1 }],
    ['MountSysfs', { target: '/sys', pid: 1 }],
    ['PrepareForUserNS', {}],
  ] as const) {
    const r = await w.c.call(w.socket, rpc, req);
    t.is(r.code, 'UNAVAILABLE', `${rpc}: ${JSON.stringify(r)}`);
    t.regex(r.details ?? '', /state store is full/, rpc);
  }
  t.deepEqual(mountsAdded(w.c.initHostPid, before), [], 'nothing left mounted in the container');
  t.deepEqual(internal(d), []);
});
