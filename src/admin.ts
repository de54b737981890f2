/** The admin service on `<state-dir>/admin.sock`: register, remove, list. */
import type * as grpc from '@grpc/grpc-js';

import { Boundary, auditUnimplemented } from './rpc.js';
import { IwsError } from './errors.js';
import type { Daemon, WorkspaceInfo } from './daemon.js';
import type { AdminHandlers } from './gen/iwsd/admin/v1/Admin.js';
import type { Workspace as WorkspaceMsg } from './gen/iwsd/admin/v1/Workspace.js';

function toMsg(w: WorkspaceInfo): WorkspaceMsg {
  return {
    id: w.id,
    pid: w.hostPid,
    socketPath: w.socketPath,
    rootRange: w.rootRange,
    userRanges: w.userRanges,
    alive: w.alive,
    shiftMapping: w.shiftMapping,
    markPath: w.markPath,
    fullWorkspaceBackup: w.fullWorkspaceBackup,
    persistentVolumeClaim: w.persistentVolumeClaim,
    prepared: w.prepared,
    tornDown: w.tornDown,
  };
}

/** The admin server's side of the one error boundary (src/rpc.ts): the daemon's log, no peer to name. */
function adminBoundary(d: Daemon): Boundary<Daemon> {
  return new Boundary({ server: 'admin', okLevel: 'debug', scope: () => ({ context: d, log: d.log, audit: {} }) });
}

export function adminHandlers(d: Daemon): AdminHandlers {
  const b = adminBoundary(d);
  const unary = <Req, Res>(_d: Daemon, rpc: string, fn: (req: Req) => Promise<Res>): grpc.handleUnaryCall<Req, Res> => b.unary<Req, Res>(rpc, (_ctx, req) => fn(req));
  return {
    AddWorkspace: unary(d, 'AddWorkspace', async (req) =>
      toMsg(
        await d.addWorkspace({
          id: req.id,
          hostPid: req.pid,
          rootRange: req.rootRange ?? undefined,
          userRanges: req.userRanges,
          shiftMapping: req.shiftMapping,
          markPath: req.markPath,
          fullWorkspaceBackup: req._fullWorkspaceBackup ? req.fullWorkspaceBackup : undefined,
          persistentVolumeClaim: req._persistentVolumeClaim ? req.persistentVolumeClaim : undefined,
        }),
      ),
    ),
    RemoveWorkspace: unary(d, 'RemoveWorkspace', async (req) => {
      const removed = await d.removeWorkspace(req.id, { ifPresent: req.ifPresent });
      if (!removed) d.log.debug({ workspace: req.id }, `workspace ${req.id} is not registered (torn down already, e.g. when its container exited): nothing to remove`);
      return { removed };
    }),
    ListWorkspaces: unary(d, 'ListWorkspaces', async () => ({ workspaces: d.list().map(toMsg) })),
  } satisfies AdminHandlers;
}

/** Makes the admin server audit every method it does not implement (through the same boundary). */
export function auditAdminUnimplemented(server: grpc.Server, d: Daemon): void {
  const b = adminBoundary(d);
  auditUnimplemented(server, (path) =>
    b.unary<Buffer, Buffer>(path, async () => {
      throw new IwsError('UNIMPLEMENTED', `iwsd does not implement ${path} on the admin socket`);
    }),
  );
}
