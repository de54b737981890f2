/**
 * `iwsd/client`: a typed, Promise-based client for `iws.InWorkspaceService`,
 * for programs running inside a workspace. gRPC failures reject with an
 * {@link IwsError} whose `code` is the gRPC status name (UNAVAILABLE for
 * statuses outside ERROR_CODES, e.g. DEADLINE_EXCEEDED). Failures before
 * any answer carry a `reason`: `ConnectionRefused` (the daemon closed the
 * connection: it serves only processes inside the workspace), `NoSocket`,
 * `NotListening`, `SocketPermission`, `DeadlineExceeded`, `Cancelled`.
 *
 * @packageDocumentation
 */
import * as grpc from '@grpc/grpc-js';

import { clientError } from '../clientError.js';
import { IwsError } from '../errors.js';
import { fsShiftAcceptMetadata } from '../fsShift.js';
import { workspaceProto } from '../proto.js';
import type { InWorkspaceServiceClient } from '../gen/iws/InWorkspaceService.js';
import type { MountProcRequest } from '../gen/iws/MountProcRequest.js';
import type { PrepareForUserNSResponse__Output } from '../gen/iws/PrepareForUserNSResponse.js';
import type { TeardownResponse__Output } from '../gen/iws/TeardownResponse.js';
import type { UmountProcRequest } from '../gen/iws/UmountProcRequest.js';
import type { WriteIDMappingRequest } from '../gen/iws/WriteIDMappingRequest.js';
import type { WriteIDMappingResponse__Output } from '../gen/iws/WriteIDMappingResponse.js';
import type { WipingTeardownRequest } from '../gen/iws/WipingTeardownRequest.js';
import type { WipingTeardownResponse__Output } from '../gen/iws/WipingTeardownResponse.js';
import type { SetupPairVethsRequest } from '../gen/iws/SetupPairVethsRequest.js';
import type { MountNfsRequest } from '../gen/iws/MountNfsRequest.js';
import type { UmountNfsRequest } from '../gen/iws/UmountNfsRequest.js';
import type { WorkspaceInfoResponse__Output } from '../gen/iws/WorkspaceInfoResponse.js';

export { ERROR_CODES, IwsError, type ErrorCode } from '../errors.js';
export { FS_SHIFT_ACCEPT_HEADER, fsShiftAcceptMetadata } from '../fsShift.js';
export type {
  MountProcRequest,
  PrepareForUserNSResponse__Output as PrepareForUserNSResponse,
  TeardownResponse__Output as TeardownResponse,
  UmountProcRequest,
  WriteIDMappingRequest,
  WriteIDMappingResponse__Output as WriteIDMappingResponse,
  WipingTeardownRequest,
  WipingTeardownResponse__Output as WipingTeardownResponse,
  SetupPairVethsRequest,
  MountNfsRequest,
  UmountNfsRequest,
  WorkspaceInfoResponse__Output as WorkspaceInfoResponse,
};

export interface CallOptions {
  /** Cancels the call; it rejects with code CANCELLED mapped to UNAVAILABLE. */
  signal?: AbortSignal;
  /** Absolute deadline, or milliseconds from now. Default: the client's (10 s). */
  deadline?: Date | number;
}

export interface ClientOptions {
  /** Default deadline in milliseconds for calls without one (10 000). */
  timeoutMs?: number;
}

/** The workspace service, one method per RPC. */
export interface InWorkspaceClient {
  prepareForUserNS(options?: CallOptions): Promise<PrepareForUserNSResponse__Output>;
  writeIdMapping(request: WriteIDMappingRequest, options?: CallOptions): Promise<WriteIDMappingResponse__Output>;
  mountProc(request: MountProcRequest, options?: CallOptions): Promise<void>;
  umountProc(request: UmountProcRequest, options?: CallOptions): Promise<void>;
  mountSysfs(request: MountProcRequest, options?: CallOptions): Promise<void>;
  umountSysfs(request: UmountProcRequest, options?: CallOptions): Promise<void>;
  teardown(options?: CallOptions): Promise<TeardownResponse__Output>;
  wipingTeardown(request: WipingTeardownRequest, options?: CallOptions): Promise<WipingTeardownResponse__Output>;
  evacuateCGroup(options?: CallOptions): Promise<void>;
  setupPairVeths(request: SetupPairVethsRequest, options?: CallOptions): Promise<void>;
  mountNfs(request: MountNfsRequest, options?: CallOptions): Promise<void>;
  umountNfs(request: UmountNfsRequest, options?: CallOptions): Promise<void>;
  workspaceInfo(options?: CallOptions): Promise<WorkspaceInfoResponse__Output>;
  /** Closes the connection. Idempotent. */
  close(): void;
  [Symbol.dispose](): void;
}

/** Connects to a workspace socket, e.g. `/.workspace/daemon.sock`. */
export function createClient(socketPath: string, options: ClientOptions = {}): InWorkspaceClient {
  const Client = workspaceProto().iws.InWorkspaceService;
  const client: InWorkspaceServiceClient = new Client(`unix:${socketPath}`, grpc.credentials.createInsecure());
  const timeoutMs = options.timeoutMs ?? 10_000;
  let closed = false;

  function unary<Req, Res>(method: string, request: Req, opts: CallOptions = {}, metadata = new grpc.Metadata()): Promise<Res> {
    return new Promise<Res>((resolve, reject) => {
      if (opts.signal?.aborted) {
        reject(new IwsError('UNAVAILABLE', 'the call was aborted before it started', { cause: opts.signal.reason }));
        return;
      }
      const deadline = opts.deadline instanceof Date ? opts.deadline : Date.now() + (opts.deadline ?? timeoutMs);
      const fn = (client as unknown as Record<string, (...a: unknown[]) => grpc.ClientUnaryCall>)[method]!;
      const call = fn.call(client, request, metadata, { deadline }, (err: grpc.ServiceError | null, res: Res) => {
        opts.signal?.removeEventListener('abort', onAbort);
        if (err) reject(clientError(err, { socket: socketPath, kind: 'workspace' }));
        else resolve(res);
      });
      const onAbort = () => call.cancel();
      opts.signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  return {
    // This client knows IDMAPPED, so it is told the true method (see fsShift.ts).
    prepareForUserNS: (o) => unary('PrepareForUserNS', {}, o, fsShiftAcceptMetadata()),
    writeIdMapping: (r, o) => unary('WriteIDMapping', r, o),
    mountProc: (r, o) => unary<MountProcRequest, unknown>('MountProc', r, o).then(() => undefined),
    umountProc: (r, o) => unary<UmountProcRequest, unknown>('UmountProc', r, o).then(() => undefined),
    mountSysfs: (r, o) => unary<MountProcRequest, unknown>('MountSysfs', r, o).then(() => undefined),
    umountSysfs: (r, o) => unary<UmountProcRequest, unknown>('UmountSysfs', r, o).then(() => undefined),
    teardown: (o) => unary('Teardown', {}, o),
    wipingTeardown: (r, o) => unary('WipingTeardown', r, o),
    evacuateCGroup: (o) => unary('EvacuateCGroup', {}, o).then(() => undefined),
    setupPairVeths: (r, o) => unary<SetupPairVethsRequest, unknown>('SetupPairVeths', r, o).then(() => undefined),
    mountNfs: (r, o) => unary<MountNfsRequest, unknown>('MountNfs', r, o).then(() => undefined),
    umountNfs: (r, o) => unary<UmountNfsRequest, unknown>('UmountNfs', r, o).then(() => undefined),
    workspaceInfo: (o) => unary('WorkspaceInfo', {}, o),
    close() {
      if (!closed) {
        closed = true;
        client.close();
      }
    },
    [Symbol.dispose]() {
      this.close();
    },
  };
}

