/**
 * What the bench's series share: statistics, the admin and Go clients,
 * daemon samples (memory, threads, fds, CPU time), throwaway containers
 * light enough to start a thousand of.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, linkSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import * as grpc from '@grpc/grpc-js';

import { adminProto } from '../src/proto.js';
import { pivotedInit, spawnUsernsInside, waitFor } from '../__test__/helpers/container.js';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));

export type Stats = { n: number; min: number; p50: number; p95: number; p99: number; max: number };

export function stats(xs: number[]): Stats {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
  return { n: s.length, min: s[0]!, p50: q(0.5), p95: q(0.95), p99: q(0.99), max: s[s.length - 1]! };
}

/** A latency in ms, with the digits that matter. */
export const f = (x: number) => (x < 10 ? x.toFixed(3) : x.toFixed(1));

export function fail(what: string, errors: string[]): void {
  if (errors.length) throw new Error(`${what}: ${errors.length} calls failed, e.g. ${errors.slice(0, 3).join('; ')}`);
}

export function log(msg: string): void {
  process.stderr.write(`bench: ${msg}\n`);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface DaemonSample {
  rssKiB: number;
  threads: number;
  fds: number;
  /** Of `fds`, user namespaces: the marks' namespace cache keeps up to 32 idle ones for 30 s (shift.rs). */
  userns: number;
}

/** `userns`: also count the user-namespace fds (a readlink per fd: not in the 20 ms peak sampling). */
export function daemonSample(pid: number, userns = true): DaemonSample {
  const st = readFileSync(`/proc/${pid}/status`, 'utf8');
  return {
    rssKiB: Number(/^VmRSS:\s+(\d+)/m.exec(st)![1]),
    threads: Number(/^Threads:\s+(\d+)/m.exec(st)![1]),
    ...(userns ? fdCounts(pid) : { fds: readdirSync(`/proc/${pid}/fd`).length, userns: 0 }),
  };
}

function fdCounts(pid: number): { fds: number; userns: number } {
  const fds = readdirSync(`/proc/${pid}/fd`);
  let userns = 0;
  for (const fd of fds) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('user:[')) userns++;
    } catch {
      /* closed meanwhile */
    }
  }
  return { fds: fds.length, userns };
}

/** The peak of a daemon's samples while running, until stop() (every 20 ms). */
export function samplePeak(pid: number): { before: DaemonSample; stop: () => DaemonSample } {
  const before = daemonSample(pid);
  let peak = before;
  const t = setInterval(() => {
    const s = daemonSample(pid, false);
    peak = { rssKiB: Math.max(peak.rssKiB, s.rssKiB), threads: Math.max(peak.threads, s.threads), fds: Math.max(peak.fds, s.fds), userns: Math.max(peak.userns, s.userns) };
  }, 20);
  return {
    before,
    stop: () => {
      clearInterval(t);
      return peak;
    },
  };
}

const TICK_MS = 1000 / Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim() || 100);

/**
 * CPU time a process used so far, ms: all its threads (also those that
 * exited: the namespace threads), user and system; and its main thread's
 * alone (the event loop), from schedstat (ns).
 */
export function cpuMs(pid: number): { all: number; main: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const all = (Number(fields[11]) + Number(fields[12])) * TICK_MS;
  const main = Number(readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
  return { all, main };
}

/** The machine's CPU ticks since boot, all cores: busy (everything but idle and iowait) and total (/proc/stat). */
export function machineTicks(): { busy: number; total: number } {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = cpu.slice(0, 8).reduce((a, x) => a + x, 0);
  return { busy: total - (cpu[3] ?? 0) - (cpu[4] ?? 0), total };
}

/** CPU µs per call the daemon spent while `run` made `calls` calls. */
export async function cpuPerCall<T>(pid: number, calls: number, run: () => Promise<T>): Promise<{ result: T; allUs: number; mainUs: number }> {
  const a = cpuMs(pid);
  const result = await run();
  const b = cpuMs(pid);
  return { result, allUs: ((b.all - a.all) * 1000) / calls, mainUs: ((b.main - a.main) * 1000) / calls };
}

export async function adminAdd(stateDir: string, id: string, pid: number, extra: Record<string, unknown> = {}): Promise<string> {
  const Client = adminProto().iwsd.admin.v1.Admin;
  const c = new Client(`unix:${join(stateDir, 'admin.sock')}`, grpc.credentials.createInsecure());
  try {
    return await new Promise<string>((resolve, reject) =>
      c.AddWorkspace({ id, pid, ...extra }, (err: grpc.ServiceError | null, w?: { socketPath?: string }) => (err ? reject(err) : resolve(w!.socketPath!))),
    );
  } finally {
    c.close();
  }
}

/** One call of a client's sequence; `mayFail` (Go client only): its error is not counted. */
export type Call = { rpc: string; request: Record<string, unknown>; mayFail?: boolean };

export const MP: Call[] = [
  { rpc: 'MountProc', request: { target: '/work/target', pid: 1 } },
  { rpc: 'UmountProc', request: { target: '/work/target', pid: 1 } },
];
export const MS: Call[] = [
  { rpc: 'MountSysfs', request: { target: '/work/target', pid: 1 } },
  { rpc: 'UmountSysfs', request: { target: '/work/target', pid: 1 } },
];
export const RING = [{ containerId: 0, hostId: 33333, size: 1 }];

/**
 * The Go client (bench/go-client), built static into target/, or undefined
 * (with a visible note) when no Go toolchain is installed.
 */
export function buildGoClient(): string | undefined {
  const out = join(ROOT, 'target/iwsd-bench-go-client');
  const r = spawnSync('go', ['build', '-o', out, '.'], { cwd: join(ROOT, 'bench/go-client'), env: { ...process.env, CGO_ENABLED: '0' }, stdio: 'inherit' });
  if (r.error || r.status !== 0) {
    log(`Go client not built (${r.error?.message ?? `go build exited ${r.status}`}): the Go-client series are skipped`);
    return undefined;
  }
  return out;
}

export type Timed = { latencies: Record<string, number[]>; errors: string[] };

/**
 * Like TestContainer#timed, from the Go client run inside the container's
 * PID namespace (asynchronously: the bare server lives in this process).
 */
export async function goTimed(bin: string, initHostPid: number, socket: string, calls: Call[], rounds: number, warmup = 0, values?: number[]): Promise<Timed> {
  const spec = JSON.stringify(calls).replaceAll('"$ROUND"', '-1');
  const args = ['--target', String(initHostPid), '--pid', '--', bin, socket, String(rounds), String(warmup), spec];
  if (values) args.push(JSON.stringify(values));
  const p = spawn('nsenter', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  p.stdout.on('data', (d: Buffer) => (out += d.toString()));
  p.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((resolve) => p.once('close', resolve));
  if (code !== 0) throw new Error(`Go client failed (${code}): ${err}`);
  return JSON.parse(out) as Timed;
}

/**
 * A Go client started inside a container and waiting for `go()` (start
 * storms start every client at once): `done` is its whole run's wall time
 * and errors.
 */
export async function readyGoClient(bin: string, initHostPid: number, socket: string, calls: Call[]): Promise<{ go: () => void; done: Promise<{ ms: number; errors: string[] }> }> {
  const p = spawn('nsenter', ['--target', String(initHostPid), '--pid', '--', bin, socket, '1', '0', JSON.stringify(calls)], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, IWSD_BENCH_WAIT: '1' },
  });
  let out = '';
  let err = '';
  p.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const ready = new Promise<void>((resolve, reject) => {
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.startsWith('ready\n')) resolve();
    });
    p.once('close', (code) => reject(new Error(`Go client exited ${code} before starting: ${err}`)));
  });
  const done = new Promise<{ ms: number; errors: string[] }>((resolve, reject) =>
    p.once('close', (code) => {
      if (code !== 0) return reject(new Error(`Go client failed (${code}): ${err}`));
      const r = JSON.parse(out.slice('ready\n'.length)) as { wallMs: number; errors: string[] };
      resolve({ ms: r.wallMs, errors: r.errors });
    }),
  );
  done.catch(() => undefined);
  await ready;
  return { go: () => p.stdin.end('go\n'), done };
}

/**
 * A container light enough to start a thousand of: its own PID, mount
 * (private) and network namespaces, a pivoted root of busybox (hard-linked,
 * not copied, when it can be) with `busybox sleep` as init, and no agent
 * (clients enter its PID namespace with nsenter). `stop()` kills it (and
 * with it its namespace) and removes its root.
 */
export async function lightContainer(dirs: string[] = []): Promise<{ initHostPid: number; rootfs: string; stop: () => void }> {
  const base = mkdtempSync(join(tmpdir(), 'iwsd-bench-'));
  const rootfs = join(base, 'rootfs');
  for (const d of ['bin', 'dev', 'proc', 'sys', 'tmp', ...dirs]) mkdirSync(join(rootfs, d), { recursive: true });
  try {
    linkSync('/bin/busybox', join(rootfs, 'bin/busybox'));
  } catch {
    copyFileSync('/bin/busybox', join(rootfs, 'bin/busybox'));
  }
  symlinkSync('busybox', join(rootfs, 'bin/sh'));
  const script =
    `mount --bind ${rootfs} ${rootfs} && cd ${rootfs} && mkdir -p .old && pivot_root . .old && ` +
    `exec /bin/busybox sh -c 'cd / && /bin/busybox umount -l /.old && /bin/busybox rmdir /.old && exec /bin/busybox sleep 100000'`;
  const unshare: ChildProcess = spawn('unshare', ['--pid', '--fork', '--kill-child', '--mount', '--propagation', 'private', '--net', '--', 'sh', '-c', script], { stdio: 'ignore' });
  const stop = () => {
    unshare.kill('SIGKILL');
    rmSync(base, { recursive: true, force: true });
  };
  try {
    const initHostPid = await waitFor('pivoted container init', () => pivotedInit(unshare), 30_000);
    return { initHostPid, rootfs, stop };
  } catch (err) {
    stop();
    throw err;
  }
}

/**
 * `n` more processes (busybox sleep) inside a container's PID namespace, so
 * that its process table has them; killed with the container.
 */
export function addProcesses(initHostPid: number, n: number): void {
  const r = spawnSync(
    'nsenter',
    ['--target', String(initHostPid), '--mount', '--pid', '--root', '--wd=/', '--', '/bin/busybox', 'sh', '-c', `i=0; while [ $i -lt ${n} ]; do /bin/busybox sleep 100000 & i=$((i+1)); done`],
    { stdio: 'ignore' },
  );
  if (r.status !== 0) throw new Error(`adding ${n} processes to the container failed (nsenter exited ${r.status})`);
}

/** Rate limits out of the way of a measurement loop (the default ones would refuse most of it). */
export const UNLIMITED = Object.fromEntries(['writeIdMapping', 'mountProc', 'umountProc', 'mountSysfs', 'umountSysfs'].map((k) => [k, { points: 1_000_000_000 }]));

/**
 * A ring-1-like process inside a pivoted container: a user namespace
 * without maps and a mount namespace of its own (private, as workspacekit's
 * ring1 after PrepareForUserNS made the root shared), where proc and sysfs
 * can be mounted for it. Returns its host PID and its PID in the container.
 */
export function ringChild(initHostPid: number): Promise<{ host: number; pid: number; stop: () => void }> {
  return spawnUsernsInside(initHostPid, { unshare: ['-m', '--propagation', 'private'], ms: 30_000 });
}
