/**
 * Workspace sockets: one unix socket per workspace in front of the one
 * grpc.Server that serves every workspace. A connection is handed to gRPC
 * only after its peer passed a check (the native peer-credential check: the
 * connecting process must be inside the workspace); refused connections are
 * closed before a single byte of HTTP/2 is read, and logged. Each accepted
 * connection is entered in a table under a unique key, which grpc-js then
 * reports as the call's peer: that is how a call finds its workspace and its
 * verified caller.
 */
import { rename } from 'node:fs/promises';
import { createServer, type Server as NetServer, type Socket } from 'node:net';

import type * as grpc from '@grpc/grpc-js';

import { toIwsError } from './errors.js';
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
    onRefused: () => void,
  ) {
    this.#net = createServer({ pauseOnConnect: true }, (socket) => {
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
      check(fdOf(socket)).then(
        (peer) => {
          if (socket.destroyed) return;
          // grpc-js reports `remoteAddress` as the call's peer: make it the
          // key to this connection's verified credentials and workspace.
          const key = table.add(peer, context);
          Object.defineProperty(socket, 'remoteAddress', { value: key, configurable: true });
          socket.once('close', () => table.delete(key));
          injector.injectConnection(socket);
          socket.resume();
        },
        (err: unknown) => {
          const e = toIwsError(err);
          log.warn({ socket: path, refused: e.code, reason: e.message, detail: e.detail }, `connection refused: ${e.message}`);
          onRefused();
          socket.destroy();
        },
      );
    });
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
    onRefused?: () => void;
  }): Promise<GuardedSocket<T>> {
    const g = new GuardedSocket(opts.path, opts.injector, opts.table, opts.context, opts.check, opts.log, opts.onRefused ?? (() => undefined));
    g.#unlinkOnClose = opts.unlinkOnClose ?? true;
    const listen = (tmp: string) =>
      new Promise<void>((resolve, reject) => {
        g.#net.once('error', reject);
        g.#net.listen(tmp, () => {
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
