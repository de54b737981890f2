/**
 * The daemon under a V8 CPU profile (`--cpu-prof`) while it serves a
 * MountProc/UmountProc series: its summary goes beside the bench's tables,
 * its flame graph into bench/results/.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type { TestContainer } from '../__test__/helpers/container.js';
import { TestDaemon } from '../__test__/helpers/daemon.js';
import type { Bench } from './context.js';
import { storm } from './load.js';
import { MP, UNLIMITED, adminAdd, fail, goTimed, log } from './lib.js';
import { flameGraph, summarize, window, type CpuProfile } from './profile.js';

export async function profiled(b: Bench, c: TestContainer, out: string): Promise<void> {
  const rounds = 2 * b.N;
  log(`daemon CPU profile, ${rounds} MountProc/UmountProc rounds`);
  const dir = mkdtempSync(join(tmpdir(), 'iwsd-bench-prof-'));
  let from: bigint;
  let to: bigint;
  try {
    // The node flags go between node and the daemon's script: through a shell.
    const d = await TestDaemon.start({ rateLimits: UNLIMITED, limits: { mountsPerWorkspace: 100_000 } }, [], {
      wrap: ['/bin/sh', '-c', `exec "$0" --cpu-prof --cpu-prof-dir=${dir} "$@"`],
    });
    try {
      const socket = await adminAdd(d.stateDir, 'profiled', c.initHostPid);
      const run = () => (b.goClient ? goTimed(b.goClient, c.initHostPid, socket, MP, rounds, 0) : c.timed(socket, MP, rounds, 0));
      fail('profiled series (warm-up)', (await run()).errors);
      from = process.hrtime.bigint();
      fail('profiled series', (await run()).errors);
      to = process.hrtime.bigint();
    } finally {
      await d.stop();
    }
    const file = readdirSync(dir).find((n) => n.endsWith('.cpuprofile'));
    if (!file) throw new Error(`the profiled daemon wrote no .cpuprofile into ${dir}`);
    const p = window(JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile, Number(from / 1000n), Number(to / 1000n));
    const name = `daemon, ${rounds} MountProc/UmountProc rounds from the ${b.goClient ? 'Go' : 'Node'} client (after as many to warm up)`;
    writeFileSync(join(out, 'profile-daemon.svg'), flameGraph(p, name));
    b.profiles.push({ name, summary: summarize(p, 2 * rounds), svg: 'profile-daemon.svg' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A start storm of `size` under the profiler: where the daemon's main thread goes when every workspace starts at once. */
export async function profiledStorm(b: Bench, size: number, out: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'iwsd-bench-prof-'));
  let from = 0n;
  let to = 0n;
  try {
    const keep = b.storms.length;
    await storm(b, size, { profileDir: dir, onWindow: (a, z) => ((from = a), (to = z)) });
    b.storms.length = keep; // its numbers are the profiler's, not the storm's
    const file = readdirSync(dir).find((n) => n.endsWith('.cpuprofile'));
    if (!file) throw new Error(`the profiled daemon wrote no .cpuprofile into ${dir}`);
    const p = window(JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile, Number(from / 1000n), Number(to / 1000n));
    const name = `daemon during a start storm of ${size} (the storm's wall time only)`;
    writeFileSync(join(out, 'profile-storm.svg'), flameGraph(p, name));
    b.profiles.push({ name, summary: summarize(p, 7 * size), svg: 'profile-storm.svg' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
