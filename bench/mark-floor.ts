/**
 * A focused in-process loop over the idmapped mark (PrepareForUserNS's and
 * Teardown's kernel work through the binding, no daemon, no gRPC), for
 * before/after comparisons of the core (`node --import tsx bench/mark-floor.ts`).
 * Two series: "cycle" makes and removes the mark of one workspace over and
 * over (one shift mapping: the user-namespace cache can serve it); "cold"
 * gives every iteration a shift mapping not used before in the run, so each
 * Prepare creates a user namespace (the cost of that creation). Prints p50
 * and p95 in ms; IWSD_BENCH_N sets the iterations (default 200).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Container, DEFAULT_POLICY, prepareShiftMark, removeShiftMark } from '../src/api/native.js';
import { defaultShift } from '../src/workspace.js';
import { lightContainer, stats } from './lib.js';

const N = Number(process.env.IWSD_BENCH_N ?? 200);
const base = mkdtempSync(join(tmpdir(), 'iwsd-markfloor-'));
const fuse = { binary: 'fuse-overlayfs', upper: join(base, 'fu'), work: join(base, 'fw'), staging: join(base, 'fs'), upperBytes: 64 << 20 };
const light = await lightContainer(['work']);
const container = await Container.open(light.initHostPid);
const ms = (a: bigint, b: bigint) => Number(b - a) / 1e6;
try {
  for (const series of ['cycle', 'cold'] as const) {
    const prep: number[] = [];
    const tear: number[] = [];
    for (let i = 0; i < N + 5; i++) {
      const shift = defaultShift(DEFAULT_POLICY);
      // A mapping of its own per iteration: one id fewer in the user range.
      if (series === 'cold') shift[1]!.size -= 1 + (i % 60000);
      const t0 = process.hrtime.bigint();
      const mark = await prepareShiftMark(container, { markPath: '/work/mark', method: 'idmapped', shift, fuse });
      const t1 = process.hrtime.bigint();
      const r = await removeShiftMark(container, { mark, markPath: '/work/mark', shift, fuse });
      const t2 = process.hrtime.bigint();
      if (!r.success) throw new Error(`removeShiftMark: ${r.problems.join('; ')}`);
      if (i >= 5) {
        prep.push(ms(t0, t1));
        tear.push(ms(t1, t2));
      }
    }
    const p = stats(prep);
    const t = stats(tear);
    console.log(`${series}: PrepareForUserNS p50 ${p.p50.toFixed(3)} p95 ${p.p95.toFixed(3)} ms; Teardown p50 ${t.p50.toFixed(3)} p95 ${t.p95.toFixed(3)} ms (n=${N})`);
  }
} finally {
  container.close();
  light.stop();
  rmSync(base, { recursive: true, force: true });
}
