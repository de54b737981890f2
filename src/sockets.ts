/** Unix-socket gRPC servers: stale-file handling, binding, modes, shutdown. */
import { chmod, lstat, unlink } from 'node:fs/promises';

import * as grpc from '@grpc/grpc-js';

import { IwsError } from './errors.js';

/** Removes a stale socket file at `path`; refuses to remove anything else. */
export async function removeStaleSocket(path: string): Promise<void> {
  let st;
  try {
    st = await lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (!st.isSocket()) {
    throw new IwsError('FAILED_PRECONDITION', `${path} exists and is not a socket; move it away and try again`);
  }
  await unlink(path);
}

/** Binds `server` to a fresh unix socket at `path` with file mode `mode`. */
export async function bindUnix(server: grpc.Server, path: string, mode: number): Promise<void> {
  await removeStaleSocket(path);
  await new Promise<void>((resolve, reject) => {
    server.bindAsync(`unix:${path}`, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve()));
  });
  await chmod(path, mode);
}

/** Graceful shutdown with a deadline, then forced. */
export async function shutdown(server: grpc.Server, graceMs = 2000): Promise<void> {
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

export async function unlinkQuiet(path: string): Promise<void> {
  await unlink(path).catch(() => undefined);
}
