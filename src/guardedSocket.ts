/**
 * A unix socket in front of a grpc.Server that hands a connection to gRPC
 * only after its peer passed a check (the native peer-credential check: the
 * connecting process must be inside the workspace). Refused connections are
 * closed before a single byte of HTTP/2 is read, and logged.
 */
import { chmod } from 'node:fs/promises';
import { createServer, type Server as NetServer, type Socket } from 'node:net';

import * as grpc from '@grpc/grpc-js';

import { toIwsError } from './errors.js';
import type { Logger } from './log.js';
import type { Peer } from './native.js';
import { removeStaleSocket, unlinkQuiet } from './sockets.js';

/** Node's accepted unix sockets carry their fd on the (internal) handle. */
function fdOf(socket: Socket): number {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  return typeof fd === 'number' ? fd : -1;
}

export class GuardedSocket {
  #net: NetServer;
  #injector: ReturnType<grpc.Server['createConnectionInjector']>;
  #peers = new Map<string, Peer>();
  #sockets = new Set<Socket>();
  #n = 0;

  private constructor(
    readonly path: string,
    server: grpc.Server,
    check: (fd: number) => Promise<Peer>,
    log: Logger,
    onRefused: () => void,
  ) {
    this.#injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
    this.#net = createServer({ pauseOnConnect: true }, (socket) => {
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
      check(fdOf(socket)).then(
        (peer) => {
          if (socket.destroyed) return;
          // grpc-js reports `remoteAddress` as the call's peer: make it a key
          // to this connection's verified credentials.
          const key = `iwsd-peer-${++this.#n}`;
          Object.defineProperty(socket, 'remoteAddress', { value: key, configurable: true });
          this.#peers.set(key, peer);
          socket.once('close', () => this.#peers.delete(key));
          this.#injector.injectConnection(socket);
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

  /** Listens on `path` (a stale socket file there is replaced) with file mode `mode`. */
  static async listen(opts: {
    path: string;
    mode: number;
    server: grpc.Server;
    check: (fd: number) => Promise<Peer>;
    log: Logger;
    onRefused?: () => void;
  }): Promise<GuardedSocket> {
    const g = new GuardedSocket(opts.path, opts.server, opts.check, opts.log, opts.onRefused ?? (() => undefined));
    await removeStaleSocket(opts.path);
    await new Promise<void>((resolve, reject) => {
      g.#net.once('error', reject);
      g.#net.listen(opts.path, () => {
        g.#net.off('error', reject);
        resolve();
      });
    });
    await chmod(opts.path, opts.mode);
    return g;
  }

  /** The verified peer of a call on this socket. */
  peerOf(call: { getPeer(): string }): Peer | undefined {
    return this.#peers.get(call.getPeer());
  }

  /** Stops accepting, closes every connection, removes the socket file. */
  async close(): Promise<void> {
    // net.Server#close waits for open connections: end them first.
    const closed = new Promise<void>((resolve) => this.#net.close(() => resolve()));
    for (const s of this.#sockets) s.destroy();
    await closed;
    this.#injector.destroy();
    await unlinkQuiet(this.path);
  }
}
