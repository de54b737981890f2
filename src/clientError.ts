/**
 * gRPC failures as iwsd's clients (`iwsd/client`, the admin client, `iwsd
 * call`) report them: the status as an {@link IwsError} code, and a bare
 * transport failure (grpc-js only says "No connection established. Last
 * error: …") turned into what it means for an iwsd socket, with a `reason`
 * code can match on.
 */
import * as grpc from '@grpc/grpc-js';

import { IwsError, isErrorCode } from './errors.js';

/**
 * `reason`s of client-side failures: the daemon closed the connection before
 * answering (its peer check refuses processes outside the workspace), nothing
 * listens on the socket, there is no socket, the socket's mode refuses the
 * caller, no answer within the deadline, the call was cancelled.
 */
export type ClientReason = 'ConnectionRefused' | 'NotListening' | 'NoSocket' | 'SocketPermission' | 'DeadlineExceeded' | 'Cancelled';

export interface Target {
  socket: string;
  /** A workspace socket checks its peer; the admin socket is root-only by mode. */
  kind: 'workspace' | 'admin';
}

/** The gRPC status name of a client-side failure (e.g. DEADLINE_EXCEEDED), from the error's cause. */
export function grpcStatusName(err: unknown): string | undefined {
  const cause = (err as { cause?: unknown } | undefined)?.cause as { code?: unknown } | undefined;
  return typeof cause?.code === 'number' ? grpc.status[cause.code] : undefined;
}

function transport(details: string): string | undefined {
  if (!/^No connection established\b/.test(details) && !/Connection dropped|socket hang up/i.test(details)) return undefined;
  if (/\bENOENT\b/.test(details)) return 'NoSocket';
  if (/\bECONNREFUSED\b/.test(details)) return 'NotListening';
  if (/\bEACCES\b|\bEPERM\b/.test(details)) return 'SocketPermission';
  // The socket accepted and the daemon closed it before HTTP/2 settings
  // (grpc-js: "Failed to connect", or a reset).
  if (/Failed to connect|ECONNRESET|EPIPE|Connection dropped|socket hang up/i.test(details)) return 'ConnectionRefused';
  return undefined;
}

/** An IwsError for a failed call on `target` (the ServiceError is its `cause`). */
export function clientError(err: grpc.ServiceError, target: Target): IwsError {
  const name = grpc.status[err.code];
  const code = isErrorCode(name) ? name : 'UNAVAILABLE';
  const details = err.details || err.message;
  const { socket } = target;
  const make = (message: string, reason: ClientReason) => new IwsError(code, message, { reason, detail: details, cause: err });
  if (err.code === grpc.status.DEADLINE_EXCEEDED) return make(`no answer from ${socket} within the deadline (${details})`, 'DeadlineExceeded');
  if (err.code === grpc.status.CANCELLED) return make(`the call on ${socket} was cancelled`, 'Cancelled');
  if (err.code === grpc.status.UNAVAILABLE) {
    switch (transport(details)) {
      case 'NoSocket':
        return make(
          target.kind === 'workspace'
            ? `no socket at ${socket}: is the workspace registered, and is its directory bound at this path?`
            : `no admin socket at ${socket}: is \`iwsd serve\` running with the same --state-dir?`,
          'NoSocket',
        );
      case 'NotListening':
        return make(`nothing listens on ${socket} (a socket file left behind): is \`iwsd serve\` running?`, 'NotListening');
      case 'SocketPermission':
        return make(`permission denied connecting to ${socket}${target.kind === 'admin' ? ': the admin socket is root-only' : ''}`, 'SocketPermission');
      case 'ConnectionRefused':
        return make(
          target.kind === 'workspace'
            ? `the daemon refused the connection to ${socket}: it serves only processes inside the workspace's container (PID namespace), so run this inside it (e.g. nsenter --target <container init pid> --pid --mount); if you are inside, the daemon may be restarting: retry`
            : `the daemon closed the connection to ${socket} before answering: it may be restarting; retry`,
          'ConnectionRefused',
        );
      default:
    }
  }
  return new IwsError(code, details, { cause: err });
}
