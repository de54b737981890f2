/**
 * The native ops library (crates/iws-node), loaded once, with every rejection
 * turned into an IwsError. The generated loader (`native/index.cjs`) is never
 * edited; this is the only module that imports it.
 */
import { createRequire } from 'node:module';

import { IwsError, toIwsError } from './errors.js';
import type * as Binding from '../native/index.cjs';

const require = createRequire(import.meta.url);
const binding = require('../native/index.cjs') as typeof Binding;

export type Container = Binding.Container;
/** One native thread watching every container's init; see crates/iws-core/src/watch.rs. */
export const ExitWatcher = binding.ExitWatcher;
export type ExitWatcher = Binding.ExitWatcher;
export type IdPolicy = Binding.IdPolicy;
export type IdRange = Binding.IdRange;
export type IdMapping = Binding.IdMapping;
export type KernelFeatures = Binding.KernelFeatures;
export type WriteIdMappingOptions = Binding.WriteIdMappingOptions;
export type WriteIdMappingResult = Binding.WriteIdMappingResult;
export type Masks = Binding.Masks;
export type MountProcOptions = Binding.MountProcOptions;
export type FuseMark = Binding.FuseMark;
export type MountSysfsOptions = Binding.MountSysfsOptions;
export type UmountOptions = Binding.UmountOptions;
export type MountResult = Binding.MountResult;
export type FuseOptions = Binding.FuseOptions;
export type MarkInfo = Binding.MarkInfo;
export type PrepareMarkOptions = Binding.PrepareMarkOptions;
export type RemoveMarkOptions = Binding.RemoveMarkOptions;
export type RemoveMarkResult = Binding.RemoveMarkResult;
export type PrepareForUserNsOptions = Binding.PrepareForUserNsOptions;
export type PreparedInfo = Binding.PreparedInfo;
export type TeardownOptions = Binding.TeardownOptions;
export type Peer = Binding.Peer;
export type MountOwner = Binding.MountOwner;
export type OwnedMount = Binding.OwnedMount;
/**
 * Whose authority an operation runs with: the connection's verified peer
 * (the daemon, always), or 'embedder' — the program embedding iwsd/native,
 * which decides itself who may (no per-caller check in the core).
 */
export type Authority = Peer | 'embedder';
const authority = (a: Authority): Peer | null => (a === 'embedder' ? null : a);
/** Who may call PrepareForUserNS and Teardown (config `authz.lifecycle`). */
export type LifecycleRule = Binding.LifecycleRule;
/** How container PIDs are translated (config `pidStrategy`), and what `auto` resolves to. */
export type PidStrategy = Binding.PidStrategy;
export type ResolvedPidStrategy = Binding.ResolvedPidStrategy;
/** How masked proc and sysfs are assembled (config `mountStrategy`), and what `auto` resolves to. */
export type MountStrategy = Binding.MountStrategy;
export type ResolvedMountStrategy = Binding.ResolvedMountStrategy;
/** A mark's method, and the configured choice (`auto` or one method; config `shift.method`). */
export type ShiftMethod = Binding.ShiftMethod;
export type ShiftMethodChoice = Binding.ShiftMethodChoice;

/**
 * Every value of a binding string union, for z.enum, commander choices and
 * messages: `all` must name each value of `T` and nothing else (the compiler
 * checks both), so its keys are exactly `T`'s values.
 */
function values<T extends string>(all: Record<T, true>): [T, ...T[]] {
  const [first, ...rest] = Object.keys(all).filter((k): k is T => k in all);
  if (first === undefined) throw new Error('an empty union');
  return [first, ...rest];
}
export const PID_STRATEGIES = values<PidStrategy>({ auto: true, ioctl: true, scan: true });
export const MOUNT_STRATEGIES = values<MountStrategy>({ auto: true, detached: true, fallback: true });
export const SHIFT_METHODS = values<ShiftMethod>({ idmapped: true, fuse: true, shiftfs: true });
export const SHIFT_METHOD_CHOICES = values<ShiftMethodChoice>({ auto: true, idmapped: true, fuse: true, shiftfs: true });
export const LIFECYCLE_RULES = values<LifecycleRule>({ 'root-or-init-uid': true, root: true });
const UNIONS: Record<string, readonly string[]> = {
  PidStrategy: PID_STRATEGIES,
  MountStrategy: MOUNT_STRATEGIES,
  ShiftMethod: SHIFT_METHODS,
  ShiftMethodChoice: SHIFT_METHOD_CHOICES,
  LifecycleRule: LIFECYCLE_RULES,
};

/**
 * napi-rs refuses a string outside a binding union before the core sees it,
 * naming the Rust mirror type (`JsPidStrategy`): that is the caller's
 * INVALID_ARGUMENT, said with the JS type and its values (as the core said
 * when it parsed the strings).
 */
function toError(err: unknown): IwsError {
  const m = err instanceof Error ? /^value `(.*)` does not match any variant of enum `Js(\w+)`/.exec(err.message) : null;
  if (m) {
    const [, value, type] = m;
    const allowed = UNIONS[type ?? ''];
    return new IwsError('INVALID_ARGUMENT', `unknown ${type} ${value}${allowed ? `; use one of ${allowed.join(', ')}` : ''}`, { cause: err });
  }
  return toIwsError(err);
}

async function wrap<T>(p: () => Promise<T>): Promise<T> {
  try {
    return await p();
  } catch (err) {
    throw toError(err);
  }
}

function wrapSync<T>(f: () => T): T {
  try {
    return f();
  } catch (err) {
    throw toError(err);
  }
}

/** The core's default id policy (config `idPolicy`) and its bound on user ranges. */
export const ID_POLICY_DEFAULTS: Binding.IdPolicyDefaults = binding.idPolicyDefaults();
/** The core's default masks (config `proc`, `sysfs`). */
export const MASK_DEFAULTS: Binding.MaskDefaults = binding.maskDefaults();

/** `START:SIZE` → IdRange (the core's parser); IwsError(INVALID_ARGUMENT) saying what is wrong. */
export function parseIdRange(text: string): IdRange {
  return wrapSync(() => binding.parseIdRange(text));
}

/** `CONTAINER:HOST:SIZE` → IdMapping (the core's parser); IwsError(INVALID_ARGUMENT) saying what is wrong. */
export function parseIdMapping(text: string): IdMapping {
  return wrapSync(() => binding.parseIdMapping(text));
}

/** Throws IwsError(INVALID_ARGUMENT) when `entry` breaks the core's mask-entry rule. */
export function checkMaskEntry(entry: string): void {
  wrapSync(() => binding.checkMaskEntry(entry));
}

/** Opens (pins) the container whose init has host PID `hostPid`. */
export function openContainer(hostPid: number): Promise<Container> {
  return wrap(() => binding.openContainer(hostPid));
}

/**
 * Validates and writes a uid/gid map for a process of the container, for
 * `caller` (the connection's verified peer; authorized in the core).
 */
export function writeIdMapping(container: Container, caller: Authority, options: WriteIdMappingOptions): Promise<WriteIdMappingResult> {
  return wrap(() => binding.writeIdMapping(container, authority(caller), options));
}

/**
 * Masks made once and passed by reference to mountProc/mountSysfs (a call
 * then converts no mask strings): the daemon makes one per configured kind.
 */
export type MaskSet = Binding.MaskSet;

/** A MaskSet of `masks`; IwsError(INVALID_ARGUMENT) naming an entry that breaks the core's mask-entry rule. */
export function maskSet(masks: Masks): MaskSet {
  return wrapSync(() => binding.MaskSet.of(masks));
}

/** A mount's masks: a MaskSet made once (the daemon's), or plain masks in the options (a MaskSet is made for the call). */
function setOf(options: { masks?: Masks }, masks: MaskSet | undefined): MaskSet {
  if (masks) return masks;
  if (!options.masks) throw new IwsError('INVALID_ARGUMENT', 'no masks given: pass a MaskSet (maskSet) or options.masks');
  return maskSet(options.masks);
}

/** Mounts a proc masked by `masks` (or `options.masks`) for a process of the container at a path inside its root, for `caller`. */
export function mountProc(container: Container, caller: Authority, options: MountProcOptions & { masks?: Masks }, masks?: MaskSet): Promise<MountResult> {
  return wrap(() => binding.mountProc(container, authority(caller), options, setOf(options, masks)));
}

/** Mounts a sysfs masked by `masks` (or `options.masks`) of a process's network namespace at a path inside its root, for `caller`. */
export function mountSysfs(container: Container, caller: Authority, options: MountSysfsOptions & { masks?: Masks }, masks?: MaskSet): Promise<MountResult> {
  return wrap(() => binding.mountSysfs(container, authority(caller), options, setOf(options, masks)));
}

/** Unmounts the mount at a path if it is one of `options.owned` and `caller` may (made for it, or container root). */
export function umount(container: Container, caller: Authority, options: UmountOptions): Promise<MountResult> {
  return wrap(() => binding.umount(container, authority(caller), options));
}

export type MountNfsOptions = Binding.MountNfsOptions;
export type SetupPairVethsOptions = Binding.SetupPairVethsOptions;
export type PairVethsResult = Binding.PairVethsResult;

/** Mounts an NFS share at a path inside a process's root, connecting from the container's network namespace, for `caller`. */
export function mountNfs(container: Container, caller: Authority, options: MountNfsOptions): Promise<MountResult> {
  return wrap(() => binding.mountNfs(container, authority(caller), options));
}

/** Creates the veth pair between the container's network namespace and that of `options.pid`, for `caller`. */
export function setupPairVeths(container: Container, caller: Authority, options: SetupPairVethsOptions): Promise<PairVethsResult> {
  return wrap(() => binding.setupPairVeths(container, authority(caller), options));
}

/** Throws IwsError(INVALID_ARGUMENT) when `cidr` is no usable workspace network. */
export function validateWorkspaceCidr(cidr: string): void {
  wrapSync(() => binding.validateWorkspaceCidr(cidr));
}

/** Rejects (PERMISSION_DENIED) a caller of PrepareForUserNS/Teardown that `rule` does not allow; no side effects. */
export function authorizeLifecycle(container: Container, caller: Peer, rule: LifecycleRule): Promise<void> {
  return wrap(() => binding.authorizeLifecycle(container, caller, rule));
}

/** Makes the container's root shared and mounts its ID-shifted mark. */
export function prepareShiftMark(container: Container, options: PrepareMarkOptions): Promise<MarkInfo> {
  return wrap(() => binding.prepareShiftMark(container, options));
}

/** Unmounts a mark, stops its FUSE helper, releases its user namespace. */
export function removeShiftMark(container: Container, options: RemoveMarkOptions): Promise<RemoveMarkResult> {
  return wrap(() => binding.removeShiftMark(container, options));
}

/**
 * What a lifecycle call (PrepareForUserNS, Teardown) came to: `done`, or
 * `refused` before any work was done (the caller not allowed, gone, or not
 * identified; the daemon then gives the call's one shot back). A failure
 * after the caller was authorized rejects.
 */
export type Lifecycle<T> = { done: T } | { refused: IwsError };

async function lifecycle<T>(p: () => Promise<T>): Promise<Lifecycle<T>> {
  try {
    return { done: await p() };
  } catch (err) {
    if (err instanceof Error && (err as { refused?: unknown }).refused === true) return { refused: toError(err) };
    throw toError(err);
  }
}

/**
 * PrepareForUserNS in one native call: `caller` authorized by
 * `options.rule`, then the mark and (with `options.devices`) the device nodes.
 */
export function prepareForUserNs(container: Container, caller: Peer, options: PrepareForUserNsOptions): Promise<Lifecycle<PreparedInfo>> {
  return lifecycle(() => binding.prepareForUserNs(container, caller, options));
}

/** Teardown in one native call: `caller` authorized by `options.rule`, then the mark (if any) removed. */
export function teardown(container: Container, caller: Peer, options: TeardownOptions): Promise<Lifecycle<RemoveMarkResult>> {
  return lifecycle(() => binding.teardown(container, caller, options));
}

/** Stops a fuse-overlayfs helper of iwsd's (also one started by a previous daemon process). */
export function stopFuseHelper(pid: number, staging: string): Promise<boolean> {
  return wrap(() => binding.stopFuseHelper(pid, staging));
}

/** Checks the process connected on unix socket `fd` is inside the container. */
export function checkPeer(container: Container, fd: number): Promise<Peer> {
  return wrap(() => binding.checkPeer(container, fd));
}

export function probeKernel(): Promise<KernelFeatures> {
  return wrap(() => binding.probeKernel());
}

/** The PID strategy `requested` resolves to on this kernel. */
export function resolvePidStrategy(requested: PidStrategy): Promise<ResolvedPidStrategy> {
  return wrap(() => binding.resolvePidStrategy(requested));
}

/** The mount strategy `requested` resolves to on this kernel. */
export function resolveMountStrategy(requested: MountStrategy): Promise<ResolvedMountStrategy> {
  return wrap(() => binding.resolveMountStrategy(requested));
}

/** Throws IwsError(INVALID_ARGUMENT) when the policy is unsound. */
export function validateIdPolicy(policy: IdPolicy): void {
  wrapSync(() => binding.validateIdPolicy(policy));
}

export type RemoveTreeResult = Binding.RemoveTreeResult;
export type SealResult = Binding.SealResult;

/**
 * Removes `parent/name` and everything below it by file descriptor: no
 * symlink is followed, no mount crossed (a mount point inside is left and
 * reported in `problems`), bounded in depth and entries. `parent` must be a
 * daemon-owned directory; `name` one file name.
 */
export function removeTree(parent: string, name: string): Promise<RemoveTreeResult> {
  return wrap(() => binding.removeTree(parent, name));
}

/**
 * Empties the directory `parent/name` as removeTree removes a tree, but
 * keeps the directory itself (its immutable flag cleared): for a workspace
 * directory the runtime made, which it binds into the workspace's next
 * container too. A symlink or file at `name` is FAILED_PRECONDITION.
 */
export function emptyTree(parent: string, name: string): Promise<RemoveTreeResult> {
  return wrap(() => binding.emptyTree(parent, name));
}

/**
 * Creates (if missing) workspace directory `parent/name`, never through a
 * symlink; makes `mark` an empty directory of the daemon's, prunes every
 * other entry but a socket at daemon.sock, and makes the directory and its
 * mark immutable where the filesystem supports it.
 */
export function prepareWorkspaceDir(parent: string, name: string, mark: string | undefined): Promise<SealResult> {
  return wrap(() => binding.prepareWorkspaceDir(parent, name, mark ?? null));
}

/**
 * Renames socket `srcDir/srcName` (bound and chmod'ed in a daemon-only
 * directory) to `parent/name/daemon.sock`, replacing whatever is there, then
 * seals the workspace directory again (see prepareWorkspaceDir).
 */
export function installSocket(srcDir: string, srcName: string, parent: string, name: string, mark: string | undefined): Promise<SealResult> {
  return wrap(() => binding.installSocket(srcDir, srcName, parent, name, mark ?? null));
}

/** An exclusive flock on a state dir's lock file; see crates/iws-core/src/supervise.rs. */
export const StateLock = binding.StateLock;
export type StateLock = Binding.StateLock;

/** Sends one sd_notify datagram (e.g. "READY=1") to `socket`, the value of $NOTIFY_SOCKET. */
export function sdNotify(socket: string, state: string): void {
  binding.sdNotify(socket, state);
}

export type NofileLimit = Binding.NofileLimit;

/** Raises this process's soft RLIMIT_NOFILE to its hard limit (never lowers it). */
export function raiseNofileLimit(): NofileLimit {
  return binding.raiseNofileLimit();
}

export type CgroupResources = Binding.CgroupResources;
export type EvacuateResult = Binding.EvacuateResult;
export type DevicesResult = Binding.DevicesResult;

/** The container's raw CPU and memory figures from its own cgroups (v1 or v2); see crates/iws-core/src/cgroup.rs. */
export function readCgroupResources(container: Container): Promise<CgroupResources> {
  return wrap(() => binding.readCgroupResources(container));
}

/** EvacuateCGroup for `caller` (allowed by the lifecycle `rule`): v2 only, nothing on v1. */
export function evacuateCgroup(container: Container, caller: Peer, rule: LifecycleRule): Promise<EvacuateResult> {
  return wrap(() => binding.evacuateCgroup(container, caller, rule));
}

/** Makes /dev/fuse and /dev/net/tun in the container and allows them in its v1 devices cgroup. */
export function makeContainerDevices(container: Container): Promise<DevicesResult> {
  return wrap(() => binding.makeContainerDevices(container));
}
