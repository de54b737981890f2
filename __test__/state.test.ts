/**
 * The state store: snapshot plus mount journal. Pure file logic, no root.
 */
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';

import { StateStore, type WorkspaceState } from '../src/state.js';

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
