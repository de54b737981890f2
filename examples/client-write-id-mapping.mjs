#!/usr/bin/env node
// iwsd/client: from inside a workspace, give a child user namespace its uid map.
// Usage (inside the workspace): node examples/client-write-id-mapping.mjs <socket> <pid> [container:host:size ...]
import { createClient } from 'iwsd/client';

const [socket, pid, ...lines] = process.argv.slice(2);
if (!socket || !pid) {
  console.error('usage: client-write-id-mapping.mjs <socket> <pid> [c:h:s ...]');
  process.exit(2);
}
const mapping = (lines.length ? lines : ['0:33333:1']).map((l) => {
  const [containerId, hostId, size] = l.split(':').map(Number);
  return { containerId, hostId, size };
});

const client = createClient(socket);
try {
  const res = await client.writeIdMapping({ pid: Number(pid), gid: false, mapping }, { deadline: 5000 });
  console.log(JSON.stringify(res));
} catch (err) {
  console.error(`${err.code}: ${err.message}`);
  process.exitCode = 1;
} finally {
  client.close();
}
