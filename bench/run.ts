/**
 * `npm run bench` (as root): iwsd's RPC latency end to end (clients inside
 * a real container), against the syscall floor (the same native operation
 * in-process, no gRPC), a bare grpc-js round trip and the exec-helper
 * baseline (the design iwsd replaces), measured in the same run; the
 * daemon's CPU per call and a CPU profile of it; how costs grow (mount
 * table, processes, registered workspaces, memory); a neighbour's flood;
 * start storms. Writes bench/results/latest.{md,json,svg} and
 * profile-daemon.svg. Fails loudly if an operation errors.
 *
 * Sizes: IWSD_BENCH_N (default 300 rounds per series), IWSD_BENCH_STORM
 * (default "50,200"; with IWSD_BENCH_LONG=1 "50,100,200,400,1000", the
 * series that finds where a storm's throughput stops growing). The default
 * run takes 3–4 minutes on 2 cores; the long one 2–3 minutes more.
 * IWSD_BENCH_NO_PROFILE=1 leaves out the two profiled runs (MountProc
 * series, storm). README "Performance" says what each series is for.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { join } from 'node:path';

import { probeKernel } from '../src/api/native.js';
import * as native from '../src/native.js';
import { TestContainer, makeRootfs } from '../__test__/helpers/container.js';
import { TestDaemon } from '../__test__/helpers/daemon.js';
import { newBench, type Bench } from './context.js';
import { endToEnd, execHelper, floor, markFloor, markFloorFresh, oneShots } from './latency.js';
import { ROOT, UNLIMITED, adminAdd, buildGoClient, log } from './lib.js';
import { fairness, storm } from './load.js';
import { profiled, profiledStorm } from './profiled.js';
import { markdown, svg } from './report.js';
import { idmapByProcesses, machineJitter, memoryAndRegistered, mountTableGrowth } from './scale.js';
import { tsLayer } from './tslayer.js';

const OUT = join(ROOT, 'bench/results');

async function setup(): Promise<Bench> {
  if (process.getuid?.() !== 0) throw new Error('the benchmark needs root');
  execFileSync('cargo', ['build', '--release', '-q', '-p', 'iwsd-exec-helper'], { cwd: ROOT, stdio: 'inherit' });
  const goClient = buildGoClient();
  const kernel = await probeKernel();
  const long = process.env.IWSD_BENCH_LONG === '1';
  const methods = (['idmapped', 'fuse', 'shiftfs'] as const).filter((m) => (m === 'shiftfs' ? kernel.shiftfs : m === 'fuse' ? kernel.fuse : true));
  if (!kernel.shiftfs) log('shiftfs is not available on this kernel: its PrepareForUserNS/Teardown series are skipped');
  const N = Number(process.env.IWSD_BENCH_N ?? 300);
  const env = {
    when: new Date().toISOString(),
    durationS: 0,
    kernel: release(),
    cores: cpus().length,
    cpu: cpus()[0]?.model ?? '',
    node: process.version,
    n: N,
    strategies: { pid: await native.resolvePidStrategy('auto'), mount: await native.resolveMountStrategy('auto'), peer: kernel.peerPidfd ? 'SO_PEERPIDFD' : 'SO_PEERCRED' },
  };
  return newBench({ N, WARMUP: Number(process.env.IWSD_BENCH_WARMUP ?? 1000), long, goClient, kernel, methods: [...methods], env });
}

/** Everything on the main daemon and container: per-RPC latency, one-shots, floor, exec-helper, growth, profile. */
async function onMainContainer(b: Bench): Promise<void> {
  const daemon = await TestDaemon.start({ rateLimits: UNLIMITED, limits: { mountsPerWorkspace: 100_000 } });
  b.cleanups.push(() => daemon.stop().then(() => undefined));
  const fs = makeRootfs();
  b.cleanups.push(fs.cleanup);
  for (const d of ['work/target', 'work/b', 'work/g']) mkdirSync(join(fs.rootfs, d), { recursive: true });
  const c = await TestContainer.start({ rootfs: fs.rootfs });
  b.cleanups.push(() => c.stop());
  const socket = await adminAdd(daemon.stateDir, 'bench', c.initHostPid);
  await endToEnd(b, daemon, c, socket, fs.base);
  await oneShots(b);
  await floor(b, c);
  await markFloor(b, fs.base);
  await markFloorFresh(b, fs.base);
  execHelper(b, c, b.floorKids);
  await idmapByProcesses(b, daemon);
  await profiled(b, c, OUT);
  await mountTableGrowth(b, c, socket);
}

async function main(): Promise<void> {
  const started = Date.now();
  const b = await setup();
  try {
    machineJitter(b);
    log("iwsd's TypeScript per call, in-process");
    b.tsLayer = await tsLayer();
    await onMainContainer(b);
    await fairness(b);
    await memoryAndRegistered(b);
    const sizes = (process.env.IWSD_BENCH_STORM ?? (b.long ? '50,100,200,400,1000' : '50,200')).split(',').map(Number).filter((x) => x > 0);
    for (const size of sizes) await storm(b, size);
    // Where a storm's time goes: the daemon's main thread under the profiler (numbers not kept).
    if (!process.env.IWSD_BENCH_NO_PROFILE) await profiledStorm(b, Math.min(200, Math.max(...sizes)), OUT);
  } finally {
    for (const c of b.cleanups.reverse()) await c();
  }
  b.env.durationS = Math.round((Date.now() - started) / 1000);
  const report: Partial<Bench> = { ...b };
  delete report.put;
  delete report.cleanups;
  delete report.floorKids;
  mkdirSync(OUT, { recursive: true });
  writeFileSync(join(OUT, 'latest.json'), `${JSON.stringify(report, null, 2)}\n`);
  const md = markdown(b);
  writeFileSync(join(OUT, 'latest.md'), md);
  writeFileSync(join(OUT, 'latest.svg'), svg(b));
  process.stdout.write(md);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
