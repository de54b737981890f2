/**
 * Hostile workspace, part 2 (issue 12): connection exhaustion and the quota
 * race, against the real daemon. No timing assertions: short timeouts come
 * from the configuration, and each test waits for outcomes.
 */
import { mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

import { TestContainer, makeRootfs, mountsOf } from './helpers/container.js';
import { TestDaemon } from './helpers/daemon.js';
import { rootTest } from './helpers/root.js';

const RING = [{ containerId: 0, hostId: 33333, size: 1 }];

function fds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

rootTest('5,000 idle connections from one workspace: the other workspace is served, the daemon fd count stays bounded, every idle connection is closed', async (t) => {
  const perWorkspace = 32;
  const refusalAnswers = 64;
  const daemon = await TestDaemon.startFor(t, {
    // debug: the "closed: no HTTP/2 preface" lines are counted below.
    logLevel: 'debug',
    connections: { perWorkspace, refusalAnswers, prefaceTimeoutMs: 500 },
    rateLimits: { writeIdMapping: { points: 10_000 } },
  });
  const attacker = await TestContainer.startFor(t);
  const victim = await TestContainer.startFor(t);
  const hostile = await daemon.add('hostile', attacker.initHostPid);
  const quiet = await daemon.add('quiet', victim.initHostPid);
  const pid = daemon.proc.pid!;
  const before = fds(pid);
  const kids = await Promise.all(Array.from({ length: 10 }, () => victim.spawnUserns()));

  let peak = fds(pid);
  const sampler = setInterval(() => (peak = Math.max(peak, fds(pid))), 5);
  t.teardown(() => clearInterval(sampler));
  // (Connections the socket's backlog cannot take fail at connect: EAGAIN.)
  const connected = await attacker.hold('idle', hostile, 5000);
  t.log(`${connected} of 5000 idle connections got through connect()`);
  // The other workspace's calls all succeed meanwhile.
  const results = await Promise.all(kids.map((k) => victim.call(quiet, 'WriteIDMapping', { pid: k, gid: false, mapping: RING })));
  t.deepEqual(results.filter((r) => !r.ok), [], 'every call of the other workspace succeeded');
  // Every idle connection is closed by the daemon: over the cap at once (or
  // after its refusal answer), the rest when their preface timeout passes.
  let held = await attacker.held('idle');
  for (let i = 0; i < 600 && held.closed < held.total; i++) {
    await new Promise((r) => setTimeout(r, 50));
    held = await attacker.held('idle');
  }
  clearInterval(sampler);
  t.is(held.closed, 5000, 'every idle connection was closed by the daemon');
  // Bounded: at most the cap plus the refusal answers in flight (and the other workspace's few).
  t.log(`daemon fds: ${before} before, ${peak} at peak`);
  t.true(peak <= before + perWorkspace + refusalAnswers + 16, `peak ${peak} fds, ${before} before`);
  // Each connection that got through connect() was refused over the cap or
  // accepted and then closed for sending no preface (it passed the peer
  // check: it comes from the workspace). Which of the two depends on timing.
  const count = () => ({
    overCap: daemon.logs.filter((l) => l.workspace === 'hostile' && l.refused === 'RESOURCE_EXHAUSTED').length,
    noPreface: daemon.logs.filter((l) => l.workspace === 'hostile' && typeof l.msg === 'string' && l.msg.startsWith('connection closed: no HTTP/2 preface')).length,
  });
  let n = count();
  for (let i = 0; i < 200 && n.overCap + n.noPreface < connected; i++) {
    await new Promise((r) => setTimeout(r, 25));
    n = count();
  }
  t.log(`${n.overCap} refused over the cap, ${n.noPreface} closed for sending no preface`);
  t.is(n.overCap + n.noPreface, connected);
  t.true(n.noPreface >= 1 && n.overCap >= 1);
  // The hostile workspace itself is served again once its idle connections are gone.
  const own = await attacker.spawnUserns();
  t.true((await attacker.call(hostile, 'WriteIDMapping', { pid: own, gid: false, mapping: RING })).ok);
});

rootTest('a refused connection tells the client why: over the cap RESOURCE_EXHAUSTED, outside the workspace PERMISSION_DENIED', async (t) => {
  const daemon = await TestDaemon.startFor(t, { connections: { perWorkspace: 4, prefaceTimeoutMs: 30_000 } });
  const c = await TestContainer.startFor(t);
  const other = await TestContainer.startFor(t);
  const socket = await daemon.add('capped', c.initHostPid);
  t.is(await c.hold('four', socket, 4), 4);
  const over = await c.call(socket, 'Teardown', {});
  t.is(over.code, 'RESOURCE_EXHAUSTED');
  t.regex(over.details ?? '', /already holds 4 connections to iwsd \(limit 4\)/);
  await c.unhold('four');
  const outside = await other.call(socket, 'Teardown', {});
  t.is(outside.code, 'PERMISSION_DENIED');
  t.regex(outside.details ?? '', /^connection refused by iwsd's peer check: /);
  // Neither refusal used the one-shot.
  t.true((await c.call(socket, 'Teardown', {})).ok);
});

rootTest('64 concurrent MountProcs against a limit of 10: exactly 10 mounted', async (t) => {
  const daemon = await TestDaemon.startFor(t, { limits: { mountsPerWorkspace: 10 } });
  const fs = makeRootfs();
  t.teardown(fs.cleanup);
  const targets = Array.from({ length: 64 }, (_, i) => `/work/t${i}`);
  for (const d of targets) mkdirSync(join(fs.rootfs, d), { recursive: true });
  const c = await TestContainer.startFor(t, { rootfs: fs.rootfs });
  const socket = await daemon.add('race', c.initHostPid);
  const results = await c.callMany(
    socket,
    targets.map((target) => ({ rpc: 'MountProc', request: { target, pid: 1 } })),
    64,
  );
  t.is(results.filter((r) => r.ok).length, 10);
  t.deepEqual([...new Set(results.filter((r) => !r.ok).map((r) => r.code))], ['RESOURCE_EXHAUSTED']);
  const procs = mountsOf(c.initHostPid).filter(([mp, type]) => type === 'proc' && /\/work\/t\d+$/.test(mp));
  t.is(procs.length, 10, 'exactly 10 procs in the container');
  const ls = JSON.parse((await daemon.cli(['workspace', 'ls', '--json'])).stdout) as unknown[];
  t.is(ls.length, 1);
});
