/**
 * The one error boundary. Core (native) errors carry a stable `code`; this
 * module maps each code 1:1 to a gRPC status and turns anything unexpected
 * into INTERNAL without leaking its message to the caller.
 */
import { status } from '@grpc/grpc-js';

/** The stable error codes of iwsd, identical to gRPC status names. */
export const ERROR_CODES = [
  'INVALID_ARGUMENT',
  'PERMISSION_DENIED',
  'NOT_FOUND',
  'FAILED_PRECONDITION',
  'RESOURCE_EXHAUSTED',
  'UNAVAILABLE',
  'UNIMPLEMENTED',
  'INTERNAL',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

const GRPC_STATUS: Record<ErrorCode, status> = {
  INVALID_ARGUMENT: status.INVALID_ARGUMENT,
  PERMISSION_DENIED: status.PERMISSION_DENIED,
  NOT_FOUND: status.NOT_FOUND,
  FAILED_PRECONDITION: status.FAILED_PRECONDITION,
  RESOURCE_EXHAUSTED: status.RESOURCE_EXHAUSTED,
  UNAVAILABLE: status.UNAVAILABLE,
  UNIMPLEMENTED: status.UNIMPLEMENTED,
  INTERNAL: status.INTERNAL,
};

/** An error with a stable code; `message` is safe to show to the caller. */
export class IwsError extends Error {
  override readonly name = 'IwsError';
  readonly code: ErrorCode;
  /** Operator-only detail (syscall, arguments); never sent to a workspace. */
  readonly detail: string | undefined;
  /**
   * The native core's structured reason (e.g. `HostMountNamespace`,
   * `MapRule(host-root)`, `NoSuchProcess`), when it gave one. Code matches on
   * this, never on `message`.
   */
  readonly reason: string | undefined;
  /** The errno of the syscall that failed, when one did. */
  readonly errno: number | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    options?: { detail?: string | undefined; reason?: string | undefined; errno?: number | undefined; cause?: unknown },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.detail = options?.detail;
    this.reason = options?.reason;
    this.errno = options?.errno;
  }

  get grpcStatus(): status {
    return GRPC_STATUS[this.code];
  }
}

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && (ERROR_CODES as readonly string[]).includes(code);
}

const GENERIC_INTERNAL = 'internal error in iwsd; the daemon log has details';

/**
 * Converts anything thrown (a native error with `code`, an IwsError, or an
 * unexpected exception) into an IwsError. Unknown errors become INTERNAL with
 * a generic message; the original is kept as `cause` for the log.
 */
export function toIwsError(err: unknown): IwsError {
  if (err instanceof IwsError) return err;
  if (err instanceof Error) {
    const { code, detail, reason, errno } = err as { code?: unknown; detail?: unknown; reason?: unknown; errno?: unknown };
    const extra = {
      reason: typeof reason === 'string' ? reason : undefined,
      errno: typeof errno === 'number' ? errno : undefined,
    };
    if (isErrorCode(code) && code !== 'INTERNAL') {
      return new IwsError(code, err.message, { detail: typeof detail === 'string' ? detail : undefined, ...extra, cause: err });
    }
    return new IwsError('INTERNAL', GENERIC_INTERNAL, {
      detail: typeof detail === 'string' ? detail : err.message,
      ...extra,
      cause: err,
    });
  }
  return new IwsError('INTERNAL', GENERIC_INTERNAL, { detail: String(err) });
}
