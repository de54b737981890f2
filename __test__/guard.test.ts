/**
 * RpcGuard, the lanes, the error boundary and the guarded socket, without
 * root: WorkspaceService runs against a fake native library whose calls the
 * test holds and releases, and the guarded socket against a fake peer check.
 * No timing assertions: every wait is for an outcome.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import * as grpc from '@grpc/grpc-js';
import test from 'ava';

import { Metrics } from '../src/observability.js';
import { parseConfig, type ConfigInput } from '../src/config.js';
import { IwsError } from '../src/errors.js';
import { ConnectionBudget, ConnectionTable, GuardedSocket } from '../src/guardedSocket.js';
import { createLogger, type Logger } from '../src/log.js';
import type * as native from '../src/native.js';
import { workspaceProto } from '../src/proto.js';
import { RpcGuard, type Caller, type RpcName } from '../src/rpcGuard.js';
import { auditWorkspaceUnimplemented, workspaceHandlers, WorkspaceService, type CallContext, type NativeOps } from '../src/service.js';
import type { WorkspaceState } from '../src/state.js';
import type { Workspace } from '../src/workspace.js';

import { freshState, serviceDeps } from './helpers/service.js';

const CALLER: Caller = { pid: 4242, uid: 0, gid: 0 };

function capture(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger('debug', { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { log, lines };
}

/** A native call the test controls: started calls wait until released. */
interface Held {
  op: string;
  workspace: string;
  resolve: (v?: unknown) => void;
  reject: (e: Error) => void;
}

class FakeNative implements NativeOps {
  started: Held[] = [];
  /** When true, calls complete at once (after a tick) instead of waiting. */
  auto = false;
  failNext = 0;
  #mountSeq = 0;
  inFlight = new Map<string, number>();
  maxInFlight = new Map<string, number>();

  #call<T>(op: string, container: native.Container, value: () => T): Promise<T> {
    const workspace = (container as unknown as { id: string }).id;
    const n = (this.inFlight.get(workspace) ?? 0) + 1;
    this.inFlight.set(workspace, n);
    this.maxInFlight.set(workspace, Math.max(n, this.maxInFlight.get(workspace) ?? 0));
    const done = () => this.inFlight.set(workspace, this.inFlight.get(workspace)! - 1);
    return new Promise<T>((resolve, reject) => {
      const h: Held = {
        op,
        workspace,
        resolve: () => {
          done();
          resolve(value());
        },
        reject: (e) => {
          done();
          reject(e);
        },
      };
      this.started.push(h);
      if (this.auto) {
        setImmediate(() => {
          if (this.failNext > 0) {
            this.failNext--;
            h.reject(new IwsError('INVALID_ARGUMENT', 'fake: target refused'));
          } else h.resolve();
        });
      }
    });
  }

  writeIdMapping = ((c: native.Container) => this.#call('writeIdMapping', c, () => ({ message: '' }))) as unknown as NativeOps['writeIdMapping'];
  mountProc = ((c: native.Container) => this.#call('mountProc', c, () => ({ mountId: `m${++this.#mountSeq}` }))) as unknown as NativeOps['mountProc'];
  mountSysfs = ((c: native.Container) => this.#call('mountSysfs', c, () => ({ mountId: `m${++this.#mountSeq}` }))) as unknown as NativeOps['mountSysfs'];
  umount = ((c: native.Container) => this.#call('umount', c, () => ({ mountId: 'm1' }))) as unknown as NativeOps['umount'];
  /** Callers the fake's lifecycle calls refuse before any work, as the core's authorization does (its rules are tested as root in authz-attacks.test.ts). */
  refuses: (caller: native.Peer) => boolean = () => false;
  #lifecycle<T>(caller: native.Peer, done: () => T): native.Lifecycle<T> {
    return this.refuses(caller) ? { refused: new IwsError('PERMISSION_DENIED', 'fake: only the workspace owner may do this') } : { done: done() };
  }
  prepareForUserNs = ((c: native.Container, caller: native.Peer) =>
    this.#call('prepareForUserNs', c, () => this.#lifecycle(caller, () => ({ mark: { method: 'idmapped', mountId: 'mark' }, devices: null, devicesError: null })))) as unknown as NativeOps['prepareForUserNs'];
  teardown = ((c: native.Container, caller: native.Peer) => this.#call('teardown', c, () => this.#lifecycle(caller, () => ({ success: true, problems: [] })))) as unknown as NativeOps['teardown'];
  removeShiftMark = ((c: native.Container) => this.#call('removeShiftMark', c, () => ({ success: true, problems: [] }))) as unknown as NativeOps['removeShiftMark'];
  /** The core's per-caller check (WipingTeardown; a Teardown sharing the daemon's removal), by `refuses`. */
  authorizeLifecycle: NativeOps['authorizeLifecycle'] = (_c, caller) =>
    this.refuses(caller) ? Promise.reject(new IwsError('PERMISSION_DENIED', 'fake: only the workspace owner may do this')) : Promise.resolve();
  readCgroupResources = ((c: native.Container) =>
    this.#call('readCgroupResources', c, () => ({ cpuUsageNs: 0, memoryUsed: 0, sources: [], atNs: 1, startedNs: 0, cpus: 1, memTotal: 1 }))) as unknown as NativeOps['readCgroupResources'];
  evacuateCgroup = ((c: native.Container) =>
    this.#call('evacuateCgroup', c, () => ({ unified: false, cgroup: '', moved: 0, controllers: [], problems: [] }))) as unknown as NativeOps['evacuateCgroup'];
  mountNfs = ((c: native.Container) => this.#call('mountNfs', c, () => ({ mountId: `m${++this.#mountSeq}` }))) as unknown as NativeOps['mountNfs'];
  setupPairVeths = ((c: native.Container) =>
    this.#call('setupPairVeths', c, () => ({ containerIf: 'veth0', peerIf: 'eth0', containerAddr: '10.0.5.1', peerAddr: '10.0.5.2', prefix: 30 }))) as unknown as NativeOps['setupPairVeths'];

  /** Releases started calls (all, or those matching) in start order. */
  release(pred: (h: Held) => boolean = () => true): number {
    const hit = this.started.filter(pred);
    this.started = this.started.filter((h) => !hit.includes(h));
    for (const h of hit) h.resolve();
    return hit.length;
  }
}


function setup(overrides: ConfigInput = {}) {
  const config = parseConfig(overrides);
  const fake = new FakeNative();
  const { log, lines } = capture();
  const guard = new RpcGuard(() => config, { log });
  const saved: WorkspaceState[] = [];
  const service = (id: string) => {
    const w: Workspace = {
      id,
      hostPid: 1,
      container: { id } as unknown as native.Container,
      policy: { rootRange: { start: 33333, size: 1 }, userRanges: [], allowHostRoot: false },
      dir: `/nonexistent/${id}`,
      socketPath: `/nonexistent/${id}/daemon.sock`,
      mounts: new Map(),
      shift: [],
      markPath: '/.workspace/mark',
      fullWorkspaceBackup: false,
      persistentVolumeClaim: false,
      state: freshState(id),
    };
    return new WorkspaceService(
      w,
      serviceDeps({
        log,
        store: { record: (s) => void saved.push(s) },
        native: fake,
        guard,
        shiftMethod: 'idmapped',
        idmappedAnswer: config.shift.idmappedAnswer,
      }),
    );
  };
  return { config, fake, guard, service, lines, saved };
}

const MOUNT = { pid: 1, target: '/work/t' };
const MAP = { pid: 1, gid: false, mapping: [{ containerId: 0, hostId: 33333, size: 1 }] };

/** Calls an RPC through the service's guard, as the handler does. */
function call(s: WorkspaceService, rpc: RpcName, deadline?: number, caller: native.Peer = CALLER): Promise<unknown> {
  const work: Partial<Record<RpcName, () => Promise<unknown>>> = {
    WriteIDMapping: () => s.writeIdMapping(MAP, CALLER),
    PrepareForUserNS: () => s.prepareForUserNS(caller),
    MountProc: () => s.mount('proc', MOUNT, CALLER),
    UmountProc: () => s.umount('proc', MOUNT, CALLER),
    MountSysfs: () => s.mount('sysfs', MOUNT, CALLER),
    UmountSysfs: () => s.umount('sysfs', MOUNT, CALLER),
    Teardown: () => s.teardown(caller),
  };
  const fn = work[rpc];
  if (!fn) throw new Error(`guard.test: no fake call for ${rpc}`);
  return s.run(rpc, caller, fn, deadline);
}

const settle = (p: Promise<unknown>) => p.then((v) => ({ ok: true as const, v }), (e: unknown) => ({ ok: false as const, e: e as IwsError }));

async function until(what: string, f: () => boolean): Promise<void> {
  const end = Date.now() + 20_000;
  for (let i = 0; Date.now() < end; i++) {
    if (f()) return;
    await new Promise((r) => (i < 1000 ? setImmediate(r) : setTimeout(r, 10)));
  }
  throw new Error(`never: ${what}`);
}

test('every mutating RPC has a rate limit per workspace from configuration; a limited call does no native work', async (t) => {
  const rpcs: [RpcName, string][] = [
    ['WriteIDMapping', 'writeIdMapping'],
    ['MountProc', 'mountProc'],
    ['UmountProc', 'umountProc'],
    ['MountSysfs', 'mountSysfs'],
    ['UmountSysfs', 'umountSysfs'],
    ['PrepareForUserNS', 'prepareForUserNS'],
    ['Teardown', 'teardown'],
  ];
  const rateLimits = Object.fromEntries(rpcs.map(([, k]) => [k, { points: 1, durationSeconds: 60 }]));
  const { fake, service } = setup({ rateLimits });
  fake.auto = true;
  const a = service('a');
  const b = service('b');
  for (const [rpc] of rpcs) {
    await settle(call(a, rpc));
    const before = fake.inFlight.size;
    const n = fake.started.length;
    const second = await settle(call(a, rpc));
    t.false(second.ok, rpc);
    t.is(second.ok ? '' : second.e.code, 'RESOURCE_EXHAUSTED', rpc);
    t.regex(second.ok ? '' : second.e.message, new RegExp(`^${rpc} is limited to 1 calls per 60s per workspace`));
    t.is(fake.started.length, n, `${rpc}: no native call`);
    t.is(fake.inFlight.size, before);
    // Another workspace's budget is its own.
    const other = await settle(call(b, rpc));
    t.false(!other.ok && other.e.code === 'RESOURCE_EXHAUSTED' && /limited/.test(other.e.message), `${rpc} in b`);
  }
});

test('defaults: a real workspace start (ring sequence) is far from every rate limit', (t) => {
  const rl = parseConfig({}).rateLimits;
  // Gitpod's start: 1 PrepareForUserNS, 2 WriteIDMapping, 1-2 MountProc, 1 MountSysfs, their unmounts, 1 Teardown.
  t.true(rl.writeIdMapping.points >= 4 && rl.prepareForUserNS.points >= 1 && rl.teardown.points >= 1);
  for (const k of ['mountProc', 'umountProc', 'mountSysfs', 'umountSysfs'] as const) t.true(rl[k].points >= 100, k);
});

test('in-flight native calls are capped per workspace; beyond the queue, RESOURCE_EXHAUSTED without native work', async (t) => {
  const { fake, service } = setup({ work: { inFlightPerWorkspace: 2, queuePerWorkspace: 5, shortLane: 4 }, rateLimits: { writeIdMapping: { points: 1000 } } });
  const a = service('a');
  const calls = Array.from({ length: 10 }, () => settle(call(a, 'WriteIDMapping')));
  await until('two started', () => fake.started.length === 2);
  // 2 in flight + 5 queued; the other 3 are refused at once.
  const refused = (await Promise.race([Promise.all(calls.slice(7)), new Promise((r) => setTimeout(r, 5000, 'timeout'))])) as Awaited<(typeof calls)[number]>[];
  t.deepEqual(
    refused.map((r) => (r.ok ? 'OK' : r.e.code)),
    ['RESOURCE_EXHAUSTED', 'RESOURCE_EXHAUSTED', 'RESOURCE_EXHAUSTED'],
  );
  t.regex(refused[0]!.ok ? '' : refused[0]!.e.message, /2 short native calls in flight and 5 waiting/);
  while (fake.started.length) {
    fake.release();
    await new Promise((r) => setImmediate(r));
  }
  const results = await Promise.all(calls.slice(0, 7));
  t.true(results.every((r) => r.ok));
  t.is(fake.maxInFlight.get('a'), 2, 'never more than 2 at once');
});

test('a freed slot goes to the workspaces in turn: a flooding workspace delays another by one call, not by its queue', async (t) => {
  const { fake, service } = setup({ work: { inFlightPerWorkspace: 4, shortLane: 1, queuePerWorkspace: 100 }, rateLimits: { writeIdMapping: { points: 1000 } } });
  const flood = service('flood');
  const quiet = service('quiet');
  const floodCalls = Array.from({ length: 50 }, () => settle(call(flood, 'WriteIDMapping')));
  await until('first flood call started', () => fake.started.length === 1);
  const quietCall = settle(call(quiet, 'WriteIDMapping'));
  const order: string[] = [];
  while (order.length < 51) {
    await until('a call started', () => fake.started.length === 1);
    order.push(fake.started[0]!.workspace);
    fake.release();
  }
  t.deepEqual(order.slice(0, 3), ['flood', 'quiet', 'flood'], 'the quiet call ran next');
  t.true((await quietCall).ok);
  t.true((await Promise.all(floodCalls)).every((r) => r.ok));
});

test('long calls have a lane of their own: short calls run while every long slot hangs; a long call has a deadline', async (t) => {
  const { fake, guard, service } = setup({ work: { longLane: 2, shortLane: 2, longDeadlineMs: 200 }, rateLimits: { writeIdMapping: { points: 1000 } } });
  const ws = ['a', 'b', 'c'].map(service);
  // Three workspaces start a mark (FUSE helper start can block); the lane holds two.
  const prepares = ws.map((s) => settle(call(s, 'PrepareForUserNS')));
  await until('two long calls started', () => fake.started.filter((h) => h.op === 'prepareForUserNs').length === 2);
  t.is(guard.long.running, 2);
  t.is(guard.long.queued, 1);
  // Short calls still run, on their own slots.
  const short = settle(call(ws[0]!, 'WriteIDMapping'));
  await until('short call started', () => fake.started.some((h) => h.op === 'writeIdMapping'));
  fake.release((h) => h.op === 'writeIdMapping');
  t.true((await short).ok);
  // The hung ones hit their deadline (the third never got a slot).
  const r = await Promise.all(prepares);
  t.deepEqual(
    r.map((x) => (x.ok ? 'OK' : x.e.code)),
    ['UNAVAILABLE', 'UNAVAILABLE', 'UNAVAILABLE'],
  );
  t.true(r.every((x) => !x.ok && /deadline/.test(x.e.message)));
  // Their slots stay taken until the native work really ends.
  t.is(guard.long.running, 2);
  fake.release((h) => h.op === 'prepareForUserNs');
  await until('slots freed', () => guard.long.running === 0);
  t.is(fake.started.length, 0, 'the third call never ran');
});

test('a call waiting for a slot gives up at its own deadline', async (t) => {
  const { fake, service } = setup({ work: { inFlightPerWorkspace: 1 }, rateLimits: { writeIdMapping: { points: 1000 } } });
  const a = service('a');
  const first = settle(call(a, 'WriteIDMapping'));
  await until('first started', () => fake.started.length === 1);
  const second = await settle(call(a, 'WriteIDMapping', Date.now() + 50));
  t.false(second.ok);
  t.regex(second.ok ? '' : second.e.message, /deadline/);
  fake.release();
  t.true((await first).ok);
  t.is(fake.started.length, 0, 'the expired call never ran');
});

test('64 concurrent MountProcs against a limit of 10: exactly 10 mounted; failed mounts give their slot back', async (t) => {
  const { fake, service } = setup({ limits: { mountsPerWorkspace: 10 }, work: { inFlightPerWorkspace: 64, shortLane: 64, queuePerWorkspace: 64 } });
  fake.auto = true;
  const a = service('a');
  const r = await Promise.all(Array.from({ length: 64 }, () => settle(call(a, 'MountProc'))));
  t.is(r.filter((x) => x.ok).length, 10);
  t.true(r.filter((x) => !x.ok).every((x) => !x.ok && x.e.code === 'RESOURCE_EXHAUSTED' && /limit 10/.test(x.e.message)));
  t.is(a.workspace.mounts.size, 10);
  t.is(fake.started.filter((h) => h.op === 'mountProc').length, 10, 'exactly 10 native mount calls');

  // A failing native call releases its reservation.
  const b = service('b');
  fake.failNext = 5;
  const rb = await Promise.all(Array.from({ length: 15 }, () => settle(call(b, 'MountProc'))));
  // 10 slots reserved at once (5 refused at once); 5 of the reserved calls fail.
  t.is(rb.filter((x) => !x.ok && x.e.code === 'INVALID_ARGUMENT').length, 5);
  t.is(rb.filter((x) => !x.ok && x.e.code === 'RESOURCE_EXHAUSTED').length, 5);
  t.is(b.workspace.mounts.size, 5);
  // Their 5 slots are free again: 5 more fit, the next does not.
  const more = await Promise.all(Array.from({ length: 6 }, () => settle(call(b, 'MountProc'))));
  t.deepEqual(more.map((x) => (x.ok ? 'OK' : x.e.code)).sort(), ['OK', 'OK', 'OK', 'OK', 'OK', 'RESOURCE_EXHAUSTED']);
  t.is(b.workspace.mounts.size, 10);
});

test('one-shot RPCs: of concurrent PrepareForUserNS calls exactly one runs, and the shot is persisted before it', async (t) => {
  const { fake, service, saved } = setup();
  fake.auto = true;
  const a = service('a');
  const r = await Promise.all([settle(call(a, 'PrepareForUserNS')), settle(call(a, 'PrepareForUserNS'))]);
  t.deepEqual(r.map((x) => (x.ok ? 'OK' : x.e.code)).sort(), ['OK', 'RESOURCE_EXHAUSTED']);
  t.is(saved[0]?.prepared, true);
  t.is(saved[0]?.mark, null, 'persisted before the mark was made');
});

for (const [rpc, op, flag] of [
  ['PrepareForUserNS', 'prepareForUserNs', 'prepared'],
  ['Teardown', 'teardown', 'tornDown'],
] as const) {
  test(`${rpc}: a caller refused before any work gives the one shot back (persisted), and a rightful call racing it is not refused for it`, async (t) => {
    // Attack: an unprivileged user calls first, and again while the rightful
    // caller's call is under way, to use up the workspace's only shot.
    const { fake, service, saved } = setup();
    const a = service('a');
    const attacker: native.Peer = { ...CALLER, uid: 1000 };
    fake.refuses = (c) => c.uid === 1000;
    const first = await settle((fake.auto = true, call(a, rpc, undefined, attacker)));
    t.is(first.ok ? 'OK' : first.e.code, 'PERMISSION_DENIED');
    t.false(a.workspace.state[flag], 'the refusal did not use the shot');
    t.deepEqual(
      saved.map((s) => s[flag]),
      [true, false],
      'used before the native call, given back (and recorded) after its refusal',
    );
    // The race: the attacker's call holds the shot undecided when the
    // rightful one arrives. (In the daemon the long lane runs one long call
    // per workspace at a time as well; the service holds without it.)
    fake.auto = false;
    fake.started = [];
    const direct = (caller: native.Peer) => (rpc === 'PrepareForUserNS' ? a.prepareForUserNS(caller) : a.teardown(caller));
    const raced = settle(direct(attacker));
    await until('the attacker is in the native call', () => fake.started.some((h) => h.op === op));
    const rightful = settle(direct(CALLER));
    await new Promise((r) => setTimeout(r, 20));
    t.is(fake.started.filter((h) => h.op === op).length, 1, 'the rightful call waits for the undecided shot');
    fake.release();
    const r1 = await raced;
    t.is(r1.ok ? 'OK' : r1.e.code, 'PERMISSION_DENIED');
    await until('the rightful call is in the native call', () => fake.started.some((h) => h.op === op));
    fake.release();
    const r2 = await rightful;
    t.true(r2.ok, r2.ok ? '' : r2.e.message);
    t.true(a.workspace.state[flag]);
    // Used now: once more is refused, whoever calls.
    fake.auto = true;
    const again = await settle(call(a, rpc));
    t.is(again.ok ? 'OK' : again.e.code, 'RESOURCE_EXHAUSTED');
  });
}

test('PrepareForUserNS: a call that fails after its caller was authorized keeps the shot used', async (t) => {
  const { fake, service, saved } = setup();
  fake.auto = true;
  fake.failNext = 1;
  const a = service('a');
  const r = await settle(call(a, 'PrepareForUserNS'));
  t.is(r.ok ? 'OK' : r.e.code, 'INVALID_ARGUMENT');
  t.true(a.workspace.state.prepared);
  t.deepEqual(saved.map((s) => s.prepared), [true]);
  const again = await settle(call(a, 'PrepareForUserNS'));
  t.is(again.ok ? 'OK' : again.e.code, 'RESOURCE_EXHAUSTED');
});

test('an authorizer refusal stops the call before any native work', async (t) => {
  const config = parseConfig({});
  const fake = new FakeNative();
  const guard = new RpcGuard(() => config, {
    authorize: (rpc, caller) => {
      if (rpc === 'MountProc' && caller.uid !== 0) throw new IwsError('PERMISSION_DENIED', 'MountProc: only container root (test rule)');
    },
  });
  const r = await settle(guard.run('MountProc', 'a', { pid: 1, uid: 1000, gid: 1000 }, () => fake.mountProc({ id: 'a' } as unknown as native.Container, { pid: 1, uid: 1000, gid: 1000 }, MOUNT as native.MountProcOptions)));
  t.is(r.ok ? '' : r.e.code, 'PERMISSION_DENIED');
  t.is(fake.started.length, 0);
});

// ---- the error boundary and the guarded socket, over real unix sockets ------------

const Client = workspaceProto().iws.InWorkspaceService;
type AnyClient = grpc.Client & Record<string, (req: unknown, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: unknown) => void) => void>;

function rpc(client: AnyClient, method: string, req: unknown): Promise<{ code: string; details: string }> {
  return new Promise((resolve) => {
    client[method]!(req, { deadline: Date.now() + 10_000 }, (err) => resolve(err ? { code: grpc.status[err.code], details: err.details } : { code: 'OK', details: '' }));
  });
}

async function served(t: import('ava').ExecutionContext, connections: ConfigInput['connections'] = {}, check?: (fd: number) => Promise<native.Peer>, metrics?: Metrics) {
  const dir = mkdtempSync(join(tmpdir(), 'iwsd-guard-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const s = setup({ connections });
  s.fake.auto = true;
  const service = s.service('ws');
  const table = new ConnectionTable<CallContext>();
  const contextOf = (call: { getPeer(): string }) => table.of(call);
  const server = new grpc.Server({ 'grpc.max_connection_idle_ms': s.config.connections.idleTimeoutMs });
  server.addService(Client.service, workspaceHandlers(contextOf, metrics));
  auditWorkspaceUnimplemented(server, contextOf, metrics);
  const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  const budget = new ConnectionBudget(() => s.config.connections);
  const events = { refused: [] as string[], noPreface: 0 };
  const { log, lines } = capture();
  const path = join(dir, 'ws.sock');
  const sock = await GuardedSocket.listen({
    path,
    mode: 0o600,
    tmpDir: dir,
    injector,
    table,
    context: { service, log },
    check: check ?? (async () => ({ pid: 7, uid: 0, gid: 0 })),
    log,
    budget,
    events: { onRefused: (k) => events.refused.push(k), onNoPreface: () => events.noPreface++ },
  });
  t.teardown(async () => {
    await sock.close();
    injector.destroy();
    server.forceShutdown();
  });
  const client = () => {
    const c = new Client(`unix:${path}`, grpc.credentials.createInsecure()) as unknown as AnyClient;
    t.teardown(() => c.close());
    return c;
  };
  return { ...s, path, sock, budget, events, lines, client };
}

test('the boundary: calls are audited with the peer; failures at warn; unknown methods are audited and answered UNIMPLEMENTED', async (t) => {
  const { client, lines } = await served(t);
  const c = client();
  t.is((await rpc(c, 'WriteIDMapping', MAP)).code, 'OK');
  const ok = lines.find((l) => l.rpc === 'WriteIDMapping' && l.result === 'OK');
  t.like(ok, { level: 'info', peer: { pid: 7, uid: 0 } });
  t.true(lines.some((l) => l.level === 'debug' && l.msg === 'WriteIDMapping started'), 'a debug line per call');

  // An unknown method on the same connection, through the same boundary.
  const unknown = await new Promise<grpc.ServiceError | null>((resolve) =>
    c.makeUnaryRequest('/iws.InWorkspaceService/Frobnicate', (x: Buffer) => x, (x: Buffer) => x, Buffer.from('abc'), { deadline: Date.now() + 5000 }, (err) => resolve(err)),
  );
  t.is(unknown?.code, grpc.status.UNIMPLEMENTED);
  t.regex(unknown?.details ?? '', /does not implement \/iws\.InWorkspaceService\/Frobnicate/);
  t.like(
    lines.find((l) => l.rpc === '/iws.InWorkspaceService/Frobnicate' && l.result),
    { level: 'warn', result: 'UNIMPLEMENTED', peer: { pid: 7, uid: 0 } },
  );
});

test('attack: calls to made-up method names add no metric series (one "unimplemented" label), so they cannot grow the daemon without bound', async (t) => {
  const metrics = new Metrics({ workspaces: () => 1, mounts: () => ({ proc: 0, sysfs: 0, nfs: 0, marks: 0 }) });
  const { client } = await served(t, {}, undefined, metrics);
  const c = client();
  await Promise.all(
    Array.from({ length: 200 }, (_, i) => new Promise((resolve) => c.makeUnaryRequest(`/x.Y/Made${i}up`, (x: Buffer) => x, (x: Buffer) => x, Buffer.alloc(0), (e) => resolve(e)))),
  );
  t.is((await rpc(c, 'WriteIDMapping', MAP)).code, 'OK');
  const series = (await metrics.registry.getSingleMetric('iwsd_rpc_total')!.get()).values;
  t.deepEqual(
    series.map((v) => `${v.labels.rpc} ${v.labels.code} ${v.value}`).sort(),
    ['WriteIDMapping OK 1', 'unimplemented UNIMPLEMENTED 200'],
  );
});

test('the boundary: a flood of refusals is logged in bounded lines, the rest counted', async (t) => {
  const { client, lines } = await served(t);
  const c = client();
  await Promise.all(Array.from({ length: 100 }, () => new Promise((resolve) => c.makeUnaryRequest('/x.Y/Z', (x: Buffer) => x, (x: Buffer) => x, Buffer.alloc(0), (e) => resolve(e)))));
  const recs = lines.filter((l) => l.rpc === '/x.Y/Z' && l.level === 'warn');
  t.true(recs.length > 0 && recs.length <= 20, `${recs.length} lines for 100 refusals`);
});

/** Opens `n` raw connections that send nothing; resolves once each is connected or refused. */
async function idle(path: string, n: number): Promise<Socket[]> {
  const socks: Socket[] = [];
  await Promise.all(
    Array.from({ length: n }, () => new Promise<void>((resolve) => {
      const s = connect(path);
      s.on('error', () => undefined);
      s.once('connect', () => resolve());
      s.once('close', () => resolve());
      socks.push(s);
    })),
  );
  return socks;
}

const closed = (s: Socket) => new Promise<void>((r) => (s.destroyed ? r() : s.once('close', () => r())));

test('connections: over the cap a client is told RESOURCE_EXHAUSTED; silent connections are closed after the preface timeout; the cap frees again', async (t) => {
  // A preface timeout long enough that the four are still held when the fifth comes.
  const { client, path, events, sock } = await served(t, { perWorkspace: 4, prefaceTimeoutMs: 3000 });
  const held = await idle(path, 4);
  await until('4 connections accepted', () => sock.connections === 4);
  // The fifth connection is over the cap: the client sees why.
  const over = await rpc(client(), 'WriteIDMapping', MAP);
  t.is(over.code, 'RESOURCE_EXHAUSTED');
  t.regex(over.details, /this workspace already holds 4 connections to iwsd \(limit 4\)/);
  t.deepEqual(events.refused, ['cap']);
  // The silent ones are closed (no HTTP/2 preface), and the cap is free again.
  await Promise.all(held.map(closed));
  t.is(events.noPreface, 4);
  t.is((await rpc(client(), 'WriteIDMapping', MAP)).code, 'OK');
});

test('connections: a peer that fails the check is answered PERMISSION_DENIED with the reason', async (t) => {
  const { client, events } = await served(t, {}, async () => {
    throw new IwsError('PERMISSION_DENIED', 'the connecting process (pid 99) is not inside this workspace');
  });
  const r = await rpc(client(), 'Teardown', {});
  t.is(r.code, 'PERMISSION_DENIED');
  t.regex(r.details, /peer check: the connecting process \(pid 99\) is not inside this workspace/);
  t.deepEqual(events.refused, ['peer']);
});

test('connections: without calls a connection is closed after connections.idleTimeoutMs', async (t) => {
  const { client, sock } = await served(t, { idleTimeoutMs: 300 });
  const c = client();
  t.is((await rpc(c, 'WriteIDMapping', MAP)).code, 'OK');
  t.is(sock.connections, 1);
  await until('idle connection closed', () => sock.connections === 0);
  t.is(sock.connections, 0);
});
