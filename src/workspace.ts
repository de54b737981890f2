/** A registered workspace: its pinned container, id policy and socket path. */
import { join } from 'node:path';

import type { Container, IdPolicy } from './native.js';

export interface Workspace {
  readonly id: string;
  /** Host PID of the container's init. */
  readonly hostPid: number;
  readonly container: Container;
  readonly policy: IdPolicy;
  /** `<state-dir>/workspaces/<id>`, what a runtime bind-mounts at `/.workspace`. */
  readonly dir: string;
  readonly socketPath: string;
}

export function workspaceDir(stateDir: string, id: string): string {
  return join(stateDir, 'workspaces', id);
}

export function workspaceSocket(stateDir: string, id: string): string {
  return join(workspaceDir(stateDir, id), 'daemon.sock');
}
