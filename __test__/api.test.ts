/**
 * The public API (iwsd, iwsd/native, iwsd/client) from source: every error
 * code in the documented set is produced here, and the examples run.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import test from 'ava';

import { removeStateDir } from './helpers/daemon.js';
import { startDaemon } from '../src/index.js';
import { createClient } from '../src/api/client.js';
import { Container, DEFAULT_PROC_MASKS, DEFAULT_SYSFS_MASKS, ERROR_CODES, IwsError, mountProc, mountSysfs, prepareShiftMark, umountProc, writeIdMapping } from '../src/api/native.js';
import * as native from '../src/native.js';
import { TestContainer, makeRootfs, readMap } from './helpers/container.js';
import { rootTest } from './helpers/root.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'OK';
  } catch (err) {
    if (!(err instanceof IwsError)) throw err;
    return err.code;
  }
}

rootTest('every documented error code is produced through the public API', async (t) => {
  const seen = new Set<string>();
  const expect = async (code: string, p: Promise<unknown>) => {
    t.is(await codeOf(p), code);
    seen.add(code);
  };
  const fs = makeRootfs();
  t.teardown(fs.cleanup);
  const c = await TestContainer.startFor(t, { rootfs: fs.rootfs });
  const container = await Container.open(c.initHostPid);
  t.teardown(() => container.close());
  const ring = [{ containerId: 0, hostId: 33333, size: 1 }];

  // iwsd/native
  await expect('INVALID_ARGUMENT', writeIdMapping(container, { pid: 1, mappings: [{ containerId: 0, hostId: 0, size: 1 }] }));
  // The container's root mount was not made by iwsd: not ours to unmount.
  await expect('PERMISSION_DENIED', umountProc(container, { pid: 1, target: '/', owned: [] }));
  // A host PID and a PID that exists nowhere get the same answer.
  await expect('NOT_FOUND', writeIdMapping(container, { pid: process.pid, mappings: ring }));
  await expect('NOT_FOUND', writeIdMapping(container, { pid: 2147483000, mappings: ring }));
  await expect('FAILED_PRECONDITION', Container.open(process.pid));
  const dir = mkdtempSync(join(tmpdir(), 'iwsd-api-'));
  t.teardown(() => removeStateDir(dir));
  // A fuse "binary" that cannot be executed: an unexpected failure, INTERNAL.
  const notExecutable = join(dir, 'not-executable');
  writeFileSync(notExecutable, 'x', { mode: 0o644 });
  await expect(
    'INTERNAL',
    prepareShiftMark(container, { method: 'fuse', fuse: { binary: notExecutable, upper: join(dir, 'fuse', 'u'), work: join(dir, 'fuse', 'w'), staging: join(dir, 'fuse', 'm'), upperBytes: 1 << 20 } }),
  );

  // iwsd (embedded daemon) + iwsd/client
  const daemon = await startDaemon({ stateDir: join(dir, 'state'), logLevel: 'silent' });
  t.teardown(() => daemon.close());
  const ws = await daemon.addWorkspace({ id: 'api', hostPid: c.initHostPid });
  // RESOURCE_EXHAUSTED from the daemon's rate limit, seen by a client inside.
  const child = await c.spawnUserns();
  for (let i = 0; i < 4; i++) await c.call(ws.socketPath, 'WriteIDMapping', { pid: child, gid: i % 2 === 1, mapping: ring });
  const limited = await c.call(ws.socketPath, 'WriteIDMapping', { pid: child, gid: false, mapping: ring });
  t.is(limited.code, 'RESOURCE_EXHAUSTED');
  seen.add('RESOURCE_EXHAUSTED');
  const nowhere = createClient(join(dir, 'no-such.sock'), { timeoutMs: 1000 });
  await expect('UNAVAILABLE', nowhere.teardown());
  nowhere.close();
  // The admin socket does not serve InWorkspaceService.
  const wrong = createClient(daemon.adminSocket);
  await expect('UNIMPLEMENTED', wrong.teardown());
  // An aborted call rejects too.
  const ac = new AbortController();
  ac.abort();
  await expect('UNAVAILABLE', wrong.teardown({ signal: ac.signal }));
  wrong.close();

  t.deepEqual([...seen].sort(), [...ERROR_CODES].sort(), 'every code in ERROR_CODES was produced');
});

rootTest('the examples run', async (t) => {
  const fs = makeRootfs();
  t.teardown(fs.cleanup);
  const c = await TestContainer.startFor(t, { rootfs: fs.rootfs });

  const native = spawnSync(process.execPath, [join(ROOT, 'examples/native-mount-proc.mjs'), String(c.initHostPid)], { encoding: 'utf8' });
  t.is(native.status, 0, native.stderr);
  const [mounted, unmounted] = native.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  t.is(mounted!.mounted, '/proc');
  t.true((mounted!.entries as number) > 5);
  t.is(unmounted!.unmounted, '/proc');

  const dir = mkdtempSync(join(tmpdir(), 'iwsd-ex-'));
  t.teardown(() => removeStateDir(dir));
  const daemon = spawn(process.execPath, [join(ROOT, 'examples/embed-daemon.mjs'), String(c.initHostPid), join(dir, 'state')], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const exited = new Promise<number | null>((r) => daemon.once('exit', r));
  t.teardown(() => {
    daemon.kill('SIGKILL');
  });
  const first = await new Promise<string>((resolve) => createInterface({ input: daemon.stdout }).once('line', resolve));
  const { socket } = JSON.parse(first) as { socket: string };

  const pid = await c.spawnUserns();
  const client = spawnSync(
    'nsenter',
    ['--target', String(c.initHostPid), '--pid', '--', process.execPath, join(ROOT, 'examples/client-write-id-mapping.mjs'), socket, String(pid)],
    { encoding: 'utf8' },
  );
  t.is(client.status, 0, client.stderr);
  t.is(JSON.parse(client.stdout).errorCode, 0);
  t.deepEqual(readMap(c.hostPidOf(pid), 'uid_map'), [[0, 33333, 1]]);

  daemon.stdin.end();
  t.is(await exited, 0, 'the embedded daemon closes cleanly');
});

test('Container is disposable and mountProc/umountProc are exported', (t) => {
  t.is(typeof Container.prototype[Symbol.dispose], 'function');
  t.is(typeof mountProc, 'function');
  t.is(typeof umountProc, 'function');
});

test('a mask set is made only of entries that pass the core rule, and keeps them', (t) => {
  for (const bad of ['../x', '/abs', '', 'a/../b', 'a//b', 'x'.repeat(257)]) {
    for (const m of [{ masked: [bad], readOnly: [] }, { masked: ['kcore'], readOnly: [bad] }]) {
      const e = t.throws(() => native.maskSet(m), { instanceOf: IwsError }, JSON.stringify(bad));
      t.is(e?.code, 'INVALID_ARGUMENT');
      t.regex(e?.message ?? '', /mask entry/);
    }
  }
  const m = { masked: ['kcore', 'devices/virtual/powercap'], readOnly: ['sys'] };
  t.deepEqual(native.maskSet(m).masks, m);
});

test("mountProc/mountSysfs take the caller's masks as they are at each call: an invalid entry rejects (INVALID_ARGUMENT), never throws", async (t) => {
  const none = {} as Container;
  for (const call of [() => mountProc(none, { pid: 1, target: '/x', masks: { masked: ['../etc'], readOnly: [] } }), () => mountSysfs(none, { pid: 1, target: '/x', masks: { masked: [], readOnly: ['/abs'] } })]) {
    let p: Promise<unknown> | undefined;
    t.notThrows(() => {
      p = call();
    });
    const e = await t.throwsAsync(p!, { instanceOf: IwsError });
    t.is(e?.code, 'INVALID_ARGUMENT');
  }
});

test('the default masks the API mounts with cannot be changed by an embedder (their mask sets are made once from them)', (t) => {
  for (const m of [DEFAULT_PROC_MASKS, DEFAULT_SYSFS_MASKS]) {
    t.true(Object.isFrozen(m) && Object.isFrozen(m.masked) && Object.isFrozen(m.readOnly));
    t.throws(() => m.masked.push('x'));
  }
  t.true(DEFAULT_PROC_MASKS.masked.includes('kcore'));
});
