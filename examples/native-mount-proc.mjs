#!/usr/bin/env node
// iwsd/native: mount a masked proc inside a container, look at it, unmount it.
// Usage (as root): node examples/native-mount-proc.mjs <container-init-host-pid> [pid-inside=1] [target=/proc]
import { readdirSync } from 'node:fs';

import { Container, mountProc, umountProc } from 'iwsd/native';

const [hostPid, pid = '1', target = '/proc'] = process.argv.slice(2);
if (!hostPid) {
  console.error('usage: native-mount-proc.mjs <container-init-host-pid> [pid-inside] [target]');
  process.exit(2);
}

const container = await Container.open(Number(hostPid));
try {
  const { mountId } = await mountProc(container, { pid: Number(pid), target });
  const entries = readdirSync(`/proc/${container.hostPid}/root${target}`).length;
  console.log(JSON.stringify({ mounted: target, mountId, entries }));
  await umountProc(container, { pid: Number(pid), target, owned: [mountId] });
  console.log(JSON.stringify({ unmounted: target }));
} finally {
  container.close();
}
