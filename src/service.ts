/**
 * iws.InWorkspaceService as plain code: one class per workspace with one
 * method per RPC (authorise, rate-limit, call the native library), and a thin
 * adapter that wires it to grpc-js through the single error boundary.
 */
import { IwsError } from './errors.js';
import type { Logger } from './log.js';
import type { Metrics } from './observability.js';
import * as native from './native.js';
import { Boundary, annotateCall, auditUnimplemented, deadlineOf } from './rpc.js';
import type { Caller, RpcGuard, RpcName } from './rpcGuard.js';
import { storeWriteFailed, type MountEvent, type StateStore } from './state.js';
import type { MountKind, Workspace } from './workspace.js';
import { acceptedShiftMethods, shiftAnswer, type IdmappedAnswer } from './fsShift.js';
import type { PrepareForUserNSResponse } from './gen/iws/PrepareForUserNSResponse.js';
import type { TeardownResponse } from './gen/iws/TeardownResponse.js';
import type { MountProcRequest__Output } from './gen/iws/MountProcRequest.js';
import type { UmountProcRequest__Output } from './gen/iws/UmountProcRequest.js';
import type { InWorkspaceServiceHandlers } from './gen/iws/InWorkspaceService.js';
import type { WriteIDMappingRequest__Output } from './gen/iws/WriteIDMappingRequest.js';
import type { WriteIDMappingResponse } from './gen/iws/WriteIDMappingResponse.js';
import type { WorkspaceInfoServiceHandlers } from './gen/iws/WorkspaceInfoService.js';
import type { WorkspaceInfoResponse } from './gen/iws/WorkspaceInfoResponse.js';
import type { WipingTeardownRequest__Output } from './gen/iws/WipingTeardownRequest.js';
import type { WipingTeardownResponse } from './gen/iws/WipingTeardownResponse.js';
import type { SetupPairVethsRequest__Output } from './gen/iws/SetupPairVethsRequest.js';
import type { MountNfsRequest__Output } from './gen/iws/MountNfsRequest.js';
import type { UmountNfsRequest__Output } from './gen/iws/UmountNfsRequest.js';
import type * as grpc from '@grpc/grpc-js';
import { workspaceInfo, type CpuSample } from './resources.js';

/**
 * The native calls a workspace's RPCs make: the native library in the
 * daemon, a fake in unit tests (__test__/guard.test.ts).
 */
/** How long a mount call may wait on a workspace's FUSE mark (see #fuseMark). */
export const FUSE_MARK_DEADLINE_MS = 10_000;

export type NativeOps = Pick<
  typeof native,
  | 'writeIdMapping'
  | 'mountProc'
  | 'mountSysfs'
  | 'mountNfs'
  | 'umount'
  | 'prepareForUserNs'
  | 'teardown'
  | 'removeShiftMark'
  | 'authorizeLifecycle'
  | 'readCgroupResources'
  | 'evacuateCgroup'
  | 'setupPairVeths'
>;

/** A one-shot RPC's shot, taken and persisted; `decide` runs the call's native work and gives the shot back if that refused the caller before any work. */
interface Shot {
  decide<T>(work: () => Promise<native.Lifecycle<T>>): Promise<T>;
}

export interface ServiceDeps {
  log: Logger;
  metrics?: Metrics | undefined;
  /** Where state changes are recorded (a journal line each; see src/state.ts). */
  store: Pick<StateStore, 'record'>;
  /** The native library (or a fake). */
  native: NativeOps;
  /** Every TypeScript-side check: rate limits, lanes, the mount quota, one-shots. */
  guard: RpcGuard;
  /** The configured shift method and where a workspace's FUSE dirs live. */
  shiftMethod: native.ShiftMethodChoice;
  /** What an idmapped mark is answered as to a client that does not say it knows IDMAPPED (config shift.idmappedAnswer). */
  idmappedAnswer: IdmappedAnswer;
  fuseOptions: (workspaceId: string) => native.FuseOptions;
  pidStrategy: native.ResolvedPidStrategy;
  mountStrategy: native.ResolvedMountStrategy;
  /** SetupPairVeths' network (config network.workspaceCidr); Gitpod's 10.0.5.0/30 when absent. */
  workspaceCidr?: string;
  /** The masks of every MountProc, and MountSysfs' (made once: native.maskSet). */
  proc: native.MaskSet;
  sysfs: { readOnly: boolean; masks: native.MaskSet };
  /** Who may call PrepareForUserNS and Teardown (config authz.lifecycle). */
  lifecycleRule: native.LifecycleRule;
  /** Make /dev/fuse and /dev/net/tun at PrepareForUserNS (config devices.create). */
  devices?: boolean;
}

export class WorkspaceService {
  /** The CPU sample of the previous WorkspaceInfo call (see src/resources.ts). */
  #cpu: CpuSample | undefined;

  constructor(
    readonly workspace: Workspace,
    private readonly deps: ServiceDeps,
  ) {}

  /**
   * Runs one RPC's work for `caller` behind the guard (authorization, rate
   * limit, a fair native slot, a deadline for long calls).
   */
  run<T>(rpc: RpcName, caller: Caller, fn: () => Promise<T>, callDeadline?: number): Promise<T> {
    return this.deps.guard.run(rpc, this.workspace.id, caller, fn, callDeadline);
  }

  async writeIdMapping(req: WriteIDMappingRequest__Output, caller: Caller): Promise<WriteIDMappingResponse> {
    const res = await this.deps.native.writeIdMapping(this.workspace.container, caller, {
      pid: req.pid,
      gid: req.gid,
      mappings: req.mapping.map((m) => ({ containerId: m.containerId, hostId: m.hostId, size: m.size })),
      policy: this.workspace.policy,
      pidStrategy: this.deps.pidStrategy,
    });
    return { message: res.message, errorCode: 0 };
  }

  async mount(kind: MountKind, req: MountProcRequest__Output & { source?: string; args?: string }, caller: Caller): Promise<Record<string, never>> {
    const { mounts } = this.workspace;
    // Taken before the native call, so concurrent calls never overshoot the limit.
    const slot = this.deps.guard.reserveMount(this.workspace);
    const common = {
      pid: req.pid,
      target: req.target,
      pidStrategy: this.deps.pidStrategy,
      mountStrategy: this.deps.mountStrategy,
      fuseMark: this.#fuseMark(),
    };
    let mountId: string;
    let madeFor: native.MountOwner | undefined;
    try {
      ({ mountId, madeFor } =
        kind === 'proc'
          ? await this.deps.native.mountProc(this.workspace.container, caller, common, this.deps.proc)
          : kind === 'nfs'
            ? await this.#nfs(caller, { ...common, source: req.source ?? '', args: req.args ?? '' })
            : await this.deps.native.mountSysfs(this.workspace.container, caller, { ...common, readOnly: this.deps.sysfs.readOnly }, this.deps.sysfs.masks));
    } catch (err) {
      slot.release();
      throw err;
    }
    // Counted in `mounts` from here on (also if recording fails below: the undo removes it again).
    slot.commit();
    const record = { kind, target: req.target, pid: req.pid, madeFor };
    mounts.set(mountId, record);
    try {
      this.#recordMounts({ add: { mountId, ...record } });
    } catch (err) {
      // Unrecorded, the mount could not be unmounted after a restart: undo it
      // (#recordMounts took it out of the state again).
      mounts.delete(mountId);
      const undone = await this.deps.native
        .umount(this.workspace.container, caller, { pid: req.pid, target: req.target, owned: [{ mountId, madeFor }], pidStrategy: this.deps.pidStrategy, fuseMark: this.#fuseMark() })
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
    // The state's mounts array follows `workspace.mounts` by one change per
    // event, in place (no copy of every mount per call): it is what the
    // store writes when the journal is compacted into a snapshot, and what
    // any later record of the state (the mark, a one-shot) carries.
    const list = this.workspace.state.mounts;
    if ('add' in event) {
      list.push(event.add);
      try {
        this.deps.store.record(this.workspace.state, event);
      } catch (err) {
        // Not recorded: the caller undoes the mount, so the state forgets it too.
        const i = list.lastIndexOf(event.add);
        if (i >= 0) list.splice(i, 1);
        throw err;
      }
      return;
    }
    // The mount is gone whether or not the record below is written.
    for (let i = list.length - 1; i >= 0; i--) {
      if (list[i]!.mountId === event.del) {
        list.splice(i, 1);
        break;
      }
    }
    this.deps.store.record(this.workspace.state, event);
  }

  /**
   * One-shot: makes the container's root shared, mounts the ID-shifted mark
   * and (config devices.create) makes the device nodes, in one native call
   * that authorizes the caller first. The shot is used (and persisted)
   * before any work, so a failed call still uses it; a call refused before
   * any work gives it back.
   */
  async prepareForUserNS(
    caller: Caller,
    opts: { accepts?: ReadonlySet<string>; note?: (fields: Record<string, unknown>, text: string) => void } = {},
  ): Promise<PrepareForUserNSResponse> {
    const w = this.workspace;
    const shot = await this.#takeShot('prepared', 'PrepareForUserNS');
    // A mark removal (Teardown, WipingTeardown, disposal) waits for this
    // call, as Gitpod's serializes with it: one arriving meanwhile would
    // find no mark yet and leave the one being mounted.
    const run = this.#prepare(w, caller, shot, opts);
    this.#preparing = run.catch(() => undefined);
    try {
      return await run;
    } finally {
      this.#preparing = undefined;
    }
  }

  #preparing: Promise<unknown> | undefined;

  /**
   * The workspace's FUSE mark, if it has one: a mount call that walks
   * through it (e.g. onto <mark>/proc) and gets no answer within
   * FUSE_MARK_DEADLINE_MS aborts its FUSE connection and fails, instead of
   * blocking a pool thread on a stuck server.
   */
  #fuseMark(): native.FuseMark | undefined {
    const pid = this.workspace.state.mark?.fusePid;
    if (!pid) return undefined;
    return { pid, staging: this.deps.fuseOptions(this.workspace.id).staging, deadlineMs: FUSE_MARK_DEADLINE_MS };
  }

  async #prepare(
    w: Workspace,
    caller: Caller,
    shot: Shot,
    opts: { accepts?: ReadonlySet<string>; note?: (fields: Record<string, unknown>, text: string) => void },
  ): Promise<PrepareForUserNSResponse> {
    const out = await shot.decide(() =>
      this.deps.native.prepareForUserNs(w.container, caller, {
        rule: this.deps.lifecycleRule,
        markPath: w.markPath,
        shift: w.shift,
        policy: w.policy,
        method: this.deps.shiftMethod,
        fuse: this.deps.fuseOptions(w.id),
        devices: this.deps.devices ?? false,
      }),
    );
    const { mark } = out;
    this.#logDevices(out);
    const before = w.state;
    w.state = {
      ...w.state,
      mark: { method: mark.method, mountId: mark.mountId, fusePid: mark.fusePid ?? null, markPath: w.markPath, shift: w.shift },
    };
    try {
      this.deps.store.record(w.state, { set: { mark: w.state.mark } });
    } catch (err) {
      // Unrecorded, the mark (and a FUSE helper) would outlive a restart: undo it.
      const r = await this.#removeAsDaemon();
      w.state = before;
      if (!r.success) this.deps.log.error({ problems: r.problems }, `could not undo unrecorded mark: ${r.problems.join('; ')}`);
      throw storeWriteFailed(err, r.success ? 'the mark was not recorded and has been undone' : 'the mark was not recorded and could not be undone');
    }
    // The mark above is the daemon's choice; what the client sent only picks its label (see fsShift.ts).
    const { answered, why } = shiftAnswer(mark.method, opts.accepts ?? new Set(), this.deps.idmappedAnswer);
    opts.note?.({ fsShift: { mark: mark.method, answered, why } }, `mark ${mark.method}, answered fs_shift ${answered}`);
    return { fsShift: answered, fullWorkspaceBackup: w.fullWorkspaceBackup, persistentVolumeClaim: w.persistentVolumeClaim };
  }

  /**
   * One-shot: unmounts the mark, stops a FUSE helper, releases the user
   * namespace, in one native call that authorizes the caller first.
   * `success` only when everything was cleaned.
   */
  async teardown(caller: Caller): Promise<TeardownResponse> {
    const shot = await this.#takeShot('tornDown', 'Teardown');
    const r = await shot.decide(() => this.#removal(caller));
    if (r.success) {
      try {
        this.deps.store.record(this.workspace.state, { set: { mark: null } });
      } catch (err) {
        // The mark is gone; a stale record only makes a later removal find nothing.
        this.deps.log.warn({ error: (err as Error).message }, 'Teardown not recorded');
      }
    } else {
      this.deps.log.warn({ rpc: 'Teardown', problems: r.problems }, `Teardown incomplete: ${r.problems.join('; ')}`);
    }
    return { success: r.success };
  }

  /** A one-shot RPC's shot not yet decided on, per flag (see #takeShot). */
  #undecided: Partial<Record<'prepared' | 'tornDown', Promise<void>>> = {};

  /**
   * Uses a one-shot RPC's shot, persisted before any work (so a failed call
   * still uses it), or throws RESOURCE_EXHAUSTED if it was used. The shot
   * is given back if the call's native work refuses the caller before doing
   * anything (`decide`): an unauthorized caller cannot use it up for the
   * workspace. A call arriving while another's shot is undecided waits for
   * that decision, so such a caller cannot make the rightful one's
   * concurrent call fail either.
   */
  async #takeShot(flag: 'prepared' | 'tornDown', rpc: string): Promise<Shot> {
    for (let pending = this.#undecided[flag]; pending; pending = this.#undecided[flag]) await pending;
    this.deps.guard.takeShot(this.workspace, flag, rpc, (state) => {
      try {
        this.deps.store.record(state, { set: { [flag]: true } });
      } catch (err) {
        // The shot stays used in memory (fail closed); nothing was done yet.
        throw storeWriteFailed(err, `${rpc} was not started`);
      }
    });
    let settle!: () => void;
    const decided = new Promise<void>((resolve) => (settle = resolve));
    this.#undecided[flag] = decided;
    const done = (): void => {
      if (this.#undecided[flag] === decided) delete this.#undecided[flag];
      settle();
    };
    const giveBack = (refusal: IwsError): void => {
      const w = this.workspace;
      try {
        w.state = { ...w.state, [flag]: false };
        this.deps.store.record(w.state, { set: { [flag]: false } });
      } catch (err) {
        // Unrecorded, a restart would find the shot used: keep it used (fail closed).
        w.state = { ...w.state, [flag]: true };
        this.deps.log.warn({ rpc, error: (err as Error).message }, `${rpc} was refused (${refusal.message}) and its one shot could not be given back`);
      }
    };
    return {
      decide: async <T>(work: () => Promise<native.Lifecycle<T>>): Promise<T> => {
        try {
          const out = await work();
          if ('refused' in out) {
            giveBack(out.refused);
            throw out.refused;
          }
          return out.done;
        } finally {
          done();
        }
      },
    };
  }

  /**
   * Removes the mark PrepareForUserNS mounted, if any (unmount, stop a FUSE
   * helper, release the user namespace), as the daemon: for WipingTeardown
   * (authorized before) and for the daemon when it disposes of a workspace
   * whose Teardown never ran or failed.
   */
  async removeMark(): Promise<native.RemoveMarkResult> {
    for (;;) {
      const current = this.#removing;
      if (!current) {
        const out = await this.#removal(undefined);
        if ('refused' in out) throw out.refused; // not without a caller to refuse
        return out.done;
      }
      const out = await current.run;
      // A Teardown's removal refused its caller and removed nothing: this one's own then.
      if ('refused' in out) continue;
      return out.done;
    }
  }

  /**
   * One removal at a time: a Teardown and the daemon's disposal (admin rm,
   * container exit) racing each other share it, so the mark is never removed
   * twice (a second release of a shared user namespace would take another
   * workspace's reference). With `caller` (Teardown), the native call
   * authorizes it first; a removal already under way (the daemon's) is
   * shared once the caller is authorized on its own.
   */
  async #removal(caller: Caller | undefined): Promise<native.Lifecycle<native.RemoveMarkResult>> {
    const current = this.#removing;
    if (current) {
      if (caller) {
        try {
          await this.deps.native.authorizeLifecycle(this.workspace.container, caller, this.deps.lifecycleRule);
        } catch (err) {
          return { refused: err as IwsError };
        }
      }
      return current.run;
    }
    const run = (async () => {
      await this.#preparing;
      return this.#removeMark(caller);
    })();
    const entry = { run };
    this.#removing = entry;
    try {
      return await run;
    } finally {
      if (this.#removing === entry) this.#removing = undefined;
    }
  }

  #removing: { run: Promise<native.Lifecycle<native.RemoveMarkResult>> } | undefined;

  /** The undo of a mark that could not be recorded: the daemon's own removal. */
  async #removeAsDaemon(): Promise<native.RemoveMarkResult> {
    const out = await this.#removeMark(undefined);
    return 'refused' in out ? { success: false, problems: [out.refused.message] } : out.done;
  }

  async #removeMark(caller: Caller | undefined): Promise<native.Lifecycle<native.RemoveMarkResult>> {
    const w = this.workspace;
    const mark = w.state.mark;
    const fuse = this.deps.fuseOptions(w.id);
    const info = mark ? { method: mark.method, mountId: mark.mountId, fusePid: mark.fusePid ?? undefined } : undefined;
    let out: native.Lifecycle<native.RemoveMarkResult>;
    if (caller) {
      out = await this.deps.native.teardown(w.container, caller, {
        rule: this.deps.lifecycleRule,
        markPath: mark?.markPath ?? w.markPath,
        mark: info,
        shift: mark?.shift ?? w.shift,
        fuse,
        pidStrategy: this.deps.pidStrategy,
      });
      if ('refused' in out) return out;
    } else if (mark && info) {
      out = { done: await this.deps.native.removeShiftMark(w.container, { markPath: mark.markPath, mark: info, shift: mark.shift, fuse, pidStrategy: this.deps.pidStrategy }) };
    } else {
      return { done: { success: true, problems: [] } };
    }
    if (out.done.success) w.state = { ...w.state, mark: null };
    return out;
  }

  async umount(kind: MountKind, req: UmountProcRequest__Output, caller: Caller): Promise<Record<string, never>> {
    const owned = [...this.workspace.mounts].filter(([, m]) => m.kind === kind).map(([mountId, m]) => ({ mountId, madeFor: m.madeFor }));
    const { mountId } = await this.deps.native.umount(this.workspace.container, caller, {
      pid: req.pid,
      target: req.target,
      owned,
      pidStrategy: this.deps.pidStrategy,
      fuseMark: this.#fuseMark(),
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

  // RPCs Gitpod added to the contract. Skeleton: each is implemented in its own commit.
  /**
   * Gitpod's best-effort retry of Teardown: with `doWipe`, removes the mark
   * if one is still there (unmount, FUSE helper, user namespace; nothing
   * there is success); without it, does nothing and succeeds. Authorized as
   * Teardown (authz.lifecycle); not one-shot (rate-limited instead) and it
   * leaves Teardown's shot alone: Gitpod calls it after a Teardown that may
   * have failed. PrepareForUserNS stays one-shot whatever it removed.
   */
  async wipingTeardown(req: WipingTeardownRequest__Output, caller: Caller): Promise<WipingTeardownResponse> {
    await this.deps.native.authorizeLifecycle(this.workspace.container, caller, this.deps.lifecycleRule);
    if (!req.doWipe) return { success: true };
    const had = this.workspace.state.mark !== null;
    const r = await this.removeMark();
    if (!r.success) {
      this.deps.log.warn({ rpc: 'WipingTeardown', problems: r.problems }, `WipingTeardown incomplete: ${r.problems.join('; ')}`);
    } else if (had) {
      try {
        this.deps.store.record(this.workspace.state, { set: { mark: null } });
      } catch (err) {
        this.deps.log.warn({ error: (err as Error).message }, 'WipingTeardown not recorded');
      }
    }
    return { success: r.success };
  }

  /**
   * Gitpod's EvacuateCGroup: on cgroup v2 the workspace's processes move to
   * `<container cgroup>/workspace/user` (controllers enabled above it); on
   * v1 nothing is done and the call succeeds, as Gitpod's.
   */
  async evacuateCGroup(caller: Caller): Promise<Record<string, never>> {
    const r = await this.deps.native.evacuateCgroup(this.workspace.container, caller, this.deps.lifecycleRule);
    const fields = { rpc: 'EvacuateCGroup', unified: r.unified, cgroup: r.cgroup, moved: r.moved, controllers: r.controllers, problems: r.problems };
    if (r.problems.length) this.deps.log.warn(fields, `EvacuateCGroup incomplete: ${r.problems.join('; ')}`);
    else this.deps.log.info(fields, r.unified ? `EvacuateCGroup moved ${r.moved} processes to ${r.cgroup}/workspace/user` : 'EvacuateCGroup: no cgroup v2 for the container, nothing to do');
    return {};
  }

  /**
   * /dev/fuse and /dev/net/tun in the container, as Gitpod's ws-daemon made
   * them at PrepareForUserNS: what was done is logged. A node that could not
   * be made does not fail the call (Gitpod's clients check for the devices
   * themselves).
   */
  #logDevices(out: native.PreparedInfo): void {
    if (out.devicesError !== undefined && out.devicesError !== null) {
      this.deps.log.warn({ rpc: 'PrepareForUserNS', error: out.devicesError }, `devices not made: ${out.devicesError}`);
      return;
    }
    const r = out.devices;
    if (!r) return;
    const refused = r.devices.filter((d) => d.state === 'refused' || d.detail);
    const fields = { rpc: 'PrepareForUserNS', devices: r.devices, devicesCgroup: r.cgroup };
    if (refused.length) this.deps.log.warn(fields, `devices not made: ${refused.map((d) => `${d.path}: ${d.detail}`).join('; ')}`);
    else this.deps.log.info(fields, `devices: ${r.devices.map((d) => `${d.path} ${d.state}`).join(', ')}; ${r.cgroup}`);
  }

  /**
   * A veth pair between the container's network namespace (veth0) and that
   * of `req.pid` (eth0), addressed from network.workspaceCidr (core: netns.rs).
   */
  async setupPairVeths(req: SetupPairVethsRequest__Output, caller: Caller): Promise<Record<string, never>> {
    const r = await this.deps.native.setupPairVeths(this.workspace.container, caller, { pid: req.pid, workspaceCidr: this.deps.workspaceCidr ?? '10.0.5.0/30', pidStrategy: this.deps.pidStrategy });
    this.deps.log.info({ pid: req.pid, containerIf: r.containerIf, peerIf: r.peerIf, containerAddr: r.containerAddr, peerAddr: r.peerAddr, prefix: r.prefix }, `veth pair ${r.containerIf} (${r.containerAddr}/${r.prefix}) <-> ${r.peerIf} (${r.peerAddr}/${r.prefix}) for pid ${req.pid}`);
    return {};
  }

  /** An NFS mount, counted and recorded like proc/sysfs (core: nfs.rs). */
  async mountNfs(req: MountNfsRequest__Output, caller: Caller): Promise<Record<string, never>> {
    return this.mount('nfs', req, caller);
  }

  /** Unmounts an NFS mount iwsd made for this workspace (as UmountProc). */
  async umountNfs(req: UmountNfsRequest__Output, caller: Caller): Promise<Record<string, never>> {
    return this.umount('nfs', req, caller);
  }

  #nfs(caller: Caller, options: native.MountNfsOptions): Promise<native.MountResult> {
    return this.deps.native.mountNfs(this.workspace.container, caller, options);
  }

  /** CPU and memory of the container's own cgroups, in Gitpod's units (src/resources.ts). */
  async workspaceInfo(_caller: Caller): Promise<WorkspaceInfoResponse> {
    const r = await this.deps.native.readCgroupResources(this.workspace.container);
    const { response, sample } = workspaceInfo(r, this.#cpu);
    this.#cpu = sample;
    return response;
  }
}

/** What a call on a workspace socket runs against: its workspace and its verified caller. */
export interface CallContext {
  service: WorkspaceService;
  log: Logger;
}
export type ContextOf = (call: { getPeer(): string }) => { peer: native.Peer; context: CallContext } | undefined;

/** The boundary of the workspace server: each call's scope is its connection's workspace and verified peer. */
export function workspaceBoundary(contextOf: ContextOf, metrics?: Metrics): Boundary<{ service: WorkspaceService; caller: Caller }> {
  return new Boundary({
    server: 'workspace',
    okLevel: 'info',
    metrics,
    scope: (call) => {
      const conn = contextOf(call);
      // Its connection closed (the workspace was removed) while the call was queued.
      if (!conn) return new IwsError('UNAVAILABLE', 'this connection is no longer served: its workspace was removed');
      const { service, log } = conn.context;
      const caller: Caller = { pid: conn.peer.pid, uid: conn.peer.uid, gid: conn.peer.gid, startTime: conn.peer.startTime };
      return { context: { service, caller }, log, audit: { peer: { pid: caller.pid, uid: caller.uid } }, budgetKey: service.workspace.id };
    },
  });
}

/** gRPC handlers of the one server behind every workspace socket; every RPC runs behind the guard. */
export function workspaceHandlers(contextOf: ContextOf, metrics?: Metrics): InWorkspaceServiceHandlers {
  const b = workspaceBoundary(contextOf, metrics);
  const guarded = <Req, Res>(rpc: RpcName, fn: (s: WorkspaceService, req: Req, caller: Caller, call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res>) =>
    b.unary<Req, Res>(rpc, ({ service, caller }, req, call) => service.run(rpc, caller, () => fn(service, req, caller, call), deadlineOf(call)));
  return {
    WriteIDMapping: guarded('WriteIDMapping', (s, req: WriteIDMappingRequest__Output, caller) => s.writeIdMapping(req, caller)),
    PrepareForUserNS: guarded('PrepareForUserNS', (s, _req, caller, call) =>
      s.prepareForUserNS(caller, { accepts: acceptedShiftMethods(call.metadata), note: (fields, text) => annotateCall(call, fields, text) }),
    ),
    MountProc: guarded('MountProc', (s, req: MountProcRequest__Output, caller) => s.mount('proc', req, caller)),
    UmountProc: guarded('UmountProc', (s, req: UmountProcRequest__Output, caller) => s.umount('proc', req, caller)),
    MountSysfs: guarded('MountSysfs', (s, req: MountProcRequest__Output, caller) => s.mount('sysfs', req, caller)),
    UmountSysfs: guarded('UmountSysfs', (s, req: UmountProcRequest__Output, caller) => s.umount('sysfs', req, caller)),
    Teardown: guarded('Teardown', (s, _req, caller) => s.teardown(caller)),
    WipingTeardown: guarded('WipingTeardown', (s, req: WipingTeardownRequest__Output, caller) => s.wipingTeardown(req, caller)),
    EvacuateCGroup: guarded('EvacuateCGroup', (s, _req, caller) => s.evacuateCGroup(caller)),
    SetupPairVeths: guarded('SetupPairVeths', (s, req: SetupPairVethsRequest__Output, caller) => s.setupPairVeths(req, caller)),
    MountNfs: guarded('MountNfs', (s, req: MountNfsRequest__Output, caller) => s.mountNfs(req, caller)),
    UmountNfs: guarded('UmountNfs', (s, req: UmountNfsRequest__Output, caller) => s.umountNfs(req, caller)),
    WorkspaceInfo: guarded('WorkspaceInfo', (s, _req, caller) => s.workspaceInfo(caller)),
  } satisfies InWorkspaceServiceHandlers;
}

/** gRPC handlers of iws.WorkspaceInfoService (Gitpod's supervisor asks it alone), on the same sockets and guard. */
export function workspaceInfoHandlers(contextOf: ContextOf, metrics?: Metrics): WorkspaceInfoServiceHandlers {
  const b = workspaceBoundary(contextOf, metrics);
  return {
    WorkspaceInfo: b.unary<unknown, WorkspaceInfoResponse>('WorkspaceInfo', ({ service, caller }, _req, call) =>
      service.run('WorkspaceInfo', caller, () => service.workspaceInfo(caller), deadlineOf(call)),
    ),
  } satisfies WorkspaceInfoServiceHandlers;
}

/** Makes the workspace server audit (and refuse through the same boundary) every method it does not implement. */
export function auditWorkspaceUnimplemented(server: grpc.Server, contextOf: ContextOf, metrics?: Metrics): void {
  const b = workspaceBoundary(contextOf, metrics);
  auditUnimplemented(server, (path) =>
    b.unary<Buffer, Buffer>(
      path,
      async () => {
        throw new IwsError('UNIMPLEMENTED', `iwsd does not implement ${path} on workspace sockets`);
      },
      'unimplemented',
    ),
  );
}
