// Runs as PID 1 of a throwaway container (a new PID namespace made by
// `unshare --pid --fork`). Takes JSON commands on stdin, one per line, and
// answers each with one JSON line on stdout:
//   {"id":1,"op":"spawnUserns"}                 -> {"id":1,"pid":<pid in this namespace>}
//   {"id":2,"op":"call","socket":S,"rpc":R,"request":{...}[,"metadata":{K:V}][,"deadlineMs":N]}
//                                               -> {"id":2,"ok":true,"response":{...}} | {"id":2,"ok":false,"code":"NOT_FOUND","details":"..."}
//   {"id":3,"op":"spawnChroot","root":DIR}      -> {"id":3,"pid":N}  (busybox sleep, chrooted to DIR)
//   {"id":4,"op":"callMany","socket":S,"calls":[{rpc,request},...],"concurrency":C}
//                                               -> {"id":4,"results":[{ok,code,details},...]}  (one connection)
//   {"id":11,"op":"whoami"}                     -> {"id":11,"pid":<pid here>,"euid":N}
//   {"id":12,"op":"run","argv":[...]}           -> {"id":12,"code":N,"stdout":S,"stderr":S}  (as this process's child)
//   {"id":13,"op":"spawn","argv":[...]}         -> {"id":13,"pid":N}  (left running; killed with the agent)
//   {"id":14,"op":"callHeld",...}               -> like "call", over one connection kept open
//   {"id":15,"op":"seteuid","euid":N}           -> {"id":15,"euid":N}
//   {"id":5,"op":"swap","dir":D,"link":L,"target":T} -> starts a process that swaps D between a
//                                                  directory and a symlink to T until "unswap"
//   {"id":6,"op":"hold","name":N,"socket":S,"n":K} -> opens K raw connections that send nothing
//                                                  -> {"id":6,"connected":C}  (once each connected or failed)
//   {"id":7,"op":"held","name":N}                -> {"id":7,"total":K,"closed":X}  (closed by the other side)
//   {"id":8,"op":"unhold","name":N}              -> closes the rest
//   {"id":9,"op":"flood","socket":S,"calls":[{rpc,request}],"concurrency":C,"clients":K}
//                                               -> keeps C calls outstanding over K clients until "unflood"
//   {"id":10,"op":"unflood"}                     -> {"id":10,"calls":N,"codes":{CODE:count}}
import { spawn, spawnSync } from 'node:child_process';
import * as net from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

const protoPath = fileURLToPath(new URL('../../proto/workspace_daemon.proto', import.meta.url));
const def = protoLoader.loadSync(protoPath, { keepCase: false, longs: Number, enums: String, defaults: true, oneofs: true });
const Service = grpc.loadPackageDefinition(def).iws.InWorkspaceService;
// protobufjs generates each message type's encoder and decoder on first use
// (milliseconds each): done here once, so that no call's latency measured
// below (the benchmark's one-shots are their process's first call of that
// method) carries the client's own warm-up.
for (const m of Object.values(Service.service)) {
  m.requestDeserialize(m.requestSerialize({}));
  m.responseDeserialize(m.responseSerialize({}));
}

const children = [];

// Timed loops for the benchmark: `rounds` repetitions of `calls` over one
// connection; latency of each call in ms, measured here (client side).
async function timed(socket, calls, rounds, warmup, values) {
  const client = new Service(`unix:${socket}`, grpc.credentials.createInsecure());
  const out = {};
  const errors = [];
  try {
    for (let r = 0; r < warmup + rounds; r++) {
      for (const c of calls) {
        const req = JSON.parse(JSON.stringify(c.request).replaceAll('"$ROUND"', String(values ? values[r] : r)));
        const t0 = process.hrtime.bigint();
        const res = await callOn(client, c.rpc, req);
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        if (!res.ok) errors.push(`${c.rpc}: ${res.code} ${res.details}`);
        if (r >= warmup) (out[c.rpc] ??= []).push(ms);
      }
    }
  } finally {
    client.close();
  }
  return { latencies: out, errors };
}
const reply = (msg) => process.stdout.write(`${JSON.stringify(msg)}\n`);

function spawnUserns() {
  return new Promise((resolve, reject) => {
    const child = spawn('unshare', ['--user', '--', 'sh', '-c', 'echo ready; exec sleep 1000'], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(child);
    child.once('error', reject);
    child.stdout.once('data', () => resolve(child.pid));
  });
}

// `metadata`: request metadata as { key: value } (none by default, as Gitpod's clients send none);
// `deadlineMs`: the call's deadline from now (30 s by default).
function callOn(client, rpc, request, metadata = {}, deadlineMs = 30_000) {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(metadata)) md.set(k, v);
  return new Promise((resolve) => {
    client[rpc](request, md, { deadline: Date.now() + deadlineMs }, (err, response) => {
      if (err) resolve({ ok: false, code: grpc.status[err.code], details: err.details });
      else resolve({ ok: true, response });
    });
  });
}

async function call(socket, rpc, request, metadata, deadlineMs) {
  const client = new Service(`unix:${socket}`, grpc.credentials.createInsecure());
  try {
    return await callOn(client, rpc, request, metadata, deadlineMs);
  } finally {
    client.close();
  }
}

async function callMany(socket, calls, concurrency = 1) {
  const client = new Service(`unix:${socket}`, grpc.credentials.createInsecure());
  const results = new Array(calls.length);
  let next = 0;
  const worker = async () => {
    while (next < calls.length) {
      const i = next++;
      results[i] = await callOn(client, calls[i].rpc, calls[i].request);
    }
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, worker));
  } finally {
    client.close();
  }
  return results;
}

function spawnChroot(root) {
  return new Promise((resolve, reject) => {
    const child = spawn('unshare', [`--root=${root}`, '--', '/bin/busybox', 'sh', '-c', 'echo ready; exec /bin/busybox sleep 1000'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(child);
    child.once('error', reject);
    child.stdout.once('data', () => resolve(child.pid));
  });
}

// Swaps `dir` between a real directory and a symlink to `target`, as fast as
// it can, in a process of its own inside the container.
const SWAPPER = `
const fs = require('node:fs');
const [dir, link, target] = process.argv.slice(1);
const tmp = dir + '.tmp';
fs.symlinkSync(target, link);
let announced = false;
for (;;) {
  fs.renameSync(dir, tmp); fs.renameSync(link, dir); fs.renameSync(dir, link); fs.renameSync(tmp, dir);
  if (!announced) { announced = true; process.stdout.write('swapping\\n'); }
}`;
let swapper;
// One connection kept across calls (callHeld).
let heldClient;

// Standard gRPC services, as generic tooling would use them.
const reflectionProto = fileURLToPath(new URL('../../node_modules/@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto', import.meta.url));
const Reflection = grpc.loadPackageDefinition(protoLoader.loadSync(reflectionProto, { keepCase: true })).grpc.reflection.v1.ServerReflection;
const healthProto = fileURLToPath(new URL('../../node_modules/grpc-health-check/proto/health/v1/health.proto', import.meta.url));
const Health = grpc.loadPackageDefinition(protoLoader.loadSync(healthProto, { keepCase: true, enums: String })).grpc.health.v1.Health;

function health(socket, service) {
  return new Promise((resolve) => {
    const c = new Health(`unix:${socket}`, grpc.credentials.createInsecure());
    c.Check({ service }, { deadline: Date.now() + 5000 }, (err, res) => {
      c.close();
      resolve(err ? { error: grpc.status[err.code] } : { status: res.status });
    });
  });
}

function reflect(socket) {
  return new Promise((resolve) => {
    const c = new Reflection(`unix:${socket}`, grpc.credentials.createInsecure());
    const call = c.ServerReflectionInfo({ deadline: Date.now() + 5000 });
    call.on('data', (res) => {
      resolve({ services: (res.list_services_response?.service ?? []).map((s) => s.name) });
      call.end();
      c.close();
    });
    call.on('error', (err) => resolve({ error: grpc.status[err.code] }));
    call.write({ list_services: '*' });
  });
}

const held = new Map();

function hold(name, socket, n) {
  const set = { socks: [], closed: 0 };
  held.set(name, set);
  let connected = 0;
  return Promise.all(
    Array.from({ length: n }, () => new Promise((resolve) => {
      const s = net.connect(socket);
      set.socks.push(s);
      s.on('error', () => undefined);
      s.on('data', () => undefined);
      s.once('connect', () => {
        connected++;
        resolve();
      });
      s.once('close', () => {
        set.closed++;
        resolve();
      });
    })),
  ).then(() => connected);
}

let flooding;

function flood(socket, calls, concurrency, clients) {
  const cs = Array.from({ length: clients }, () => new Service(`unix:${socket}`, grpc.credentials.createInsecure()));
  const state = { stop: false, calls: 0, codes: {}, done: undefined };
  let i = 0;
  const worker = async () => {
    while (!state.stop) {
      const c = calls[i % calls.length];
      const client = cs[i++ % cs.length];
      const r = await callOn(client, c.rpc, c.request);
      state.calls++;
      const code = r.ok ? 'OK' : r.code;
      state.codes[code] = (state.codes[code] ?? 0) + 1;
    }
  };
  state.done = Promise.all(Array.from({ length: concurrency }, worker)).then(() => cs.forEach((c) => c.close()));
  flooding = state;
}

const rl = createInterface({ input: process.stdin });
rl.on('line', async (line) => {
  const cmd = JSON.parse(line);
  try {
    if (cmd.op === 'spawnUserns') reply({ id: cmd.id, pid: await spawnUserns() });
    else if (cmd.op === 'timed') reply({ id: cmd.id, ...(await timed(cmd.socket, cmd.calls, cmd.rounds, cmd.warmup ?? 0, cmd.values)) });
    else if (cmd.op === 'health') reply({ id: cmd.id, ...(await health(cmd.socket, cmd.service ?? '')) });
    else if (cmd.op === 'reflect') reply({ id: cmd.id, ...(await reflect(cmd.socket)) });
    else if (cmd.op === 'spawnChroot') reply({ id: cmd.id, pid: await spawnChroot(cmd.root) });
    else if (cmd.op === 'callMany') reply({ id: cmd.id, results: await callMany(cmd.socket, cmd.calls, cmd.concurrency) });
    else if (cmd.op === 'swap') {
      swapper = spawn(process.execPath, ['-e', SWAPPER, cmd.dir, cmd.link, cmd.target], { stdio: ['ignore', 'pipe', 'inherit'] });
      children.push(swapper);
      // Answer only once it is really swapping.
      await new Promise((resolve, reject) => {
        swapper.stdout.once('data', resolve);
        swapper.once('exit', (code) => reject(new Error(`swapper exited (${code})`)));
      });
      reply({ id: cmd.id, pid: swapper.pid });
    } else if (cmd.op === 'unswap') {
      const done = new Promise((r) => swapper.once('exit', r));
      swapper.kill('SIGKILL');
      await done;
      reply({ id: cmd.id });
    }
    else if (cmd.op === 'hold') reply({ id: cmd.id, connected: await hold(cmd.name, cmd.socket, cmd.n) });
    else if (cmd.op === 'held') {
      const h = held.get(cmd.name);
      reply({ id: cmd.id, total: h.socks.length, closed: h.closed });
    } else if (cmd.op === 'unhold') {
      for (const s of held.get(cmd.name)?.socks ?? []) s.destroy();
      held.delete(cmd.name);
      reply({ id: cmd.id });
    } else if (cmd.op === 'flood') {
      flood(cmd.socket, cmd.calls, cmd.concurrency, cmd.clients ?? 1);
      reply({ id: cmd.id });
    } else if (cmd.op === 'unflood') {
      flooding.stop = true;
      await flooding.done;
      reply({ id: cmd.id, calls: flooding.calls, codes: flooding.codes });
    } else if (cmd.op === 'callHeld') {
      heldClient ??= new Service(`unix:${cmd.socket}`, grpc.credentials.createInsecure());
      reply({ id: cmd.id, ...(await callOn(heldClient, cmd.rpc, cmd.request)) });
    } else if (cmd.op === 'seteuid') {
      process.seteuid(cmd.euid);
      reply({ id: cmd.id, euid: process.geteuid() });
    }
    else if (cmd.op === 'whoami') reply({ id: cmd.id, pid: process.pid, euid: process.geteuid() })
    else if (cmd.op === 'run') {
      const r = spawnSync(cmd.argv[0], cmd.argv.slice(1), { encoding: 'utf8' });
      reply({ id: cmd.id, code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr || String(r.error ?? '') });
    } else if (cmd.op === 'spawn') {
      const child = spawn(cmd.argv[0], cmd.argv.slice(1), { stdio: 'ignore' });
      children.push(child);
      reply({ id: cmd.id, pid: child.pid });
    }
    else if (cmd.op === 'call') reply({ id: cmd.id, ...(await call(cmd.socket, cmd.rpc, cmd.request, cmd.metadata, cmd.deadlineMs)) });
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
