/**
 * ttrpc framing (containerd/ttrpc v1.2.9, PROTOCOL.md) over one mux
 * connection's byte stream:
 *
 *     length u32 BE | streamID u32 BE | type u8 | flags u8 | data[length]
 *
 * A request's data is a `ttrpc.Request`, a response's a `ttrpc.Response`
 * (google.rpc.Status + payload). Client stream ids are odd and increasing.
 */
import { decode, encode, type } from './proto.js';

export const TTRPC_HEADER = 10;
export const MAX_MESSAGE = 4 << 20;
export const TYPE_REQUEST = 1;
export const TYPE_RESPONSE = 2;
export const TYPE_DATA = 3;

/** gRPC status codes used here. */
export const CODE = { OK: 0, CANCELLED: 1, UNKNOWN: 2, INVALID_ARGUMENT: 3, DEADLINE_EXCEEDED: 4, NOT_FOUND: 5, FAILED_PRECONDITION: 9, UNIMPLEMENTED: 12, INTERNAL: 13, UNAVAILABLE: 14 } as const;

export interface TtrpcMessage {
  streamId: number;
  type: number;
  flags: number;
  data: Buffer;
}

export class TtrpcError extends Error {
  override name = 'TtrpcError';
}

/** A call's failure as the peer reported it. */
export class StatusError extends Error {
  override name = 'StatusError';
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

/** Reassembles ttrpc messages from the payloads of one mux connection. */
export class TtrpcReader {
  #buf: Buffer = Buffer.alloc(0);

  constructor(private readonly onMessage: (m: TtrpcMessage) => void) {}

  /** Throws TtrpcError on a message above MAX_MESSAGE. */
  push(chunk: Buffer): void {
    this.#buf = this.#buf.length ? Buffer.concat([this.#buf, chunk]) : chunk;
    let off = 0;
    while (this.#buf.length - off >= TTRPC_HEADER) {
      const length = this.#buf.readUInt32BE(off);
      if (length > MAX_MESSAGE) throw new TtrpcError(`ttrpc: message of ${length} bytes exceeds ${MAX_MESSAGE}`);
      if (this.#buf.length - off - TTRPC_HEADER < length) break;
      const m: TtrpcMessage = {
        streamId: this.#buf.readUInt32BE(off + 4),
        type: this.#buf[off + 8]!,
        flags: this.#buf[off + 9]!,
        data: Buffer.from(this.#buf.subarray(off + TTRPC_HEADER, off + TTRPC_HEADER + length)),
      };
      off += TTRPC_HEADER + length;
      this.onMessage(m);
    }
    this.#buf = off === 0 ? this.#buf : Buffer.from(this.#buf.subarray(off));
  }

  /** Bytes of an incomplete message held. */
  get pending(): number {
    return this.#buf.length;
  }
}

export function encodeMessage(m: { streamId: number; type: number; flags?: number; data: Uint8Array }): Buffer {
  if (m.data.length > MAX_MESSAGE) throw new TtrpcError(`ttrpc: message of ${m.data.length} bytes exceeds ${MAX_MESSAGE}`);
  const b = Buffer.allocUnsafe(TTRPC_HEADER + m.data.length);
  b.writeUInt32BE(m.data.length, 0);
  b.writeUInt32BE(m.streamId, 4);
  b[8] = m.type;
  b[9] = m.flags ?? 0;
  b.set(m.data, TTRPC_HEADER);
  return b;
}

export interface Request {
  service: string;
  method: string;
  payload: Buffer;
  timeoutNano?: number;
  metadata?: { key: string; value: string }[];
}

export function encodeRequest(r: Request): Uint8Array {
  return encode(type('ttrpc.Request'), { ...r });
}

export function decodeRequest(data: Uint8Array): Request {
  const r = decode<Partial<Request>>(type('ttrpc.Request'), data);
  return { service: r.service ?? '', method: r.method ?? '', payload: Buffer.from(r.payload ?? []), timeoutNano: r.timeoutNano ?? 0, metadata: r.metadata ?? [] };
}

export function encodeResponse(r: { payload?: Uint8Array; code?: number; message?: string }): Uint8Array {
  const v: Record<string, unknown> = {};
  if (r.code) v.status = { code: r.code, message: r.message ?? '' };
  if (r.payload?.length) v.payload = r.payload;
  return encode(type('ttrpc.Response'), v);
}

/** The payload of a response, or a StatusError for a non-OK status. */
export function decodeResponse(data: Uint8Array): Buffer {
  const r = decode<{ status?: { code?: number; message?: string }; payload?: Uint8Array }>(type('ttrpc.Response'), data);
  if (r.status?.code) throw new StatusError(r.status.code, r.status.message ?? '');
  return Buffer.from(r.payload ?? []);
}
