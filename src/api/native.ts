/**
 * `iwsd/native`: the kernel operations of iwsd for programs that embed them
 * (their own daemon, a test harness, a container tool). Every function checks
 * its input against the same policy the daemon enforces, and rejects with an
 * {@link IwsError} whose `code` is one of {@link ERROR_CODES}.
 *
 * Targets are explicit: a {@link Container} (its init pinned by a pidfd and
 * its PID namespace held open) plus a PID *as seen inside that container*.
 *
 * @packageDocumentation
 */
import { parseConfig } from '../config.js';
import { IwsError } from '../errors.js';
import { defaultShift } from '../workspace.js';
import * as native from '../native.js';

export { ERROR_CODES, IwsError, type ErrorCode } from '../errors.js';
export type { IdMapping, IdPolicy, IdRange, KernelFeatures, Masks, MarkInfo, FuseOptions } from '../native.js';

// The daemon's defaults, from its configuration schema (one source of truth).
const defaults = parseConfig({}, 'defaults');

/** The daemon's default id policy: root range 33333:1, user range 100000:70000, no host root. */
export const DEFAULT_POLICY: native.IdPolicy = Object.freeze(defaults.idPolicy);

/** Frozen through: the defaults' MaskSets below are made once from them, so they must not change. */
const frozenMasks = (m: native.Masks): native.Masks => Object.freeze({ masked: Object.freeze([...m.masked]) as string[], readOnly: Object.freeze([...m.readOnly]) as string[] });

/** The daemon's default masks for proc. */
export const DEFAULT_PROC_MASKS: native.Masks = frozenMasks(defaults.proc);

/** The daemon's default masks for sysfs. */
export const DEFAULT_SYSFS_MASKS: native.Masks = frozenMasks({ masked: defaults.sysfs.masked, readOnly: [] });

const DEFAULT_PROC_SET = native.maskSet(DEFAULT_PROC_MASKS);
const DEFAULT_SYSFS_SET = native.maskSet(DEFAULT_SYSFS_MASKS);

export type PidStrategy = native.PidStrategy;
export type MountStrategy = native.MountStrategy;

/** A container, identified by the host PID of its init. Close it (or `using` it) to release its fds. */
export class Container {
  #handle: native.Container;

  private constructor(handle: native.Container) {
    this.#handle = handle;
  }

  /** Pins the container whose init has host PID `hostPid`. Refuses processes in the caller's own PID namespace. */
  static async open(hostPid: number): Promise<Container> {
    return new Container(await native.openContainer(hostPid));
  }

  /** @internal */
  get handle(): native.Container {
    return this.#handle;
  }

  get hostPid(): number {
    const p = this.#handle.hostPid;
    if (p === null) throw new IwsError('FAILED_PRECONDITION', 'the container handle is closed');
    return p;
  }

  /** Whether the container's init still runs. */
  isAlive(): boolean {
    return this.#handle.isAlive();
  }

  /** Releases the pidfd and namespace fd. Idempotent. */
  close(): void {
    this.#handle.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

export interface CommonOptions {
  /** The target process, as a PID inside the container. */
  pid: number;
  /** PID translation: "auto" (default), "ioctl" (Linux 6.11+) or "scan". */
  pidStrategy?: PidStrategy;
}

/** Validates `mappings` against `policy` (default {@link DEFAULT_POLICY}) and writes them in one write(2). */
export function writeIdMapping(
  container: Container,
  options: CommonOptions & { gid?: boolean; mappings: native.IdMapping[]; policy?: native.IdPolicy },
): Promise<{ message: string }> {
  return native
    .writeIdMapping(container.handle, 'embedder', {
      pid: options.pid,
      gid: options.gid ?? false,
      mappings: options.mappings,
      policy: options.policy ?? DEFAULT_POLICY,
      pidStrategy: options.pidStrategy ?? 'auto',
    })
    .then(({ message }) => ({ message }));
}

export interface MountOptions extends CommonOptions {
  /** Absolute path in the process's mount namespace, inside its root; an existing directory, no symlinks. */
  target: string;
  /** "auto" (default), "detached" or "fallback". */
  mountStrategy?: MountStrategy;
}

/** Mounts a new masked proc for the process's PID namespace at `target`. Resolves the new mount's unique id. */
export async function mountProc(container: Container, options: MountOptions & { masks?: native.Masks }): Promise<{ mountId: string }> {
  // A caller's masks are taken as they are at this call (a MaskSet each time; an invalid entry rejects).
  const masks = options.masks ? native.maskSet(options.masks) : DEFAULT_PROC_SET;
  return native.mountProc(
    container.handle,
    'embedder',
    { pid: options.pid, target: options.target, pidStrategy: options.pidStrategy ?? 'auto', mountStrategy: options.mountStrategy ?? 'auto' },
    masks,
  );
}

/** Mounts a new masked sysfs of the process's network namespace at `target` (read-only unless `readOnly: false`). */
export async function mountSysfs(
  container: Container,
  options: MountOptions & { masks?: native.Masks; readOnly?: boolean },
): Promise<{ mountId: string }> {
  const masks = options.masks ? native.maskSet(options.masks) : DEFAULT_SYSFS_SET;
  return native.mountSysfs(
    container.handle,
    'embedder',
    {
      pid: options.pid,
      target: options.target,
      readOnly: options.readOnly ?? true,
      pidStrategy: options.pidStrategy ?? 'auto',
      mountStrategy: options.mountStrategy ?? 'auto',
    },
    masks,
  );
}

/** Unmounts the mount at `target` only if its id is in `owned` (ids from mountProc/mountSysfs). */
export function umount(container: Container, options: CommonOptions & { target: string; owned: string[] }): Promise<{ mountId: string }> {
  return native.umount(container.handle, 'embedder', {
    pid: options.pid,
    target: options.target,
    owned: options.owned.map((mountId) => ({ mountId })),
    pidStrategy: options.pidStrategy ?? 'auto',
  });
}

/** {@link umount} for proc mounts. */
export const umountProc = umount;
/** {@link umount} for sysfs mounts. */
export const umountSysfs = umount;

export interface ShiftMarkOptions {
  /** Default "/.workspace/mark". */
  markPath?: string;
  /** Default: 0 → root range start (1), 1 → user range start (min(size, 65534)). */
  shift?: native.IdMapping[];
  policy?: native.IdPolicy;
  /** "auto" (default), "idmapped", "fuse" or "shiftfs". */
  method?: native.ShiftMethodChoice;
  /** Where the fuse method keeps its dirs (host-only), and its binary. */
  fuse: native.FuseOptions;
}

/** Makes the container's root mount shared and mounts an ID-shifted view of it at the mark path. */
export function prepareShiftMark(container: Container, options: ShiftMarkOptions): Promise<native.MarkInfo> {
  const policy = options.policy ?? DEFAULT_POLICY;
  return native.prepareShiftMark(container.handle, {
    markPath: options.markPath ?? '/.workspace/mark',
    shift: options.shift ?? defaultShift(policy),
    policy,
    method: options.method ?? 'auto',
    fuse: options.fuse,
  });
}

/** Unmounts a mark made by {@link prepareShiftMark}, stops its FUSE helper, releases its user namespace. */
export function removeShiftMark(
  container: Container,
  options: { mark: native.MarkInfo; markPath?: string; shift?: native.IdMapping[]; policy?: native.IdPolicy; fuse: native.FuseOptions; pidStrategy?: PidStrategy },
): Promise<{ success: boolean; problems: string[] }> {
  const policy = options.policy ?? DEFAULT_POLICY;
  return native.removeShiftMark(container.handle, {
    markPath: options.markPath ?? '/.workspace/mark',
    mark: options.mark,
    shift: options.shift ?? defaultShift(policy),
    fuse: options.fuse,
    pidStrategy: options.pidStrategy ?? 'auto',
  });
}

/** Probes the kernel features iwsd uses. */
export function probeKernel(): Promise<native.KernelFeatures> {
  return native.probeKernel();
}
