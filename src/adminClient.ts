/** A small client for the admin socket, used by the CLI. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import * as grpc from '@grpc/grpc-js';

import { clientError, type Target } from './clientError.js';
import { IwsError } from './errors.js';
import { adminProto } from './proto.js';
import type { AdminClient } from './gen/iwsd/admin/v1/Admin.js';

export function connectAdmin(stateDir: string): AdminClient {
  const path = join(stateDir, 'admin.sock');
  if (!existsSync(path)) {
    throw new IwsError(
      'UNAVAILABLE',
      `no admin socket at ${path}: is \`iwsd serve\` running with the same --state-dir (and are you root)?`,
      { reason: 'NoSocket' },
    );
  }
  const Client = adminProto().iwsd.admin.v1.Admin;
  return new Client(`unix:${path}`, grpc.credentials.createInsecure());
}

/** The admin socket of a state dir, as a client target. */
export function adminTarget(stateDir: string): Target {
  return { socket: join(stateDir, 'admin.sock'), kind: 'admin' };
}

/**
 * Promisifies one unary call, turning gRPC errors into IwsError (see
 * clientError: a failure before any answer says what it means for `target`).
 */
export function call<Res>(
  start: (opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: Res) => void) => unknown,
  timeoutMs = 10_000,
  target: Target = { socket: 'the admin socket', kind: 'admin' },
): Promise<Res> {
  return new Promise((resolve, reject) => {
    start({ deadline: Date.now() + timeoutMs }, (err, res) => {
      if (err) reject(clientError(err, target));
      else resolve(res as Res);
    });
  });
}

/** What a registration asks for (from flags or OCI annotations). */
export interface Registration {
  id: string;
  pid: number;
  rootRange?: { start: number; size: number } | undefined;
  userRanges?: { start: number; size: number }[] | undefined;
  shiftMapping?: { containerId: number; hostId: number; size: number }[] | undefined;
  markPath?: string | undefined;
  fullWorkspaceBackup?: boolean | undefined;
  persistentVolumeClaim?: boolean | undefined;
}

/** The AddWorkspace request for a registration (unset fields: daemon defaults). */
export function addWorkspaceRequest(r: Registration) {
  return {
    id: r.id,
    pid: r.pid,
    rootRange: r.rootRange,
    userRanges: r.userRanges ?? [],
    shiftMapping: r.shiftMapping ?? [],
    markPath: r.markPath ?? '',
    ...(r.fullWorkspaceBackup !== undefined ? { fullWorkspaceBackup: r.fullWorkspaceBackup } : {}),
    ...(r.persistentVolumeClaim !== undefined ? { persistentVolumeClaim: r.persistentVolumeClaim } : {}),
  };
}
