/**
 * NRI's connection multiplexing (containerd/nri pkg/net/multiplex): every
 * byte on the one unix socket is a frame
 *
 *     connID u32 BE | length u32 BE | payload[length]
 *
 * and the payloads of one connID form that connection's byte stream. NRI
 * uses connID 1 (the runtime calls the plugin) and 2 (the plugin calls the
 * runtime); both are open from the start.
 *
 * Writes are cut into frames of at most MAX_FRAME_PAYLOAD bytes: the runtime
 * reads each connection through a 4096-byte bufio.Reader, and its mux conn
 * fails a read whose buffer is smaller than the queued frame (a larger frame
 * makes containerd drop the plugin, and the container is created without the
 * plugin's adjustment).
 */

export const PLUGIN_SERVICE_CONN = 1;
export const RUNTIME_SERVICE_CONN = 2;
export const MUX_HEADER = 8;
/** The largest payload this side sends in one frame. */
export const MAX_FRAME_PAYLOAD = 4096;
/** The largest payload accepted (the runtime's own limit: 4 MiB + 10). */
export const MAX_RECEIVED_PAYLOAD = 4 * 1024 * 1024 + 10;

export class MuxError extends Error {
  override name = 'MuxError';
}

/**
 * The receiving side: push the socket's chunks in, get each connection's
 * payload bytes out (in order); `end()` when the socket ends.
 */
export class Demuxer {
  #buf: Buffer = Buffer.alloc(0);
  #failed = false;

  constructor(
    private readonly onData: (connId: number, payload: Buffer) => void,
    private readonly onUnknown: (connId: number, length: number) => void = () => undefined,
    private readonly known: ReadonlySet<number> = new Set([PLUGIN_SERVICE_CONN, RUNTIME_SERVICE_CONN]),
  ) {}

  /** Throws MuxError on a frame that cannot be valid; the connection is then unusable. */
  push(chunk: Buffer): void {
    if (this.#failed) throw new MuxError('mux: the connection already failed');
    this.#buf = this.#buf.length ? Buffer.concat([this.#buf, chunk]) : chunk;
    let off = 0;
    while (this.#buf.length - off >= MUX_HEADER) {
      const connId = this.#buf.readUInt32BE(off);
      const length = this.#buf.readUInt32BE(off + 4);
      if (length > MAX_RECEIVED_PAYLOAD) {
        this.#failed = true;
        throw new MuxError(`mux: frame for conn ${connId} of ${length} bytes exceeds ${MAX_RECEIVED_PAYLOAD}`);
      }
      if (this.#buf.length - off - MUX_HEADER < length) break;
      const payload = this.#buf.subarray(off + MUX_HEADER, off + MUX_HEADER + length);
      off += MUX_HEADER + length;
      if (this.known.has(connId)) this.onData(connId, payload);
      else this.onUnknown(connId, length);
    }
    // Copy the tail so a large chunk is not kept alive by a small remainder.
    this.#buf = off === 0 ? this.#buf : Buffer.from(this.#buf.subarray(off));
  }

  /** The socket ended: a partial frame is an error. */
  end(): void {
    if (this.#buf.length) {
      const have = this.#buf.length;
      const want = have >= MUX_HEADER ? MUX_HEADER + this.#buf.readUInt32BE(4) : MUX_HEADER;
      this.#buf = Buffer.alloc(0);
      throw new MuxError(`mux: connection closed inside a frame (${have} of ${want} bytes)`);
    }
  }
}

/** Frames `data` for `connId`: a list of frames, each with at most MAX_FRAME_PAYLOAD payload bytes. */
export function frame(connId: number, data: Uint8Array, max = MAX_FRAME_PAYLOAD): Buffer[] {
  const out: Buffer[] = [];
  let off = 0;
  do {
    const part = data.subarray(off, Math.min(off + max, data.length));
    const f = Buffer.allocUnsafe(MUX_HEADER + part.length);
    f.writeUInt32BE(connId, 0);
    f.writeUInt32BE(part.length, 4);
    f.set(part, MUX_HEADER);
    out.push(f);
    off += part.length;
  } while (off < data.length);
  return out;
}
