/** The admin service on `<state-dir>/admin.sock`: register, remove, list. */
import type * as grpc from '@grpc/grpc-js';

import { toIwsError } from './errors.js';
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
    prepared: w.prepared,
    tornDown: w.tornDown,
  };
}

function unary<Req, Res>(d: Daemon, rpc: string, fn: (req: Req) => Promise<Res>): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    const started = process.hrtime.bigint();
    fn(call.request).then(
      (res) => {
        d.log.debug({ admin: rpc, request: call.request, result: 'OK', ms: Number(process.hrtime.bigint() - started) / 1e6 }, `admin ${rpc} ok`);
        callback(null, res);
      },
      (thrown: unknown) => {
        const err = toIwsError(thrown);
        const level = err.code === 'INTERNAL' ? 'error' : 'warn';
        d.log[level]({ admin: rpc, request: call.request, result: err.code, error: err.message, detail: err.detail }, `admin ${rpc} failed: ${err.message}`);
        callback({ code: err.grpcStatus, details: err.message }, null);
      },
    );
  };
}

export function adminHandlers(d: Daemon): AdminHandlers {
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
