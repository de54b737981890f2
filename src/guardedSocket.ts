/**
 * Workspace sockets: one unix socket per workspace in front of the one
 * grpc.Server that serves every workspace. A connection is handed to gRPC
 * only after
 *
 *   1. it fits the caps: at most `perWorkspace` open connections on this
 *      socket and `total` on all of them (checked first, before any native
 *      work is spent on it);
 *   2. its peer passed the native peer-credential check (the connecting
 *      process must be inside the workspace); and
 *   3. its client sent the HTTP/2 connection preface within
 *      `prefaceTimeoutMs` (a connection that sends nothing costs a socket
 *      here, never an HTTP/2 session, and is closed after it).
 *
 * A refused connection is told why when a refusal slot is free: a minimal
 * HTTP/2 server (node:http2, no gRPC) answers its first call with a
 * trailers-only gRPC status (PERMISSION_DENIED for the peer check,
 * RESOURCE_EXHAUSTED for a cap) and closes it; with no slot free it is just
 * closed. Each accepted connection is entered in a table under a unique key,
 * which grpc-js then reports as the call's peer: that is how a call finds
 * its workspace and its verified caller.
 */
import { rename } from 'node:fs/promises';
import { constants as h2, createServer as createH2Server } from 'node:http2';
import { createServer, type Server as NetServer, type Socket } from 'node:net';

import type * as grpc from '@grpc/grpc-js';

import { IwsError, toIwsError } from './errors.js';
import type { Logger } from './log.js';
import type { Peer } from './native.js';
import { listenPrivately, unlinkQuiet } from './sockets.js';

/** Node's accepted unix sockets carry their fd on the (internal) handle. */
function fdOf(socket: Socket): number {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  return typeof fd === 'number' ? fd : -1;
}

type Injector = ReturnType<grpc.Server['createConnectionInjector']>;

/** Verified connections of every workspace socket, by the key grpc-js reports as the call's peer. */
export class ConnectionTable<T> {
  #entries = new Map<string, { peer: Peer; context: T }>();
  #n = 0;

  add(peer: Peer, context: T): string {
    const key = `iwsd-conn-${++this.#n}`;
    this.#entries.set(key, { peer, context });
    return key;
  }

  delete(key: string): void {
    this.#entries.delete(key);
  }

  /** The verified peer and context of a call's connection; undefined once it closed. */
  of(call: { getPeer(): string }): { peer: Peer; context: T } | undefined {
    return this.#entries.get(call.getPeer());
  }
}

/** What HTTP/2 clients send first (RFC 9113, 3.4). */
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/**
 * Reads until the first PREFACE.length bytes are in, then puts them back
 * (unshift) for whoever takes the socket next: 'ok', 'bad' (not HTTP/2),
 * 'timeout' or 'closed'.
 */
function awaitPreface(socket: Socket, ms: number): Promise<'ok' | 'bad' | 'timeout' | 'closed'> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let n = 0;
    const finish = (r: 'ok' | 'bad' | 'timeout' | 'closed') => {
      clearTimeout(timer);
      socket.off('readable', onReadable);
      socket.off('close', onClose);
      if (chunks.length) socket.unshift(Buffer.concat(chunks));
      resolve(r);
    };
    const onReadable = () => {
      let c: Buffer | null;
      while ((c = socket.read() as Buffer | null) !== null) {
        chunks.push(c);
        n += c.length;
        if (n >= PREFACE.length) {
          finish(Buffer.concat(chunks).subarray(0, PREFACE.length).equals(PREFACE) ? 'ok' : 'bad');
          return;
        }
      }
    };
    const onClose = () => finish('closed');
    const timer = setTimeout(() => finish('timeout'), ms);
    socket.on('readable', onReadable);
    socket.once('close', onClose);
  });
}

/** grpc-message is percent-encoded (gRPC over HTTP/2: everything outside 0x20-0x7E, and '%'). */
function grpcMessage(s: string): string {
  return s.replace(/[^\x20-\x24\x26-\x7e]/gu, (c) => encodeURIComponent(c));
}

/** Limits shared by every workspace socket (see config `connections`). */
export interface ConnectionLimits {
  perWorkspace: number;
  total: number;
  prefaceTimeoutMs: number;
  refusalAnswers: number;
}

/** Open connections across all workspace sockets, and refusals being answered. */
export class ConnectionBudget {
  open = 0;
  answering = 0;
  constructor(readonly limits: () => ConnectionLimits) {}
}

export interface GuardedSocketEvents {
  /** A connection was refused: `peer` (the check failed) or `cap` (a connection cap). */
  onRefused?: (kind: 'peer' | 'cap') => void;
  /** A connection was closed without its client sending the HTTP/2 preface. */
  onNoPreface?: () => void;
}

export class GuardedSocket<T> {
  #net: NetServer;
  #sockets = new Set<Socket>();
  #unlinkOnClose = true;

  private constructor(
    readonly path: string,
    injector: Injector,
    table: ConnectionTable<T>,
    context: T,
    check: (fd: number) => Promise<Peer>,
    log: Logger,
    budget: ConnectionBudget,
    events: GuardedSocketEvents,
  ) {
    this.#net = createServer({ pauseOnConnect: true }, (socket) => {
      const lim = budget.limits();
      // Caps first: no native work (the peer check) for a connection over one.
      if (this.#sockets.size >= lim.perWorkspace || budget.open >= lim.total) {
        const which =
          this.#sockets.size >= lim.perWorkspace
            ? `this workspace already holds ${this.#sockets.size} connections to iwsd (limit ${lim.perWorkspace}); close idle ones`
            : `iwsd holds ${budget.open} workspace connections (node-wide limit ${lim.total}); retry later`;
        log.warn({ socket: path, refused: 'RESOURCE_EXHAUSTED', reason: which, open: this.#sockets.size, total: budget.open }, `connection refused: ${which}`);
        events.onRefused?.('cap');
        this.#refuse(socket, new IwsError('RESOURCE_EXHAUSTED', which), budget, false);
        return;
      }
      this.#sockets.add(socket);
      budget.open++;
      socket.once('close', () => {
        this.#sockets.delete(socket);
        budget.open--;
      });
      const checked = check(fdOf(socket)).then(
        (peer) => ({ peer }),
        (err: unknown) => ({ err: toIwsError(err) }),
      );
      Promise.all([checked, awaitPreface(socket, lim.prefaceTimeoutMs)]).then(
        ([c, preface]) => {
          if (socket.destroyed) return;
          if (preface !== 'ok') {
            log.debug({ socket: path, preface }, preface === 'bad' ? 'connection closed: not HTTP/2' : `connection closed: no HTTP/2 preface within ${lim.prefaceTimeoutMs} ms`);
            if (preface === 'timeout') events.onNoPreface?.();
            socket.destroy();
            return;
          }
          if ('err' in c) {
            const e = c.err;
            log.warn({ socket: path, refused: e.code, reason: e.message, detail: e.detail }, `connection refused: ${e.message}`);
            events.onRefused?.('peer');
            this.#refuse(socket, new IwsError('PERMISSION_DENIED', `connection refused by iwsd's peer check: ${e.message}`), budget, true);
            return;
          }
          // grpc-js reports `remoteAddress` as the call's peer: make it the
          // key to this connection's verified credentials and workspace.
          const key = table.add(c.peer, context);
          Object.defineProperty(socket, 'remoteAddress', { value: key, configurable: true });
          socket.once('close', () => table.delete(key));
          log.debug({ socket: path, peer: { pid: c.peer.pid, uid: c.peer.uid }, open: this.#sockets.size }, 'connection accepted');
          injector.injectConnection(socket);
          socket.resume();
        },
        (err: unknown) => {
          log.error({ socket: path, err }, 'connection setup failed');
          socket.destroy();
        },
      );
    });
  }

  /**
   * Answers the connection's first call with `err` as a gRPC status (when a
   * refusal slot is free) and closes it; every refused connection is gone
   * within the preface timeout. `counted`: it is in this socket's set already.
   */
  #refuse(socket: Socket, err: IwsError, budget: ConnectionBudget, counted: boolean): void {
    const lim = budget.limits();
    if (budget.answering >= lim.refusalAnswers) {
      socket.destroy();
      return;
    }
    budget.answering++;
    if (!counted) {
      // Held until answered: it counts against the socket's cap meanwhile.
      this.#sockets.add(socket);
      budget.open++;
    }
    const timer = setTimeout(() => socket.destroy(), lim.prefaceTimeoutMs);
    socket.once('close', () => {
      clearTimeout(timer);
      budget.answering--;
      if (!counted) {
        this.#sockets.delete(socket);
        budget.open--;
      }
    });
    const h2s = createH2Server({ maxSessionMemory: 1, settings: { maxConcurrentStreams: 1, maxHeaderListSize: 16 * 1024 } });
    h2s.on('stream', (stream) => {
      stream.on('error', () => undefined);
      stream.respond(
        { [h2.HTTP2_HEADER_STATUS]: 200, [h2.HTTP2_HEADER_CONTENT_TYPE]: 'application/grpc+proto', 'grpc-status': String(err.grpcStatus), 'grpc-message': grpcMessage(err.message) },
        { endStream: true },
      );
      stream.session?.close();
    });
    h2s.on('sessionError', () => socket.destroy());
    h2s.on('session', (session) => session.on('error', () => socket.destroy()));
    h2s.emit('connection', socket);
    socket.resume();
  }

  /**
   * Listens on `path` with file mode `mode`: bound and given its mode in the
   * daemon-only directory `tmpDir`, then put at `path` by `place` (default: a
   * rename, which replaces whatever is at `path` and never follows it).
   */
  static async listen<T>(opts: {
    path: string;
    mode: number;
    tmpDir: string;
    place?: (tmp: string) => Promise<void>;
    /** Remove `path` on close (default true); false where the directory is sealed. */
    unlinkOnClose?: boolean;
    injector: Injector;
    table: ConnectionTable<T>;
    context: T;
    check: (fd: number) => Promise<Peer>;
    log: Logger;
    budget: ConnectionBudget;
    events?: GuardedSocketEvents;
  }): Promise<GuardedSocket<T>> {
    const g = new GuardedSocket(opts.path, opts.injector, opts.table, opts.context, opts.check, opts.log, opts.budget, opts.events ?? {});
    g.#unlinkOnClose = opts.unlinkOnClose ?? true;
    const listen = (tmp: string) =>
      new Promise<void>((resolve, reject) => {
        g.#net.once('error', reject);
        g.#net.listen({ path: tmp, backlog: 511 }, () => {
          g.#net.off('error', reject);
          resolve();
        });
      });
    try {
      await listenPrivately(opts.tmpDir, opts.mode, listen, opts.place ?? ((tmp) => rename(tmp, opts.path)));
    } catch (err) {
      await g.close();
      throw err;
    }
    return g;
  }

  /** Open connections of this socket (pending, served, being refused). */
  get connections(): number {
    return this.#sockets.size;
  }

  /** Stops accepting, closes every connection (calls in flight end with them), removes the socket file (see `unlinkOnClose`). */
  async close(): Promise<void> {
    if (!this.#net.listening) return;
    // net.Server#close waits for open connections: end them first.
    const closed = new Promise<void>((resolve) => this.#net.close(() => resolve()));
    for (const s of this.#sockets) s.destroy();
    await closed;
    if (this.#unlinkOnClose) await unlinkQuiet(this.path);
  }
}
