/**
 * What PrepareForUserNS answers in fs_shift (src/fsShift.ts), without root:
 * the label rules, the metadata parsing, and that nothing a client sends
 * reaches the mark the daemon makes (WorkspaceService against a fake native
 * library that records what it was asked to make). The same end to end, as
 * root, is in workspacekit.test.ts.
 */
import * as grpc from '@grpc/grpc-js';
import test from 'ava';

import { fsShiftAcceptMetadata } from '../src/api/client.js';
import { parseConfig } from '../src/config.js';
import { acceptedShiftMethods, FS_SHIFT_ACCEPT_HEADER, shiftAnswer, type IdmappedAnswer, type MarkMethod } from '../src/fsShift.js';
import { createLogger } from '../src/log.js';
import type * as native from '../src/native.js';
import { RpcGuard } from '../src/rpcGuard.js';
import { WorkspaceService, type NativeOps } from '../src/service.js';
import type { Workspace } from '../src/workspace.js';

import { freshState, serviceDeps } from './helpers/service.js';

const md = (...values: string[]) => {
  const m = new grpc.Metadata();
  for (const v of values) m.add(FS_SHIFT_ACCEPT_HEADER, v);
  return m;
};

test('the accept header: comma-separated names in any case, several values, bounded', (t) => {
  t.deepEqual([...acceptedShiftMethods(undefined)], []);
  t.deepEqual([...acceptedShiftMethods(new grpc.Metadata())], []);
  t.deepEqual([...acceptedShiftMethods(md(' IDMAPPED , fuse,,'))], ['idmapped', 'fuse']);
  t.deepEqual([...acceptedShiftMethods(md('shiftfs', 'Idmapped'))], ['shiftfs', 'idmapped']);
  // Past 256 characters nothing more is read.
  t.false(acceptedShiftMethods(md(`${'x,'.repeat(200)}idmapped`)).has('idmapped'));
  t.deepEqual([...acceptedShiftMethods(fsShiftAcceptMetadata())], ['idmapped'], 'what iwsd’s own client sends');
});

test('the answer: an idmapped mark is FUSE to a client that does not know IDMAPPED; other marks keep their label', (t) => {
  const none = new Set<string>();
  const knows = new Set(['idmapped']);
  t.is(shiftAnswer('idmapped', none, 'fuse').answered, 'FUSE');
  t.is(shiftAnswer('idmapped', knows, 'fuse').answered, 'IDMAPPED');
  t.is(shiftAnswer('idmapped', none, 'idmapped').answered, 'IDMAPPED');
  t.is(shiftAnswer('idmapped', new Set(['fuse', 'shiftfs', 'idmapped2']), 'fuse').answered, 'FUSE');
  for (const accepts of [none, knows, new Set(['shiftfs'])]) {
    for (const answer of ['fuse', 'idmapped'] as const) {
      t.is(shiftAnswer('fuse', accepts, answer).answered, 'FUSE');
      t.is(shiftAnswer('shiftfs', accepts, answer).answered, 'SHIFTFS');
    }
  }
});

/** A native library that makes marks of `method` and records what it was asked to make. */
function fakeNative(method: MarkMethod) {
  const asked: unknown[] = [];
  const ops = {
    prepareForUserNs: (_c: native.Container, _caller: native.Peer, opts: unknown) => {
      asked.push(opts);
      return Promise.resolve({ done: { mark: { method, mountId: 'mark-1' }, devices: null, devicesError: null } });
    },
  } as unknown as NativeOps;
  return { ops, asked };
}

function service(method: MarkMethod, configured: 'auto' | 'idmapped' | 'fuse', idmappedAnswer: IdmappedAnswer) {
  const config = parseConfig({ shift: { idmappedAnswer } });
  const f = fakeNative(method);
  const state = freshState('w');
  const w: Workspace = {
    id: 'w',
    hostPid: 1,
    container: { id: 'w' } as unknown as native.Container,
    policy: { rootRange: { start: 33333, size: 1 }, userRanges: [], allowHostRoot: false },
    dir: '/nonexistent/w',
    socketPath: '/nonexistent/w/daemon.sock',
    mounts: new Map(),
    shift: [{ containerId: 0, hostId: 33333, size: 1 }],
    markPath: '/.workspace/mark',
    fullWorkspaceBackup: false,
    persistentVolumeClaim: false,
    state,
  };
  const s = new WorkspaceService(
    w,
    serviceDeps({
      log: createLogger('silent'),
      store: { record: () => undefined },
      native: f.ops,
      guard: new RpcGuard(() => config),
      shiftMethod: configured,
      idmappedAnswer: config.shift.idmappedAnswer,
      fuseOptions: () => ({ binary: '/usr/bin/fuse-overlayfs', upper: '/x/u', work: '/x/w', staging: '/x/m', upperBytes: 1 << 20 }),
    }),
  );
  return { s, asked: f.asked, w };
}

const CALLER = { pid: 7, uid: 33333, gid: 33333 };

test('attack: whatever a client sends, the daemon asks the core for the same mark; only the label differs', async (t) => {
  const headers: (Set<string> | undefined)[] = [undefined, new Set(), new Set(['idmapped']), new Set(['fuse']), new Set(['shiftfs']), new Set(['fuse', 'shiftfs', 'idmapped'])];
  for (const configured of ['auto', 'idmapped', 'fuse'] as const) {
    const mark: MarkMethod = configured === 'fuse' ? 'fuse' : 'idmapped';
    for (const idmappedAnswer of ['fuse', 'idmapped'] as const) {
      const asked: unknown[] = [];
      const recorded: unknown[] = [];
      for (const accepts of headers) {
        const { s, asked: a, w } = service(mark, configured, idmappedAnswer);
        const notes: Record<string, unknown>[] = [];
        const r = await s.prepareForUserNS(CALLER, { ...(accepts ? { accepts } : {}), note: (f) => notes.push(f) });
        asked.push(...a);
        recorded.push(w.state.mark);
        const expected = mark === 'fuse' ? 'FUSE' : accepts?.has('idmapped') || idmappedAnswer === 'idmapped' ? 'IDMAPPED' : 'FUSE';
        const what = `${configured}/${idmappedAnswer}/${JSON.stringify([...(accepts ?? [])])}`;
        t.is(r.fsShift, expected, what);
        t.deepEqual(notes, [{ fsShift: { mark, answered: expected, why: shiftAnswer(mark, accepts ?? new Set(), idmappedAnswer).why } }], `${what}: the log line's fields`);
      }
      // One request to the core per call, all equal: the configured method, never the client's.
      t.is(asked.length, headers.length);
      for (const a of asked) t.deepEqual(a, asked[0]);
      t.is((asked[0] as { method: string }).method, configured);
      // And the mark recorded (what Teardown removes) is the one made.
      for (const m of recorded) t.deepEqual(m, recorded[0]);
      t.is((recorded[0] as { method: string }).method, mark);
    }
  }
});
