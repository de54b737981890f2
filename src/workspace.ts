/** A registered workspace: its pinned container, id policy and socket path. */
import { join } from 'node:path';

import type { Container, IdPolicy } from './native.js';

export type MountKind = 'proc' | 'sysfs';

/** A mount iwsd made for a workspace, keyed by its unique mount id. */
export interface MountRecord {
  kind: MountKind;
  target: string;
  /** The requesting PID (container view). */
  pid: number;
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
}

export function workspaceDir(stateDir: string, id: string): string {
  return join(stateDir, 'workspaces', id);
}

export function workspaceSocket(stateDir: string, id: string): string {
  return join(workspaceDir(stateDir, id), 'daemon.sock');
}
