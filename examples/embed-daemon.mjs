#!/usr/bin/env node
// iwsd: run the daemon inside this Node process, register one container,
// print its workspace socket, and stop when stdin closes (or on SIGINT).
// Usage (as root): node examples/embed-daemon.mjs <container-init-host-pid> [state-dir]
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { startDaemon } from 'iwsd';

const [hostPid, stateDir = join(mkdtempSync(join(tmpdir(), 'iwsd-example-')), 'state')] = process.argv.slice(2);
if (!hostPid) {
  console.error('usage: embed-daemon.mjs <container-init-host-pid> [state-dir]');
  process.exit(2);
}

const daemon = await startDaemon({ stateDir, logLevel: 'warn' });
try {
  const ws = await daemon.addWorkspace({ id: 'example', hostPid: Number(hostPid) });
  console.log(JSON.stringify({ socket: ws.socketPath }));
  await new Promise((resolve) => {
    process.stdin.on('end', resolve).resume();
    process.once('SIGINT', resolve);
  });
} finally {
  await daemon.close();
}
