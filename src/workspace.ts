/** A registered workspace: its pinned container, id policy and socket path. */
import { join } from 'node:path';

import type { Container, IdMapping, IdPolicy, MountOwner } from './native.js';
import type { WorkspaceState } from './state.js';

export type MountKind = 'proc' | 'sysfs' | 'nfs';

/** A mount iwsd made for a workspace, keyed by its unique mount id. */
export interface MountRecord {
  kind: MountKind;
  target: string;
  /** The requesting PID (container view). */
  pid: number;
  /** Who it was made for (absent in records older than per-caller authorization). */
  madeFor?: MountOwner;
}

export interface Workspace {
  readonly id: string;
  /** Host PID of the container's init. */
  readonly hostPid: number;
  readonly container: Container;
  readonly policy: IdPolicy;
  /** `<state-dir>/workspaces/<id>`, what a runtime bind-mounts at `/.workspace`. */
  readonly dir: string;
  readonly socketPath: string;
  /** Mounts iwsd made for this workspace: only these can be unmounted. */
  readonly mounts: Map<string, MountRecord>;
  /** The map a ring's user namespace gets; the mark's ID shift. */
  readonly shift: IdMapping[];
  readonly markPath: string;
  readonly fullWorkspaceBackup: boolean;
  readonly persistentVolumeClaim: boolean;
  /** Persisted one-shot state; replaced (never mutated) on every change. */
  state: WorkspaceState;
}

/**
 * The default shift mapping: container id 0 to the root range's start, and
 * 1.. to the first user range's start (at most 65534 ids).
 */
export function defaultShift(policy: IdPolicy): IdMapping[] {
  const user = policy.userRanges[0];
  const shift: IdMapping[] = [{ containerId: 0, hostId: policy.rootRange.start, size: 1 }];
  if (user) shift.push({ containerId: 1, hostId: user.start, size: Math.min(user.size, 65534) });
  return shift;
}

export function workspaceDir(stateDir: string, id: string): string {
  return join(stateDir, 'workspaces', id);
}

export function workspaceSocket(stateDir: string, id: string): string {
  return join(workspaceDir(stateDir, id), 'daemon.sock');
}
