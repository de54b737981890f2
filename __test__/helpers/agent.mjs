// Runs as PID 1 of a throwaway container (a new PID namespace made by
// `unshare --pid --fork`). Takes JSON commands on stdin, one per line, and
// answers each with one JSON line on stdout:
//   {"id":1,"op":"spawnUserns"}                 -> {"id":1,"pid":<pid in this namespace>}
//   {"id":2,"op":"call","socket":S,"rpc":R,"request":{...}}
//                                               -> {"id":2,"ok":true,"response":{...}} | {"id":2,"ok":false,"code":"NOT_FOUND","details":"..."}
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

const protoPath = fileURLToPath(new URL('../../proto/workspace_daemon.proto', import.meta.url));
const def = protoLoader.loadSync(protoPath, { keepCase: false, longs: Number, enums: String, defaults: true, oneofs: true });
const Service = grpc.loadPackageDefinition(def).iws.InWorkspaceService;

const children = [];
const reply = (msg) => process.stdout.write(`${JSON.stringify(msg)}\n`);

function spawnUserns() {
  return new Promise((resolve, reject) => {
    const child = spawn('unshare', ['--user', '--', 'sh', '-c', 'echo ready; exec sleep 1000'], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(child);
    child.once('error', reject);
    child.stdout.once('data', () => resolve(child.pid));
  });
}

function call(socket, rpc, request) {
  return new Promise((resolve) => {
    const client = new Service(`unix:${socket}`, grpc.credentials.createInsecure());
    client[rpc](request, { deadline: Date.now() + 10_000 }, (err, response) => {
      client.close();
      if (err) resolve({ ok: false, code: grpc.status[err.code], details: err.details });
      else resolve({ ok: true, response });
    });
  });
}

const rl = createInterface({ input: process.stdin });
rl.on('line', async (line) => {
  const cmd = JSON.parse(line);
  try {
    if (cmd.op === 'spawnUserns') reply({ id: cmd.id, pid: await spawnUserns() });
    else if (cmd.op === 'call') reply({ id: cmd.id, ...(await call(cmd.socket, cmd.rpc, cmd.request)) });
    else reply({ id: cmd.id, error: `unknown op ${cmd.op}` });
  } catch (err) {
    reply({ id: cmd.id, error: String(err) });
  }
});
rl.on('close', () => {
  for (const c of children) c.kill('SIGKILL');
  process.exit(0);
});
reply({ ready: true, pid: process.pid });
