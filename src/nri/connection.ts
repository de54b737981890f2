/**
 * One plugin connection to the runtime's NRI socket: the mux, a ttrpc server
 * on conn 1 (the runtime's requests: Configure, Synchronize, CreateContainer,
 * ...) and a ttrpc client on conn 2 (RegisterPlugin). Both run at once: the
 * runtime sends Configure before it answers RegisterPlugin.
 */
import { EventEmitter } from 'node:events';
import { connect as netConnect, type Socket } from 'node:net';

import { Demuxer, frame, PLUGIN_SERVICE_CONN, RUNTIME_SERVICE_CONN } from './mux.js';
import { decode, encode, method as protoMethod, PLUGIN_SERVICE, RUNTIME_SERVICE } from './proto.js';
import {
  CODE,
  decodeRequest,
  decodeResponse,
  encodeMessage,
  encodeRequest,
  encodeResponse,
  StatusError,
  TtrpcReader,
  TYPE_REQUEST,
  TYPE_RESPONSE,
  type TtrpcMessage,
} from './ttrpc.js';

export interface RequestContext {
  /** The runtime's deadline for this request (ms), 0 when it sent none. */
  timeoutMs: number;
  metadata: Record<string, string>;
}

/**
 * Serves one Plugin method. Throw StatusError for a status; a method the
 * handler does not serve answers UNIMPLEMENTED (`undefined` return).
 */
export type Handler = (method: string, request: Record<string, unknown>, ctx: RequestContext) => Promise<Record<string, unknown> | undefined>;

export interface ConnectionEvents {
  close: [error: Error | undefined];
  protocolWarning: [message: string];
}

export class NriConnection extends EventEmitter<ConnectionEvents> {
  #demux: Demuxer;
  #serverIn: TtrpcReader;
  #clientIn: TtrpcReader;
  #nextStream = 1;
  #calls = new Map<number, { resolve: (b: Buffer) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  #closed = false;
  #error: Error | undefined;

  constructor(
    readonly socket: Socket,
    private readonly handler: Handler,
  ) {
    super();
    this.#serverIn = new TtrpcReader((m) => this.#onRequest(m));
    this.#clientIn = new TtrpcReader((m) => this.#onResponse(m));
    this.#demux = new Demuxer(
      (conn, payload) => (conn === PLUGIN_SERVICE_CONN ? this.#serverIn : this.#clientIn).push(payload),
      (conn, length) => this.emit('protocolWarning', `mux: dropped a ${length}-byte frame for unknown connection ${conn}`),
    );
    socket.on('data', (chunk: Buffer) => {
      try {
        this.#demux.push(chunk);
      } catch (err) {
        this.close(err as Error);
      }
    });
    socket.on('end', () => {
      try {
        this.#demux.end();
        const partial = this.#serverIn.pending || this.#clientIn.pending;
        if (partial) throw new Error(`ttrpc: connection closed inside a message (${partial} bytes held)`);
        this.close(new Error('the runtime closed the NRI connection'));
      } catch (err) {
        this.close(err as Error);
      }
    });
    socket.on('error', (err) => this.close(err));
    socket.on('close', () => this.close(new Error('the NRI connection closed')));
  }

  /** Connects to the runtime's NRI socket. */
  static connect(path: string, handler: Handler): Promise<NriConnection> {
    return new Promise((resolve, reject) => {
      const s = netConnect(path);
      const fail = (err: Error) => {
        s.destroy();
        reject(err);
      };
      s.once('error', fail);
      s.once('connect', () => {
        s.off('error', fail);
        resolve(new NriConnection(s, handler));
      });
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Why the connection closed (the first error). */
  get error(): Error | undefined {
    return this.#error;
  }

  #send(conn: number, m: { streamId: number; type: number; data: Uint8Array }): void {
    if (this.#closed) return;
    // One ttrpc message, cut into small mux frames written back to back.
    for (const f of frame(conn, encodeMessage(m))) this.socket.write(f);
  }

  #onRequest(m: TtrpcMessage): void {
    if (m.type !== TYPE_REQUEST) {
      this.emit('protocolWarning', `ttrpc: ignored a message of type ${m.type} on the plugin connection`);
      return;
    }
    this.#serve(m).catch((err: unknown) => this.emit('protocolWarning', `ttrpc: the reply to stream ${m.streamId} was not sent: ${(err as Error).message}`));
  }

  async #serve(m: TtrpcMessage): Promise<void> {
    let reply: Uint8Array;
    try {
      const req = decodeRequest(m.data);
      const metadata = Object.fromEntries((req.metadata ?? []).map((kv) => [kv.key, kv.value]));
      const types = req.service === PLUGIN_SERVICE ? protoMethod(PLUGIN_SERVICE, req.method) : undefined;
      if (!types) throw new StatusError(CODE.UNIMPLEMENTED, `${req.service}/${req.method} is not served`);
      const out = await this.handler(req.method, decode(types.request, req.payload), { timeoutMs: Math.floor((req.timeoutNano ?? 0) / 1e6), metadata });
      if (out === undefined) throw new StatusError(CODE.UNIMPLEMENTED, `${req.method} is not served by this plugin`);
      reply = encodeResponse({ payload: encode(types.response, out) });
    } catch (err) {
      const code = err instanceof StatusError ? err.code : CODE.INTERNAL;
      reply = encodeResponse({ code, message: (err as Error).message });
    }
    this.#send(PLUGIN_SERVICE_CONN, { streamId: m.streamId, type: TYPE_RESPONSE, data: reply });
  }

  #onResponse(m: TtrpcMessage): void {
    const call = this.#calls.get(m.streamId);
    if (m.type !== TYPE_RESPONSE || !call) {
      this.emit('protocolWarning', `ttrpc: ignored a message of type ${m.type} for stream ${m.streamId} on the runtime connection`);
      return;
    }
    this.#calls.delete(m.streamId);
    clearTimeout(call.timer);
    try {
      call.resolve(decodeResponse(m.data));
    } catch (err) {
      call.reject(err as Error);
    }
  }

  /** Calls a Runtime method (conn 2). */
  async call(name: string, request: Record<string, unknown>, timeoutMs = 5000): Promise<Record<string, unknown>> {
    const types = protoMethod(RUNTIME_SERVICE, name);
    if (!types) throw new Error(`no Runtime method ${name}`);
    if (this.#closed) throw this.#error ?? new Error('NRI connection closed');
    const streamId = this.#nextStream;
    this.#nextStream += 2;
    const payload = encode(types.request, request);
    const reply = new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#calls.delete(streamId);
        reject(new StatusError(CODE.DEADLINE_EXCEEDED, `${name}: no reply within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#calls.set(streamId, { resolve, reject, timer });
    });
    this.#send(RUNTIME_SERVICE_CONN, {
      streamId,
      type: TYPE_REQUEST,
      data: encodeRequest({ service: RUNTIME_SERVICE, method: name, payload: Buffer.from(payload), timeoutNano: timeoutMs * 1e6 }),
    });
    return decode(types.response, await reply);
  }

  /** Closes the connection (idempotent); pending calls fail with `error`. */
  close(error?: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#error = error;
    for (const c of this.#calls.values()) {
      clearTimeout(c.timer);
      c.reject(error ?? new Error('NRI connection closed'));
    }
    this.#calls.clear();
    this.socket.destroy();
    this.emit('close', error);
  }
}
