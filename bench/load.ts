/**
 * The daemon under load: a quiet workspace during a neighbour's flood
 * (fairness), and start storms (every workspace of a node running the full
 * ring sequence at once).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

import { TestContainer, makeRootfs } from '../__test__/helpers/container.js';
import { TestDaemon } from '../__test__/helpers/daemon.js';
import type { Bench, StormResult } from './context.js';
import { serverSide } from './latency.js';
import { MP, RING, adminAdd, cpuMs, daemonSample, fail, lightContainer, log, machineTicks, readyGoClient, ringChild, samplePeak, sleep, stats, type Call } from './lib.js';

/** The quiet workspace's series: p99 of 300 calls is their 3rd slowest, which moved by 1.5x between runs of the same build. */
const FAIR_N = (b: Bench) => Math.max(b.N, 1000);

/**
 * Default configuration, except the quiet workspace's mount rate limits
 * (its own measurement loop would hit them). The neighbour keeps 3,000
 * WriteIDMapping calls outstanding over 16 connections (most answered
 * RESOURCE_EXHAUSTED by its rate limit) and opens 500 more connections that
 * send nothing.
 */
export async function fairness(b: Bench): Promise<void> {
  log('fairness');
  const fdm = await TestDaemon.start({ rateLimits: { mountProc: { points: 1_000_000_000 }, umountProc: { points: 1_000_000_000 } } });
  const ffs = makeRootfs();
  const qc = await TestContainer.start({ rootfs: ffs.rootfs });
  const nc = await TestContainer.start();
  try {
    const quiet = await adminAdd(fdm.stateDir, 'quiet', qc.initHostPid);
    const noisy = await adminAdd(fdm.stateDir, 'noisy', nc.initHostPid);
    const alone = await qc.timed(quiet, MP, FAIR_N(b), b.WARMUP);
    fail('fairness (alone)', alone.errors);
    const sampler = samplePeak(fdm.proc.pid!);
    const connected = await nc.hold('held', noisy, 500);
    await nc.flood(noisy, [{ rpc: 'WriteIDMapping', request: { pid: 1, gid: false, mapping: RING } }], 3000, 16);
    await sleep(1000);
    const during = await qc.timed(quiet, MP, FAIR_N(b), b.WARMUP);
    const flood = await nc.unflood();
    const held = await nc.held('held');
    await nc.unhold('held');
    const peak = sampler.stop();
    fail('fairness (during the flood)', during.errors);
    b.fairness = {
      alone: stats(alone.latencies.MountProc!),
      during: stats(during.latencies.MountProc!),
      flood: { ...flood, heldConnected: connected, heldClosedByDaemon: held.closed },
      daemon: { before: sampler.before, peak },
    };
  } finally {
    await nc.stop();
    await qc.stop();
    await fdm.stop();
    ffs.cleanup();
  }
}

/** The full ring sequence of one workspace (as workspacekit makes it), `child` being its ring 1. */
const ring = (child: number): Call[] => [
  { rpc: 'PrepareForUserNS', request: {} },
  { rpc: 'WriteIDMapping', request: { pid: child, gid: false, mapping: RING } },
  { rpc: 'WriteIDMapping', request: { pid: child, gid: true, mapping: RING } },
  { rpc: 'MountProc', request: { target: '/work/p', pid: child } },
  { rpc: 'MountSysfs', request: { target: '/work/s', pid: child } },
  { rpc: 'UmountProc', request: { target: '/work/p', pid: child } },
  { rpc: 'Teardown', request: {} },
];

interface Member {
  initHostPid: number;
  socket: string;
  child: number;
  agent?: TestContainer;
  stop: () => Promise<void> | void;
}

/** Sets up `size` workspaces, `parallel` at a time: a container, its registration, a user-namespaced child. */
async function members(b: Bench, d: TestDaemon, size: number): Promise<Member[]> {
  const out: Member[] = [];
  const parallel = 16;
  try {
    for (let i = 0; i < size; i += parallel) {
      await Promise.all(
        Array.from({ length: Math.min(parallel, size - i) }, async (_, j) => {
          if (b.goClient) {
            const c = await lightContainer(['work/p', 'work/s']);
            const m: Member = { initHostPid: c.initHostPid, socket: '', child: 0, stop: c.stop };
            out.push(m);
            m.socket = await adminAdd(d.stateDir, `storm-${i + j}`, c.initHostPid);
            const kid = await ringChild(c.initHostPid);
            m.stop = () => (kid.stop(), c.stop());
            m.child = kid.pid;
          } else {
            const r = makeRootfs();
            mkdirSync(join(r.rootfs, 'work/p'), { recursive: true });
            mkdirSync(join(r.rootfs, 'work/s'), { recursive: true });
            const agent = await TestContainer.start({ rootfs: r.rootfs });
            const m: Member = { initHostPid: agent.initHostPid, socket: '', child: 0, agent, stop: () => agent.stop().then(r.cleanup) };
            out.push(m);
            m.socket = await adminAdd(d.stateDir, `storm-${i + j}`, agent.initHostPid);
            const kid = await ringChild(agent.initHostPid);
            m.stop = () => (kid.stop(), agent.stop().then(r.cleanup));
            m.child = kid.pid;
          }
        }),
      );
    }
  } catch (err) {
    for (const m of out) await m.stop();
    throw err;
  }
  return out;
}

/**
 * The long lane's occupancy over a storm, from a debug-level daemon's
 * records (undefined without them): the slots (config work.longLane, or what
 * the daemon fitted them to, its debug record says), and of the lane's
 * calls (PrepareForUserNS, Teardown) their waits for a slot and the time
 * they held one (in-daemon time minus wait), as a share of slots × wall.
 */
function longLaneOccupancy(all: Record<string, unknown>[], from: number, wallMs: number, config?: Record<string, unknown>): StormResult['longLane'] {
  const lines = all.slice(from);
  const waits = lines.filter((l) => l.lane === 'long' && typeof l.waitedMs === 'number').map((l) => l.waitedMs as number);
  if (!lines.some((l) => l.level === 20 || l.level === 'debug')) return undefined;
  const fitted = all.find((l) => typeof l.longLane === 'number')?.longLane as number | undefined;
  const configured = (config?.work as { longLane?: number } | undefined)?.longLane ?? 2;
  const slots = fitted ?? configured;
  const inDaemon = ['PrepareForUserNS', 'Teardown'].flatMap((rpc) => serverSide(lines, rpc));
  const sum = (xs: number[]) => xs.reduce((a, x) => a + x, 0);
  const held = sum(inDaemon) - sum(waits);
  return { slots, calls: inDaemon.length, waitedMs: sum(waits), heldMsPerCall: held / Math.max(1, inDaemon.length), busyShare: held / (slots * wallMs) };
}

/**
 * A start storm: `size` workspaces, each running the full ring sequence
 * concurrently; every client is started and waiting before the clock starts
 * (workspace tooling is running when its workspace starts).
 */
export async function storm(
  b: Bench,
  size: number,
  opts: { profileDir?: string; onWindow?: (from: bigint, to: bigint) => void; config?: Record<string, unknown>; env?: NodeJS.ProcessEnv } = {},
): Promise<void> {
  log(`start storm of ${size} workspaces (setting up)`);
  const wrap = opts.profileDir ? ['/bin/sh', '-c', `exec "$0" --cpu-prof --cpu-prof-dir=${opts.profileDir} "$@"`] : undefined;
  const d = await TestDaemon.start({ limits: { mountsPerWorkspace: 1000 }, ...opts.config }, [], { ...(wrap ? { wrap } : {}), ...(opts.env ? { env: opts.env } : {}) });
  const t0 = Date.now();
  let ms: Member[] = [];
  try {
    ms = await members(b, d, size);
    const setupMs = Date.now() - t0;
    const sampler = samplePeak(d.proc.pid!);
    const fromLine = d.logs.length;
    // The machine's busy share over the second before the storm, with every
    // client waiting and the daemon idle: what the rest of the machine uses.
    const idleBusy = async () => {
      const a = machineTicks();
      await sleep(1000);
      const z = machineTicks();
      return (z.busy - a.busy) / Math.max(1, z.total - a.total);
    };
    // Every client started and waiting; `go` lets them all run at once.
    let go: () => Promise<{ ms: number; errors: string[] }[]>;
    if (b.goClient) {
      const clients = await Promise.all(ms.map((m) => readyGoClient(b.goClient!, m.initHostPid, m.socket, ring(m.child))));
      go = () => {
        for (const c of clients) c.go();
        return Promise.all(clients.map((c) => c.done));
      };
    } else {
      go = () =>
        Promise.all(
          ms.map(async (m) => {
            const s0 = Date.now();
            const r = await m.agent!.timed(m.socket, ring(m.child), 1);
            return { ms: Date.now() - s0, errors: r.errors };
          }),
        );
    }
    const machineBusyBefore = await idleBusy();
    log(`start storm of ${size}: go (${b.goClient ? 'Go' : 'Node'} clients)`);
    const cpu0 = cpuMs(d.proc.pid!);
    const m0 = machineTicks();
    const h0 = process.hrtime.bigint();
    const start = Date.now();
    const runs = await go();
    const wallMs = Date.now() - start;
    opts.onWindow?.(h0, process.hrtime.bigint());
    const cpuNow = cpuMs(d.proc.pid!);
    const m1 = machineTicks();
    const cpu = cpuNow.all - cpu0.all;
    const peak = sampler.stop();
    await sleep(500);
    const after = daemonSample(d.proc.pid!);
    const errors = runs.flatMap((r) => r.errors);
    const result: StormResult = {
      workspaces: size,
      client: b.goClient ? 'Go' : 'Node',
      setupMs,
      wallMs,
      perWorkspace: stats(runs.map((r) => r.ms)),
      errors: errors.length,
      before: sampler.before,
      peak,
      after,
      cpuMs: cpu,
      utilisation: cpu / (wallMs * (b.env.cores as number)),
      mainCpuMs: cpuNow.main - cpu0.main,
      machineBusy: (m1.busy - m0.busy) / Math.max(1, m1.total - m0.total),
      machineBusyBefore,
      inDaemon: Object.fromEntries(
        [...new Set(ring(0).map((c) => c.rpc))].map((rpc) => {
          const xs = serverSide(d.logs.slice(fromLine), rpc);
          return [rpc, xs.length ? stats(xs) : undefined];
        }),
      ),
    };
    const lane = longLaneOccupancy(d.logs, fromLine, wallMs, opts.config);
    if (lane) result.longLane = lane;
    b.storms.push(result);
    fail(`storm ${size}`, errors);
  } finally {
    for (const m of ms) await m.stop();
    await d.stop();
  }
}
