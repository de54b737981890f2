/**
 * iws.InWorkspaceService as plain code: one class per workspace with one
 * method per RPC (authorise, rate-limit, call the native library), and a thin
 * adapter that wires it to grpc-js through the single error boundary.
 */
import * as grpc from '@grpc/grpc-js';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';

import { IwsError, toIwsError } from './errors.js';
import type { Logger } from './log.js';
import type { Metrics } from './observability.js';
import * as native from './native.js';
import { storeWriteFailed, type MountEvent, type StateStore } from './state.js';
import type { MountKind, Workspace } from './workspace.js';
import type { FSShiftMethod } from './gen/iws/FSShiftMethod.js';
import type { PrepareForUserNSResponse } from './gen/iws/PrepareForUserNSResponse.js';
import type { TeardownResponse } from './gen/iws/TeardownResponse.js';
import type { MountProcRequest__Output } from './gen/iws/MountProcRequest.js';
import type { UmountProcRequest__Output } from './gen/iws/UmountProcRequest.js';
import type { InWorkspaceServiceHandlers } from './gen/iws/InWorkspaceService.js';
import type { WriteIDMappingRequest__Output } from './gen/iws/WriteIDMappingRequest.js';
import type { WriteIDMappingResponse } from './gen/iws/WriteIDMappingResponse.js';

export interface ServiceDeps {
  log: Logger;
  metrics?: Metrics;
  store: StateStore;
  /** The configured shift method and where a workspace's FUSE dirs live. */
  shiftMethod: 'auto' | 'idmapped' | 'fuse' | 'shiftfs';
  fuseOptions: (workspaceId: string) => native.FuseOptions;
  pidStrategy: 'ioctl' | 'scan';
  mountStrategy: 'detached' | 'fallback';
  proc: native.Masks;
  sysfs: { readOnly: boolean; masks: native.Masks };
  mountsPerWorkspace: number;
  /** Shared across workspaces; keyed by workspace id. */
  writeIdMappingLimiter: RateLimiterMemory;
}

export function createWriteIdMappingLimiter(points: number, durationSeconds: number): RateLimiterMemory {
  return new RateLimiterMemory({ keyPrefix: 'WriteIDMapping', points, duration: durationSeconds });
}

/** Consumes one point for `key`, or throws RESOURCE_EXHAUSTED with the delay. */
async function consume(limiter: RateLimiterMemory, key: string, rpc: string, metrics?: Metrics): Promise<void> {
  try {
    await limiter.consume(key);
  } catch (err) {
    if (err instanceof RateLimiterRes) {
      metrics?.rateLimited.inc({ rpc });
      const seconds = Math.ceil(err.msBeforeNext / 1000);
      throw new IwsError(
        'RESOURCE_EXHAUSTED',
        `${rpc} is limited to ${limiter.points} calls per ${limiter.duration}s per workspace; retry in ${seconds}s (retry-after-ms=${err.msBeforeNext})`,
      );
    }
    throw err;
  }
}

export class WorkspaceService {
  constructor(
    readonly workspace: Workspace,
    private readonly deps: ServiceDeps,
  ) {}

  async writeIdMapping(req: WriteIDMappingRequest__Output): Promise<WriteIDMappingResponse> {
    await consume(this.deps.writeIdMappingLimiter, this.workspace.id, 'WriteIDMapping', this.deps.metrics);
    const res = await native.writeIdMapping(this.workspace.container, {
      pid: req.pid,
      gid: req.gid,
      mappings: req.mapping.map((m) => ({ containerId: m.containerId, hostId: m.hostId, size: m.size })),
      policy: this.workspace.policy,
      pidStrategy: this.deps.pidStrategy,
    });
    return { message: res.message, errorCode: 0 };
  }

  async mount(kind: MountKind, req: MountProcRequest__Output): Promise<Record<string, never>> {
    const { mounts } = this.workspace;
    if (mounts.size >= this.deps.mountsPerWorkspace) {
      throw new IwsError(
        'RESOURCE_EXHAUSTED',
        `this workspace already has ${mounts.size} mounts made by iwsd (limit ${this.deps.mountsPerWorkspace}); unmount some first`,
      );
    }
    const common = {
      pid: req.pid,
      target: req.target,
      pidStrategy: this.deps.pidStrategy,
      mountStrategy: this.deps.mountStrategy,
    };
    const { mountId } =
      kind === 'proc'
        ? await native.mountProc(this.workspace.container, { ...common, masks: this.deps.proc })
        : await native.mountSysfs(this.workspace.container, { ...common, ...this.deps.sysfs });
    const record = { kind, target: req.target, pid: req.pid };
    const before = this.workspace.state;
    mounts.set(mountId, record);
    try {
      this.#recordMounts({ add: { mountId, ...record } });
    } catch (err) {
      // Unrecorded, the mount could not be unmounted after a restart: undo it.
      mounts.delete(mountId);
      this.workspace.state = before;
      const undone = await native
        .umount(this.workspace.container, { pid: req.pid, target: req.target, owned: [mountId], pidStrategy: this.deps.pidStrategy })
        .then(
          () => true,
          (e: unknown) => {
            this.deps.log.error({ mountId, target: req.target, error: (e as Error).message }, `could not undo unrecorded ${kind} mount ${mountId}`);
            return false;
          },
        );
      throw storeWriteFailed(err, undone ? `the ${kind} mount was not recorded and has been undone` : `the ${kind} mount was not recorded and could not be undone`);
    }
    return {};
  }

  /**
   * Records a change to the mounts iwsd made (before the RPC answers), so they
   * stay unmountable after a daemon restart.
   */
  #recordMounts(event: MountEvent): void {
    const w = this.workspace;
    w.state = { ...w.state, mounts: [...w.mounts].map(([mountId, m]) => ({ mountId, ...m })) };
    this.deps.store.recordMount(w.state, event);
  }

  /**
   * One-shot: makes the container's root shared and mounts the ID-shifted
   * mark. The shot is used (and persisted) before any work, so a failed call
   * still uses it.
   */
  async prepareForUserNS(): Promise<PrepareForUserNSResponse> {
    const w = this.workspace;
    this.#useShot('prepared', 'PrepareForUserNS');
    const mark = await native.prepareShiftMark(w.container, {
      markPath: w.markPath,
      shift: w.shift,
      policy: w.policy,
      method: this.deps.shiftMethod,
      fuse: this.deps.fuseOptions(w.id),
    });
    const before = w.state;
    w.state = {
      ...w.state,
      mark: { method: mark.method as 'idmapped' | 'fuse' | 'shiftfs', mountId: mark.mountId, fusePid: mark.fusePid ?? null, markPath: w.markPath, shift: w.shift },
    };
    try {
      this.deps.store.save(w.state);
    } catch (err) {
      // Unrecorded, the mark (and a FUSE helper) would outlive a restart: undo it.
      const r = await this.removeMark();
      w.state = before;
      if (!r.success) this.deps.log.error({ problems: r.problems }, `could not undo unrecorded mark: ${r.problems.join('; ')}`);
      throw storeWriteFailed(err, r.success ? 'the mark was not recorded and has been undone' : 'the mark was not recorded and could not be undone');
    }
    return { fsShift: SHIFT_METHODS[mark.method as 'idmapped' | 'fuse' | 'shiftfs'], fullWorkspaceBackup: w.fullWorkspaceBackup };
  }

  /**
   * One-shot: unmounts the mark, stops a FUSE helper, releases the user
   * namespace. `success` only when everything was cleaned.
   */
  async teardown(): Promise<TeardownResponse> {
    this.#useShot('tornDown', 'Teardown');
    const r = await this.removeMark();
    if (r.success) {
      this.workspace.state = { ...this.workspace.state, mark: null };
      try {
        this.deps.store.save(this.workspace.state);
      } catch (err) {
        // The mark is gone; a stale record only makes a later removal find nothing.
        this.deps.log.warn({ error: (err as Error).message }, 'Teardown not recorded');
      }
    } else {
      this.deps.log.warn({ rpc: 'Teardown', problems: r.problems }, `Teardown incomplete: ${r.problems.join('; ')}`);
    }
    return { success: r.success };
  }

  /**
   * Uses a one-shot RPC's shot, persisted before any work (so a failed call
   * still uses it), or throws RESOURCE_EXHAUSTED if it was used.
   */
  #useShot(flag: 'prepared' | 'tornDown', rpc: string): void {
    const w = this.workspace;
    if (w.state[flag]) throw new IwsError('RESOURCE_EXHAUSTED', `${rpc} can be called once per workspace, and it has been`);
    w.state = { ...w.state, [flag]: true };
    try {
      this.deps.store.save(w.state);
    } catch (err) {
      // The shot stays used in memory (fail closed); nothing was done yet.
      throw storeWriteFailed(err, `${rpc} was not started`);
    }
  }

  /**
   * Removes the mark PrepareForUserNS mounted, if any (unmount, stop a FUSE
   * helper, release the user namespace): for Teardown, and for the daemon
   * when it disposes of a workspace whose Teardown never ran or failed.
   */
  async removeMark(): Promise<native.RemoveMarkResult> {
    const w = this.workspace;
    const mark = w.state.mark;
    if (!mark) return { success: true, problems: [] };
    return native.removeShiftMark(w.container, {
      markPath: mark.markPath,
      mark: { method: mark.method, mountId: mark.mountId, fusePid: mark.fusePid ?? undefined },
      shift: mark.shift,
      fuse: this.deps.fuseOptions(w.id),
      pidStrategy: this.deps.pidStrategy,
    });
  }

  async umount(kind: MountKind, req: UmountProcRequest__Output): Promise<Record<string, never>> {
    const owned = [...this.workspace.mounts].filter(([, m]) => m.kind === kind).map(([id]) => id);
    const { mountId } = await native.umount(this.workspace.container, {
      pid: req.pid,
      target: req.target,
      owned,
      pidStrategy: this.deps.pidStrategy,
    });
    this.workspace.mounts.delete(mountId);
    try {
      this.#recordMounts({ del: mountId });
    } catch (err) {
      // The mount is gone; a stale record of it is harmless (unique mount ids
      // are never reused), so the unmount still succeeds.
      this.deps.log.warn({ mountId, error: (err as Error).message }, `unmount of ${mountId} not recorded`);
    }
    return {};
  }
}

const SHIFT_METHODS: Record<'idmapped' | 'fuse' | 'shiftfs', FSShiftMethod> = {
  idmapped: 'IDMAPPED',
  fuse: 'FUSE',
  shiftfs: 'SHIFTFS',
};

/** What a call on a workspace socket runs against: its workspace and its verified caller. */
export interface CallContext {
  service: WorkspaceService;
  log: Logger;
}
export type ContextOf = (call: { getPeer(): string }) => { peer: native.Peer; context: CallContext } | undefined;

/**
 * The single error boundary: runs `fn` for the call's workspace, logs one
 * audit record, and answers either the result or a gRPC status derived from
 * the error's code. INTERNAL errors carry a generic message; their detail
 * goes to the log only.
 */
function unary<Req, Res>(
  rpc: string,
  contextOf: ContextOf,
  fn: (service: WorkspaceService, req: Req) => Promise<Res>,
  metrics?: Metrics,
): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    const started = process.hrtime.bigint();
    const req = call.request;
    const conn = contextOf(call);
    if (!conn) {
      // Its connection closed (the workspace was removed) while the call was queued.
      callback({ code: grpc.status.UNAVAILABLE, details: 'this connection is no longer served: its workspace was removed' }, null);
      return;
    }
    const { log, service } = conn.context;
    const peer = { pid: conn.peer.pid, uid: conn.peer.uid };
    fn(service, req).then(
      (res) => {
        const ms = Number(process.hrtime.bigint() - started) / 1e6;
        metrics?.observe(rpc, 'OK', ms / 1000);
        log.info({ rpc, peer, request: req, result: 'OK', durationMs: ms }, `${rpc} ok`);
        callback(null, res);
      },
      (thrown: unknown) => {
        const err = toIwsError(thrown);
        const ms = Number(process.hrtime.bigint() - started) / 1e6;
        metrics?.observe(rpc, err.code, ms / 1000);
        const rec = { rpc, peer, request: req, result: err.code, error: err.message, detail: err.detail, durationMs: ms };
        if (err.code === 'INTERNAL') log.error({ ...rec, cause: err.cause }, `${rpc} failed: ${err.detail ?? err.message}`);
        else log.info(rec, `${rpc} refused: ${err.code}`);
        callback({ code: err.grpcStatus, details: err.message }, null);
      },
    );
  };
}

/** gRPC handlers of the one server behind every workspace socket. */
export function workspaceHandlers(contextOf: ContextOf, metrics?: Metrics): InWorkspaceServiceHandlers {
  return {
    WriteIDMapping: unary('WriteIDMapping', contextOf, (s, req) => s.writeIdMapping(req), metrics),
    PrepareForUserNS: unary('PrepareForUserNS', contextOf, (s) => s.prepareForUserNS(), metrics),
    MountProc: unary('MountProc', contextOf, (s, req) => s.mount('proc', req), metrics),
    UmountProc: unary('UmountProc', contextOf, (s, req) => s.umount('proc', req), metrics),
    MountSysfs: unary('MountSysfs', contextOf, (s, req) => s.mount('sysfs', req), metrics),
    UmountSysfs: unary('UmountSysfs', contextOf, (s, req) => s.umount('sysfs', req), metrics),
    Teardown: unary('Teardown', contextOf, (s) => s.teardown(), metrics),
  } satisfies InWorkspaceServiceHandlers;
}
