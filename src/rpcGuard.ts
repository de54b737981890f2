/**
 * RpcGuard: every check iwsd makes in TypeScript before a workspace RPC does
 * native work, in one place and in one order, in front of every handler:
 *
 *   1. authorization (a pluggable decision on the verified caller);
 *   2. the RPC's rate limit (per workspace, from `rateLimits`);
 *   3. a slot in the RPC's lane (short or long), fair between workspaces,
 *      bounded per workspace and daemon-wide (from `work`);
 *   4. for long calls, a deadline.
 *
 * Quotas that belong to a call's effect are reserved here too, atomically,
 * before the native call: the mount limit (`reserveMount`) and the one-shot
 * RPCs (`takeShot`). The guard knows nothing of the kernel; it is
 * unit-tested against a fake native library (__test__/guard.test.ts).
 */
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';

import type { Config } from './config.js';
import { IwsError } from './errors.js';
import { FairLane } from './lane.js';
import type { Logger } from './log.js';
import type { Metrics } from './observability.js';

export const RPCS = {
  WriteIDMapping: { lane: 'short', limit: 'writeIdMapping' },
  PrepareForUserNS: { lane: 'long', limit: 'prepareForUserNS' },
  MountProc: { lane: 'short', limit: 'mountProc' },
  UmountProc: { lane: 'short', limit: 'umountProc' },
  MountSysfs: { lane: 'short', limit: 'mountSysfs' },
  UmountSysfs: { lane: 'short', limit: 'umountSysfs' },
  Teardown: { lane: 'long', limit: 'teardown' },
  WipingTeardown: { lane: 'long', limit: 'wipingTeardown' },
  EvacuateCGroup: { lane: 'long', limit: 'evacuateCGroup' },
  SetupPairVeths: { lane: 'long', limit: 'setupPairVeths' },
  MountNfs: { lane: 'long', limit: 'mountNfs' },
  UmountNfs: { lane: 'long', limit: 'umountNfs' },
  WorkspaceInfo: { lane: 'short', limit: 'workspaceInfo' },
} as const satisfies Record<string, { lane: 'short' | 'long'; limit: keyof Config['rateLimits'] }>;

export type RpcName = keyof typeof RPCS;

/** The verified process on the other end of a workspace connection. */
export interface Caller {
  pid: number;
  uid: number;
  gid: number;
  /** Its start time at connect time: with `pid`, the process the core pins again per call (absent: refused there). */
  startTime?: number;
}

/** What the guard reads from the configuration, at every call (a reload reaches running workspaces). */
export type GuardConfig = Pick<Config, 'rateLimits' | 'work' | 'limits'>;

/**
 * An authorization decision made in TypeScript: throws (PERMISSION_DENIED,
 * naming the rule) to refuse. The default permits; the kernel-rule checks
 * live in the core, per native call.
 */
export type Authorizer = (rpc: RpcName, caller: Caller, workspaceId: string) => void;

/** The part of a workspace the guard's quotas look at. */
export interface GuardedWorkspace {
  readonly id: string;
  readonly mounts: ReadonlyMap<string, unknown>;
}

/** A mount slot taken from a workspace's limit; exactly one of commit/release, once. */
export interface MountReservation {
  /** The mount exists and is in `workspace.mounts`: the slot is now counted there. */
  commit(): void;
  /** The mount was not made: the slot is free again. */
  release(): void;
}

export interface GuardOptions {
  metrics?: Metrics | undefined;
  authorize?: Authorizer | undefined;
  log?: Logger | undefined;
}

export class RpcGuard {
  readonly #config: () => GuardConfig;
  readonly #limiters = new Map<RpcName, RateLimiterMemory>();
  readonly #reserved = new Map<string, number>();
  readonly #metrics: Metrics | undefined;
  readonly #authorize: Authorizer;
  readonly #log: Logger | undefined;
  readonly short: FairLane;
  readonly long: FairLane;

  constructor(config: () => GuardConfig, opts: GuardOptions = {}) {
    this.#config = config;
    this.#metrics = opts.metrics;
    this.#authorize = opts.authorize ?? (() => undefined);
    this.#log = opts.log;
    this.short = new FairLane('short', () => {
      const w = this.#config().work;
      return { perKey: w.inFlightPerWorkspace, total: w.shortLane, maxQueued: w.queuePerWorkspace };
    });
    // One long call per workspace at a time: its queue is short too.
    this.long = new FairLane('long', () => {
      const w = this.#config().work;
      return { perKey: 1, total: w.longLane, maxQueued: Math.min(w.queuePerWorkspace, 4) };
    });
    this.applyRateLimits();
  }

  /** (Re)reads `rateLimits` into the limiters (after a reload). */
  applyRateLimits(): void {
    const rl = this.#config().rateLimits;
    for (const [rpc, { limit }] of Object.entries(RPCS) as [RpcName, (typeof RPCS)[RpcName]][]) {
      const { points, durationSeconds } = rl[limit];
      const l = this.#limiters.get(rpc);
      if (l) {
        l.points = points;
        l.duration = durationSeconds;
      } else {
        this.#limiters.set(rpc, new RateLimiterMemory({ keyPrefix: rpc, points, duration: durationSeconds }));
      }
    }
  }

  /**
   * Runs `fn` (the RPC's native work) for `caller` of `workspaceId` once
   * every check passed; throws the refusal otherwise. `callDeadline`: the
   * client's deadline (epoch ms), if it set one: a call never waits past it.
   */
  async run<T>(rpc: RpcName, workspaceId: string, caller: Caller, fn: () => Promise<T>, callDeadline?: number): Promise<T> {
    this.#authorize(rpc, caller, workspaceId);
    await this.#consume(rpc, workspaceId);
    const spec = RPCS[rpc];
    const work = this.#config().work;
    const started = Date.now();
    const lane = spec.lane === 'long' ? this.long : this.short;
    const longDeadline = spec.lane === 'long' ? started + work.longDeadlineMs : Infinity;
    const waitUntil = Math.min(started + work.queueTimeoutMs, callDeadline ?? Infinity, longDeadline);
    const waitedTooLong = () =>
      waitUntil === longDeadline
        ? new IwsError('UNAVAILABLE', `${rpc} did not start within its ${work.longDeadlineMs} ms deadline: other workspaces' long calls hold every ${lane.name} slot; retry later`)
        : waitUntil === callDeadline
          ? new IwsError('UNAVAILABLE', `${rpc} waited for a native slot until the call's deadline`)
          : new IwsError('UNAVAILABLE', `${rpc} waited ${work.queueTimeoutMs} ms for a native slot (${lane.name} lane busy); retry later`);
    if ((lane.runningOf(workspaceId) || lane.queuedOf(workspaceId)) && this.#log?.isLevelEnabled('debug')) {
      this.#log?.debug({ rpc, lane: lane.name, running: lane.runningOf(workspaceId), queued: lane.queuedOf(workspaceId) }, `${rpc} waits for a ${lane.name} slot`);
    }
    const release = await lane.acquire(workspaceId, waitUntil, waitedTooLong);
    const waited = Date.now() - started;
    if (waited > 0 && this.#log?.isLevelEnabled('debug')) this.#log.debug({ rpc, lane: lane.name, waitedMs: waited }, `${rpc} got a ${lane.name} slot after ${waited} ms`);
    let p: Promise<T>;
    try {
      p = fn();
    } catch (err) {
      release();
      throw err;
    }
    // The slot is held until the native call really ends (its pool thread is
    // busy until then), even when the caller was answered earlier.
    p.then(release, release);
    if (spec.lane !== 'long') return p;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new IwsError('UNAVAILABLE', `${rpc} did not finish within its ${work.longDeadlineMs} ms deadline; its native work continues and is cleaned up by Teardown or when the workspace is removed`)),
        Math.max(0, longDeadline - Date.now()),
      );
    });
    try {
      return await Promise.race([p, deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  async #consume(rpc: RpcName, key: string): Promise<void> {
    const limiter = this.#limiters.get(rpc)!;
    try {
      await limiter.consume(key);
    } catch (err) {
      if (err instanceof RateLimiterRes) {
        this.#metrics?.rateLimited.inc({ rpc });
        const seconds = Math.ceil(err.msBeforeNext / 1000);
        throw new IwsError(
          'RESOURCE_EXHAUSTED',
          `${rpc} is limited to ${limiter.points} calls per ${limiter.duration}s per workspace; retry in ${seconds}s (retry-after-ms=${err.msBeforeNext})`,
        );
      }
      throw err;
    }
  }

  /**
   * Takes a slot of the workspace's mount limit before the mount is made,
   * so concurrent calls can never overshoot it; throws RESOURCE_EXHAUSTED
   * when none is left.
   */
  reserveMount(ws: GuardedWorkspace): MountReservation {
    const limit = this.#config().limits.mountsPerWorkspace;
    const reserved = this.#reserved.get(ws.id) ?? 0;
    if (ws.mounts.size + reserved >= limit) {
      throw new IwsError(
        'RESOURCE_EXHAUSTED',
        `this workspace already has ${ws.mounts.size} mounts made by iwsd${reserved ? ` and ${reserved} being made` : ''} (limit ${limit}); unmount some first`,
      );
    }
    this.#reserved.set(ws.id, reserved + 1);
    let done = false;
    const free = () => {
      if (done) return;
      done = true;
      const n = (this.#reserved.get(ws.id) ?? 1) - 1;
      if (n > 0) this.#reserved.set(ws.id, n);
      else this.#reserved.delete(ws.id);
    };
    return { commit: free, release: free };
  }

  /**
   * Uses a one-shot RPC's shot: throws RESOURCE_EXHAUSTED if it was used,
   * else marks it used and `persist`s that before any work (a failed call
   * still uses it). Synchronous: two concurrent calls cannot both take it.
   */
  takeShot<S extends { prepared: boolean; tornDown: boolean }>(
    ws: { state: S },
    flag: 'prepared' | 'tornDown',
    rpc: string,
    persist: (state: S) => void,
  ): void {
    if (ws.state[flag]) throw new IwsError('RESOURCE_EXHAUSTED', `${rpc} can be called once per workspace, and it has been`);
    ws.state = { ...ws.state, [flag]: true };
    persist(ws.state);
  }

  /** Forgets a removed workspace (its limiter keys and reservations). */
  async forget(workspaceId: string): Promise<void> {
    this.#reserved.delete(workspaceId);
    await Promise.all([...this.#limiters.values()].map((l) => l.delete(workspaceId)));
  }
}
