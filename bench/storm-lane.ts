/**
 * Start storms on a daemon logging at debug, to see how busy the long lane
 * (PrepareForUserNS, Teardown; work.longLane slots daemon-wide) is over a
 * storm: its calls' waits for a slot are debug records, and their time in
 * the daemon minus the wait is the time they held one. Debug records cost
 * the daemon's main thread some work per call, so the storms run a little
 * slower than `npm run bench`'s; what they are for is the lane's share.
 *
 *   node --import tsx bench/storm-lane.ts [SIZES]   (as root; default 200; e.g. 50,200,1000)
 *
 * Prints one line per storm (also one whose calls failed, with its errors);
 * IWSD_BENCH_LANE_SLOTS sets work.longLane (the daemon fits it to its libuv
 * pool: at most a third of UV_THREADPOOL_SIZE − 1, so raise that too).
 */
import { probeKernel } from '../src/api/native.js';
import { newBench } from './context.js';
import { buildGoClient, f, log } from './lib.js';
import { storm } from './load.js';

if (process.getuid?.() !== 0) throw new Error('storm-lane needs root');
const sizes = (process.argv[2] ?? '200').split(',').map(Number).filter((x) => x > 0);
const slots = process.env.IWSD_BENCH_LANE_SLOTS ? Number(process.env.IWSD_BENCH_LANE_SLOTS) : undefined;
const goClient = buildGoClient();
const b = newBench({ N: 0, WARMUP: 0, long: false, goClient, kernel: await probeKernel(), methods: ['idmapped'], env: { cores: (await import('node:os')).cpus().length } });
for (const size of sizes) {
  const before = b.storms.length;
  let failed = '';
  try {
    await storm(b, size, { config: { logLevel: 'debug', ...(slots ? { work: { longLane: slots } } : {}) } });
  } catch (err) {
    // A storm whose calls failed (e.g. lane waits past work.queueTimeoutMs) is still reported.
    if (b.storms.length === before) throw err;
    failed = ` — ${(err as Error).message.slice(0, 300)}`;
  }
  const s = b.storms.at(-1)!;
  const l = s.longLane;
  const lane = l
    ? `long lane ${l.slots} slots busy ${(100 * l.busyShare).toFixed(0)}% of the wall (${l.calls} calls, each holding a slot ${f(l.heldMsPerCall)} ms on average, waiting ${f(l.waitedMs / l.calls)} ms)`
    : 'no debug records: lane occupancy unknown';
  log(
    `storm of ${size}: ${s.wallMs} ms, ${((1000 * size) / s.wallMs).toFixed(0)} workspaces/s, daemon CPU ${s.cpuMs.toFixed(0)} ms (${(100 * s.utilisation).toFixed(0)}% of the cores), its main thread ${s.mainCpuMs.toFixed(0)} ms (${((100 * s.mainCpuMs) / s.wallMs).toFixed(0)}% of wall), machine ${(100 * s.machineBusy).toFixed(0)}% busy (${(100 * (s.machineBusyBefore ?? NaN)).toFixed(0)}% in the second before); ${lane}; in daemon p50 ${Object.entries(s.inDaemon)
      .map(([rpc, st]) => `${rpc} ${st ? f(st.p50) : '—'}`)
      .join(', ')}; ${s.errors} errors${failed}`,
  );
}
