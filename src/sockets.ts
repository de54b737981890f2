/**
 * Unix-socket servers: binding with a mode where only the daemon can write,
 * placing the socket at its final name, shutdown.
 *
 * A socket never gets its mode at its final path: the name there may be
 * changed by someone else between bind and chmod (a workspace swaps its
 * daemon.sock for a symlink to a host file, and chmod follows it). It is
 * bound in a daemon-only directory on the same filesystem (`<state>/tmp`,
 * 0700), chmod'ed there, and renamed into place: rename replaces the final
 * name and never follows it.
 */
import { chmod, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';

import * as grpc from '@grpc/grpc-js';

let seq = 0;

/** A fresh socket path in the daemon-only directory `tmpDir`. */
export function privateSocketPath(tmpDir: string): string {
  return join(tmpDir, `s-${process.pid}-${++seq}.sock`);
}

/**
 * Listens (`listen(tmp)`) on a fresh path in the daemon-only directory
 * `tmpDir`, gives it `mode` there, and `place`s it at its final name (by
 * rename). On failure the temporary name is removed again.
 */
export async function listenPrivately(tmpDir: string, mode: number, listen: (path: string) => Promise<void>, place: (tmp: string) => Promise<void>): Promise<void> {
  const tmp = privateSocketPath(tmpDir);
  await unlinkQuiet(tmp);
  await listen(tmp);
  try {
    await chmod(tmp, mode);
    await place(tmp);
  } catch (err) {
    await unlinkQuiet(tmp);
    throw err;
  }
}

/**
 * Binds `server` to a fresh unix socket at `path` (in a directory only the
 * daemon can write) with file mode `mode`, by way of `tmpDir`; what was at
 * `path` is replaced.
 */
export async function bindUnix(server: grpc.Server, path: string, mode: number, tmpDir: string): Promise<void> {
  await listenPrivately(
    tmpDir,
    mode,
    (tmp) =>
      new Promise<void>((resolve, reject) => {
        server.bindAsync(`unix:${tmp}`, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve()));
      }),
    (tmp) => rename(tmp, path),
  );
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
