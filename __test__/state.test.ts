/**
 * The state store: snapshot plus mount journal. Pure file logic, no root.
 */
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';

import { parseConfig } from '../src/config.js';
import { createLogger } from '../src/log.js';
import { RpcGuard } from '../src/rpcGuard.js';
import { WorkspaceService, type NativeOps } from '../src/service.js';
import { StateStore, type StateEvent, type WorkspaceState } from '../src/state.js';
import type { Workspace } from '../src/workspace.js';
import { freshState, serviceDeps } from './helpers/service.js';

function fresh(t: { teardown(fn: () => void): void }): { store: StateStore; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'iwsd-state-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return { store: new StateStore(dir), dir };
}

function state(id: string, mounts: WorkspaceState['mounts'] = []): WorkspaceState {
  return {
    version: 1,
    id,
    container: { hostPid: 10, startTime: 20 },
    registration: { rootRange: { start: 100000, size: 65536 }, userRanges: [], shift: [], markPath: '/.workspace/mark', fullWorkspaceBackup: false },
    mounts,
    prepared: false,
    tornDown: false,
    mark: null,
  };
}

const m = (mountId: string) => ({ mountId, kind: 'proc' as const, target: `/t/${mountId}`, pid: 1 });

test('mount changes are appended to a journal and folded in on load', async (t) => {
  const { store, dir } = fresh(t);
  store.save(state('w'));
  store.record(state('w', [m('1')]), { add: m('1') });
  store.record(state('w', [m('1'), m('2')]), { add: m('2') });
  store.record(state('w', [m('2')]), { del: '1' });
  // The snapshot was not rewritten: one append per change.
  t.deepEqual(JSON.parse(readFileSync(join(dir, 'state', 'w.json'), 'utf8')).mounts, []);
  t.is(readFileSync(join(dir, 'state', 'w.mounts.jsonl'), 'utf8').trim().split('\n').length, 3);
  t.deepEqual((await store.load('w'))?.mounts, [m('2')]);
  t.deepEqual(await store.ids(), ['w']);
});

test('a snapshot empties the journal; replaying a journal over a newer snapshot changes nothing', async (t) => {
  const { store, dir } = fresh(t);
  store.save(state('w'));
  store.record(state('w', [m('1')]), { add: m('1') });
  store.save({ ...state('w', [m('1')]), prepared: true });
  t.false(existsSync(join(dir, 'state', 'w.mounts.jsonl')));
  // A crash between snapshot and journal removal leaves both.
  appendFileSync(join(dir, 'state', 'w.mounts.jsonl'), `${JSON.stringify({ add: m('1') })}\n`);
  const s = await new StateStore(dir).load('w');
  t.deepEqual(s?.mounts, [m('1')]);
  t.true(s?.prepared);
});

test('a torn last journal line (crash mid-append) is ignored; a bad line before it is an error', async (t) => {
  const { store, dir } = fresh(t);
  store.save(state('w'));
  store.record(state('w', [m('1')]), { add: m('1') });
  appendFileSync(join(dir, 'state', 'w.mounts.jsonl'), '{"add":{"mountId":"2","ki');
  t.deepEqual((await new StateStore(dir).load('w'))?.mounts, [m('1')]);
  appendFileSync(join(dir, 'state', 'w.mounts.jsonl'), '\n{"del":"1"}\n');
  const err = await t.throwsAsync(new StateStore(dir).load('w'));
  t.regex(err?.message ?? '', /w\.mounts\.jsonl line 2 is invalid/);
});

test('a full journal turns into a snapshot', async (t) => {
  const { store, dir } = fresh(t);
  store.save(state('w'));
  const mounts: WorkspaceState['mounts'] = [];
  for (let i = 0; i < 600; i++) {
    mounts.push(m(String(i)));
    store.record(state('w', [...mounts]), { add: m(String(i)) });
  }
  const lines = readFileSync(join(dir, 'state', 'w.mounts.jsonl'), 'utf8').trim().split('\n').length;
  t.true(lines < 600, `journal has ${lines} lines`);
  t.true(JSON.parse(readFileSync(join(dir, 'state', 'w.json'), 'utf8')).mounts.length > 0, 'snapshot carries the mounts');
  t.is((await new StateStore(dir).load('w'))?.mounts.length, 600);
});

test('one-shot use and the mark are journal lines too (no snapshot rewrite), folded in on load in order', async (t) => {
  const { store, dir } = fresh(t);
  store.save(state('w'));
  const snapshot = readFileSync(join(dir, 'state', 'w.json'), 'utf8');
  const mark = { method: 'idmapped' as const, mountId: '42', fusePid: null, markPath: '/.workspace/mark', shift: [] };
  store.record({ ...state('w'), prepared: true }, { set: { prepared: true } });
  store.record({ ...state('w'), prepared: true, mark }, { set: { mark } });
  t.is(readFileSync(join(dir, 'state', 'w.json'), 'utf8'), snapshot, 'the snapshot was not rewritten');
  const prepared = await new StateStore(dir).load('w');
  t.true(prepared?.prepared);
  t.false(prepared?.tornDown);
  t.deepEqual(prepared?.mark, mark);
  store.record({ ...state('w'), prepared: true, tornDown: true, mark }, { set: { tornDown: true } });
  store.record({ ...state('w'), prepared: true, tornDown: true }, { set: { mark: null } });
  const torn = await new StateStore(dir).load('w');
  t.like(torn, { prepared: true, tornDown: true, mark: null });
  // A line that is no known change is an error naming the journal, not ignored.
  appendFileSync(join(dir, 'state', 'w.mounts.jsonl'), `${JSON.stringify({ set: { id: 'other' } })}\n`);
  await t.throwsAsync(new StateStore(dir).load('w'), { message: /w\.mounts\.jsonl line 5 is invalid/ });
});

test('archive folds the journal in and removes both files', async (t) => {
  const { store, dir } = fresh(t);
  store.save(state('w'));
  store.record(state('w', [m('7')]), { add: m('7') });
  const to = await store.archive('w');
  t.truthy(to);
  t.deepEqual(JSON.parse(readFileSync(to!, 'utf8')).mounts, [m('7')]);
  t.deepEqual(readdirSync(join(dir, 'state')), []);
});

test('archive/ keeps at most archive.keep files and none older than archive.maxAgeDays', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'iwsd-state-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const store = new StateStore(dir, { keep: 3, maxAgeDays: 10 });
  const archive = join(dir, 'archive');
  mkdirSync(archive);
  const now = Date.now();
  // Five old archives: one 20 days old, the others a day apart, all recent.
  for (const [name, daysAgo] of [['a.json', 20], ['b.json', 4], ['c.json', 3], ['d.json', 2], ['e.json', 1]] as const) {
    writeFileSync(join(archive, name), '{}\n');
    utimesSync(join(archive, name), (now - daysAgo * 86_400_000) / 1000, (now - daysAgo * 86_400_000) / 1000);
  }
  writeFileSync(join(archive, 'not-an-archive.txt'), 'x');
  store.save(state('w1'));
  const to = await store.archive('w1');
  t.truthy(to);
  // Kept: the new one and the two newest old ones; the 20-day one would be gone by age anyway.
  t.deepEqual(readdirSync(archive).sort(), [to!.split('/').pop()!, 'd.json', 'e.json', 'not-an-archive.txt'].sort());
  // By age alone.
  const byAge = new StateStore(dir, { keep: 1000, maxAgeDays: 1.5 });
  t.deepEqual(await byAge.pruneArchive(), ['d.json']);
  t.deepEqual(await new StateStore(join(dir, 'nothing')).pruneArchive(), []);
});

// ---- the service's record of its mounts (src/service.ts #recordMounts) ------------

test("MountProc/UmountProc through the service: the state's mounts follow each event, the journal's compaction snapshot and a load have exactly the live mounts, an unrecorded mount leaves no trace", async (t) => {
  const { store, dir } = fresh(t);
  const config = parseConfig({ limits: { mountsPerWorkspace: 10_000 } });
  const log = createLogger('silent');
  let seq = 0;
  const fake = {
    mountProc: () => Promise.resolve({ mountId: String(++seq), madeFor: { euid: 0, userns: '4:1' } }),
    // The undo of an unrecorded mount names just that one.
    umount: (_c: unknown, _who: unknown, o: { owned: { mountId: string }[]; target: string }) => Promise.resolve({ mountId: (o.owned.find((x) => live.get(x.mountId) === o.target) ?? o.owned[0]!).mountId }),
  } as unknown as NativeOps;
  const st = freshState('w');
  store.save(st);
  const w = { id: 'w', container: {}, policy: {}, mounts: new Map(), shift: [], markPath: '/.workspace/mark', state: st } as unknown as Workspace;
  let failNext = false;
  const recording = {
    record: (s: WorkspaceState, e: StateEvent) => {
      if (failNext) throw Object.assign(new Error('no space'), { code: 'ENOSPC' });
      store.record(s, e);
    },
  };
  const service = new WorkspaceService(w, serviceDeps({ log, store: recording, native: fake, guard: new RpcGuard(() => config), shiftMethod: 'idmapped', idmappedAnswer: config.shift.idmappedAnswer }));
  const caller = { pid: 1, uid: 0, gid: 0 };
  /** mount id -> target, as the test expects it. */
  const live = new Map<string, string>();
  const expectState = (what: string) => t.deepEqual(w.state.mounts.map((x) => [x.mountId, x.target]).sort(), [...live].sort(), what);
  // More events than one journal holds (512): compaction snapshots happen in between.
  for (let i = 0; i < 700; i++) {
    await service.mount('proc', { target: `/t/${i}`, pid: 1 }, caller);
    live.set(String(seq), `/t/${i}`);
    // Every third stays; the others go again, oldest kept mount first now and then.
    if (i % 3) {
      await service.umount('proc', { target: `/t/${i}`, pid: 1 }, caller);
      live.delete(String(seq));
    }
    if (i % 50 === 0 && live.size > 2) {
      const [id, target] = [...live][0]!;
      await service.umount('proc', { target, pid: 1 }, caller);
      live.delete(id);
    }
  }
  expectState('in memory');
  t.is(w.mounts.size, live.size);
  const snapshot = JSON.parse(readFileSync(join(dir, 'state', 'w.json'), 'utf8')) as WorkspaceState;
  t.true(snapshot.mounts.length > 0, 'a compaction snapshot was written with mounts');
  const loaded = await new StateStore(dir).load('w');
  t.deepEqual(loaded?.mounts.map((x) => [x.mountId, x.target]).sort(), [...live].sort(), 'after a restart');

  // A mount whose record fails is undone, and the state forgets it (a later snapshot must not carry it).
  failNext = true;
  const e = await t.throwsAsync(service.mount('proc', { target: '/t/unrecorded', pid: 1 }, caller));
  failNext = false;
  t.regex(e?.message ?? '', /not recorded and has been undone/);
  expectState('the unrecorded mount is not in the state');
  t.false([...w.mounts.values()].some((x) => x.target === '/t/unrecorded'));
  // A failed record of an unmount still forgets the mount (it is gone).
  const [gone, target] = [...live][0]!;
  failNext = true;
  await service.umount('proc', { target, pid: 1 }, caller);
  failNext = false;
  live.delete(gone);
  expectState('an unmount whose record failed');
});
