/**
 * WriteIDMapping end to end, as root: the real daemon started through its
 * CLI, a real container (new PID namespace), the client calling from inside
 * the container, maps landing in a real child user namespace.
 */
import { readFileSync } from 'node:fs';


import type { ExecutionContext } from 'ava';
import { TestContainer, readMap } from './helpers/container.js';
import { GITPOD_SHIFT as RING } from './helpers/daemon.js';
import { daemonPerVariant } from './helpers/variants.js';
import { rootTest } from './helpers/root.js';

// Every test runs against both PID strategies: the ioctl fast path and the
// NSpid-scan fallback (forced by configuration).
const STRATEGIES = ['ioctl', 'scan'] as const;
type Strategy = (typeof STRATEGIES)[number];
// The rate limit has a test of its own (rate-limit.test.ts); here it must
// not interfere with tests that make many calls.
const daemons = daemonPerVariant(STRATEGIES, (pidStrategy) => ({ pidStrategy, rateLimits: { writeIdMapping: { points: 10_000 } } }), assertCleanExit);
let n = 0;

function assertCleanExit(code: number | null): void {
  if (code !== 0) throw new Error(`iwsd serve exited with ${code} on SIGTERM`);
}


async function setup(t: ExecutionContext, strategy: Strategy) {
  const daemon = daemons.get(strategy)!;
  const c = await TestContainer.startFor(t);
  const id = `ws-${process.pid}-${++n}`;
  const socket = await daemon.add(id, c.initHostPid);
  return { c, id, socket, daemon };
}

for (const strategy of STRATEGIES) {
  rootTest(`${strategy}: writes exactly the requested uid and gid maps for a child in a new user namespace`, async (t) => {
    const { c, socket } = await setup(t, strategy);
    const pid = await c.spawnUserns();
    const host = c.hostPidOf(pid);

    const uid = await c.call(socket, 'WriteIDMapping', { pid, gid: false, mapping: RING });
    t.true(uid.ok, JSON.stringify(uid));
    t.is(uid.response?.errorCode, 0);
    t.regex(String(uid.response?.message), /uid map of pid \d+ written: 2 line\(s\), 65535 id\(s\)/);
    t.deepEqual(readMap(host, 'uid_map'), [
      [0, 33333, 1],
      [1, 100000, 65534],
    ]);
    t.deepEqual(readMap(host, 'gid_map'), [], 'gid map untouched by a uid write');

    const gid = await c.call(socket, 'WriteIDMapping', { pid, gid: true, mapping: RING });
    t.true(gid.ok, JSON.stringify(gid));
    t.deepEqual(readMap(host, 'gid_map'), [
      [0, 33333, 1],
      [1, 100000, 65534],
    ]);
  });
}

const BAD_MAPS: [string, { containerId: number; hostId: number; size: number }[], RegExp][] = [
  ['outside the user range', [{ containerId: 1, hostId: 99999, size: 10 }], /outside-user-ranges/],
  ['starting inside but ending outside the user range', [{ containerId: 1, hostId: 169990, size: 20 }], /outside-user-ranges/],
  ['root outside the root range', [{ containerId: 0, hostId: 1000, size: 1 }], /outside-root-range/],
  ['root plus more ids on one line', [{ containerId: 0, hostId: 33333, size: 2 }], /root-not-alone/],
  [
    'overlapping container ranges',
    [
      { containerId: 1, hostId: 100000, size: 10 },
      { containerId: 5, hostId: 100100, size: 10 },
    ],
    /container-overlap/,
  ],
  [
    'overlapping host ranges',
    [
      { containerId: 1, hostId: 100000, size: 10 },
      { containerId: 50, hostId: 100005, size: 10 },
    ],
    /host-overlap/,
  ],
  ['overflowing container ids', [{ containerId: 4294967290, hostId: 100000, size: 10 }], /container-id-overflow/],
  ['overflowing host ids', [{ containerId: 1, hostId: 4294967290, size: 10 }], /host-id-overflow/],
  ['host root', [{ containerId: 1, hostId: 0, size: 1 }], /host-root/],
  ['zero size', [{ containerId: 1, hostId: 100000, size: 0 }], /zero-size/],
  ['empty', [], /empty-map/],
  [
    '341 lines',
    Array.from({ length: 341 }, (_, i) => ({ containerId: i + 1, hostId: 100000 + i, size: 1 })),
    /too-many-lines/,
  ],
];

for (const strategy of STRATEGIES) {
  rootTest(`${strategy}: invalid maps are INVALID_ARGUMENT, name the rule, and leave the map unwritten`, async (t) => {
    const { c, socket } = await setup(t, strategy);
    const pid = await c.spawnUserns();
    const host = c.hostPidOf(pid);
    for (const [what, mapping, rule] of BAD_MAPS) {
      const r = await c.call(socket, 'WriteIDMapping', { pid, gid: false, mapping });
      t.false(r.ok, what);
      t.is(r.code, 'INVALID_ARGUMENT', what);
      t.regex(r.details ?? '', rule, what);
      t.deepEqual(readMap(host, 'uid_map'), [], `${what}: nothing written`);
    }
    const ok = await c.call(socket, 'WriteIDMapping', { pid, gid: false, mapping: RING });
    t.true(ok.ok, 'a valid write still succeeds afterwards');
    t.deepEqual(readMap(host, 'uid_map'), [
      [0, 33333, 1],
      [1, 100000, 65534],
    ]);
  });
}

for (const strategy of STRATEGIES) {
  rootTest(`${strategy}: a PID outside the container is refused and nothing is written anywhere`, async (t) => {
    const { c, socket, daemon } = await setup(t, strategy);
    const other = await TestContainer.startFor(t);
    const mine = c.hostPidOf(await c.spawnUserns());
    const theirs = other.hostPidOf(await other.spawnUserns());

    // The other container's process named by its host PID, the daemon's own
    // PID (a host process) and a PID that exists nowhere: all NOT_FOUND with
    // the same message, or a workspace could probe which host PIDs exist.
    const answers = [];
    for (const pid of [theirs, daemon.proc.pid, 2147483000]) {
      const r = await c.call(socket, 'WriteIDMapping', { pid, gid: false, mapping: RING });
      t.is(r.code, 'NOT_FOUND', JSON.stringify(r));
      answers.push(r.details?.replace(String(pid), 'N'));
    }
    t.is(new Set(answers).size, 1, JSON.stringify(answers));
    // Not a PID at all.
    for (const pid of [0, -1, 2 ** 40]) {
      const bad = await c.call(socket, 'WriteIDMapping', { pid, gid: false, mapping: RING });
      t.is(bad.code, 'INVALID_ARGUMENT', `pid ${pid}: ${JSON.stringify(bad)}`);
    }
    t.deepEqual(readMap(theirs, 'uid_map'), []);
    t.deepEqual(readMap(mine, 'uid_map'), []);
  });
}

for (const strategy of STRATEGIES) {
  rootTest(`${strategy}: the kernel refusing a second map is FAILED_PRECONDITION with its reason`, async (t) => {
    const { c, socket } = await setup(t, strategy);
    const pid = await c.spawnUserns();
    t.true((await c.call(socket, 'WriteIDMapping', { pid, gid: false, mapping: RING })).ok);
    const again = await c.call(socket, 'WriteIDMapping', { pid, gid: false, mapping: RING });
    t.is(again.code, 'FAILED_PRECONDITION');
    t.regex(again.details ?? '', /EPERM/);
    // PID 1 (the container's init) shares the host's user namespace: the
    // kernel refuses to map it.
    const init = await c.call(socket, 'WriteIDMapping', { pid: 1, gid: false, mapping: RING });
    t.is(init.code, 'FAILED_PRECONDITION', JSON.stringify(init));
  });
}

for (const strategy of STRATEGIES) {
  rootTest(`${strategy}: PrepareForUserNS refuses a container in the host's mount namespace, and the shot is used`, async (t) => {
    const { c, socket } = await setup(t, strategy);
    const before = readFileSync('/proc/self/mountinfo', 'utf8');
    const r = await c.call(socket, 'PrepareForUserNS', {});
    t.is(r.code, 'FAILED_PRECONDITION', JSON.stringify(r));
    t.regex(r.details ?? '', /host's mount namespace/);
    t.is((await c.call(socket, 'PrepareForUserNS', {})).code, 'RESOURCE_EXHAUSTED');
    t.is(readFileSync('/proc/self/mountinfo', 'utf8'), before);
    const td = await c.call(socket, 'Teardown', {});
    t.true(td.ok && td.response?.success === true, JSON.stringify(td));
  });
}

for (const strategy of STRATEGIES) {
  rootTest(`${strategy}: every privileged call leaves one audit record in the log`, async (t) => {
    const { c, id, socket, daemon } = await setup(t, strategy);
    const pid = await c.spawnUserns();
    await c.call(socket, 'WriteIDMapping', { pid, gid: false, mapping: RING });
    await c.call(socket, 'WriteIDMapping', { pid, gid: false, mapping: [] });
    await new Promise((r) => setTimeout(r, 200));
    const recs = daemon.logs.filter((l) => l.workspace === id && l.rpc === 'WriteIDMapping');
    t.deepEqual(
      recs.map((r) => r.result),
      ['OK', 'INVALID_ARGUMENT'],
    );
    t.true(recs.every((r) => typeof r.durationMs === 'number'));
    // Each record names the verified peer: a process inside the container.
    for (const r of recs) {
      const peer = r.peer as { pid: number; uid: number };
      t.is(peer.uid, 0);
      t.true(readFileSync(`/proc/${peer.pid}/status`, 'utf8').includes('NSpid:'), 'peer pid is a host pid');
    }
    // The daemon runs the strategy it was configured with.
    t.true(daemon.logs.some((l) => l.pidStrategy === strategy));
  });
}

for (const strategy of STRATEGIES) {
  rootTest(`${strategy}: an oversized request is refused before it is parsed`, async (t) => {
    const { c, socket } = await setup(t, strategy);
    const mapping = Array.from({ length: 20_000 }, (_, i) => ({ containerId: i + 1, hostId: 100000 + i, size: 1 }));
    const r = await c.call(socket, 'WriteIDMapping', { pid: 1, gid: false, mapping });
    t.is(r.code, 'RESOURCE_EXHAUSTED', JSON.stringify({ code: r.code, details: r.details }));
  });
}

for (const strategy of STRATEGIES) {
  rootTest(`${strategy}: connections from the host or another container are refused before any RPC`, async (t) => {
    const { c, socket, daemon } = await setup(t, strategy);
    const other = await TestContainer.startFor(t);
    const pid = await c.spawnUserns();
    const host = c.hostPidOf(pid);

    // From the host (this test process): refused before the gRPC server sees
    // it, and told why (PERMISSION_DENIED from the refusal answerer).
    const fromHost = await callFromHost(socket, 'WriteIDMapping', { pid, gid: false, mapping: RING });
    t.is(fromHost.code, 'PERMISSION_DENIED', JSON.stringify(fromHost));
    // From another container.
    const fromOther = await other.call(socket, 'WriteIDMapping', { pid, gid: false, mapping: RING });
    t.is(fromOther.code, 'PERMISSION_DENIED', JSON.stringify(fromOther));
    t.deepEqual(readMap(host, 'uid_map'), [], 'nothing was written');
    await new Promise((r) => setTimeout(r, 100));
    t.true(daemon.logs.filter((l) => l.refused === 'PERMISSION_DENIED' && l.socket === socket).length >= 2);
    // The workspace's own process is still served.
    t.true((await c.call(socket, 'WriteIDMapping', { pid, gid: false, mapping: RING })).ok);
  });
}

async function callFromHost(socket: string, rpc: string, request: Record<string, unknown>) {
  const grpc = await import('@grpc/grpc-js');
  const { workspaceProto } = await import('../src/proto.js');
  const client = new (workspaceProto().iws.InWorkspaceService)(`unix:${socket}`, grpc.credentials.createInsecure());
  try {
    return await new Promise<{ ok: boolean; code?: string }>((resolve) => {
      (client as unknown as Record<string, (...a: unknown[]) => void>)[rpc]!(request, { deadline: Date.now() + 5000 }, (err: { code: number } | null) =>
        resolve(err ? { ok: false, code: grpc.status[err.code] } : { ok: true }),
      );
    });
  } finally {
    client.close();
  }
}
