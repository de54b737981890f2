/** What every series of one bench run shares, and what it found. */
import type { KernelFeatures } from '../src/native.js';
import type { ProfileSummary } from './profile.js';
import { stats, type DaemonSample, type Stats } from './lib.js';

export interface StormResult {
  workspaces: number;
  client: 'Go' | 'Node';
  setupMs: number;
  wallMs: number;
  perWorkspace: Stats;
  errors: number;
  before: DaemonSample;
  peak: DaemonSample;
  after: DaemonSample;
  /** Daemon CPU (all threads) during the storm, ms, and as a share of the machine's cores over its wall time. */
  cpuMs: number;
  utilisation: number;
  /** The daemon's main (JS) thread alone, ms of CPU during the storm. */
  mainCpuMs: number;
  /** The whole machine's busy share of its cores over the storm (/proc/stat): clients, kernel and daemon together. */
  machineBusy: number;
  /** The same over the second before the storm (clients waiting, daemon idle): what other programs used. */
  machineBusyBefore?: number;
  /** Time of each RPC inside the daemon (its audit records: lane waits included). */
  inDaemon: Record<string, Stats | undefined>;
  /**
   * The long lane's occupancy, when the daemon logged at debug (its lane-wait
   * records; bench/storm-lane.ts): PrepareForUserNS/Teardown's time in the
   * daemon minus their waits for a slot is the time they held one.
   */
  longLane?: { slots: number; calls: number; waitedMs: number; heldMsPerCall: number; busyShare: number };
}

export interface Bench {
  N: number;
  /**
   * Unrecorded rounds before each series (IWSD_BENCH_WARMUP, default
   * 1,000): V8 optimizes grpc-js's and the daemon's per-call paths only
   * after several hundred calls. With 20, a fresh bare grpc-js server
   * answered the Go client in 0.58 ms p50 where a warm one takes 0.15-0.23,
   * and the daemon, warmed by the series before, less so: the baseline the
   * daemon's own cost is taken against was the colder one.
   */
  WARMUP: number;
  /** IWSD_BENCH_LONG=1: the long series (storm of 1,000) too. */
  long: boolean;
  goClient: string | undefined;
  kernel: KernelFeatures;
  methods: ('idmapped' | 'fuse' | 'shiftfs')[];
  env: Record<string, unknown>;
  /** Latency per RPC per series. */
  results: Record<string, Record<string, Stats>>;
  put(series: string, rpc: string, xs: number[]): void;
  /** Daemon CPU per call of a series, µs: all threads, and its main thread (the event loop). */
  cpu: { series: string; allUs: number; mainUs: number }[];
  /** User-namespaced processes in the main container for the floor's WriteIDMapping (and the exec-helper's). */
  floorKids: number[];
  /** Undone in reverse order at the end, also on failure. */
  cleanups: (() => Promise<void> | void)[];
  growth: { mounts: number; p50: number; p99: number }[];
  idmapByProcesses: { processes: number; stats: Stats }[];
  idmapByWorkspaces: { workspaces: number; stats: Stats }[];
  memory: { workspaces: number; rssKiB: number }[];
  idleKiBPerWorkspace: number;
  fairness?: {
    alone: Stats;
    during: Stats;
    flood: { calls: number; codes: Record<string, number>; heldConnected: number; heldClosedByDaemon: number };
    daemon: { before: DaemonSample; peak: DaemonSample };
  };
  storms: StormResult[];
  /** This machine's own jitter: p50/p99 of a fixed busy loop (ms), the same in every process. */
  machine?: Stats;
  profiles: { name: string; summary: ProfileSummary; svg: string }[];
  /** The parts of the fresh-container floor of the idmapped one-shots (bench/latency.ts markFloorFresh), ms. */
  floorParts?: Record<string, Stats>;
  /** Main-thread CPU µs per call of iwsd's TypeScript alone (bench/tslayer.ts), and of one native call that does nothing (the pool round trip). */
  tsLayer?: { whole: number; without: Record<string, number>; rateLimiterConsume: number; nativeNoop: number };
}

export function newBench(init: Pick<Bench, 'N' | 'WARMUP' | 'long' | 'goClient' | 'kernel' | 'methods' | 'env'>): Bench {
  const results: Bench['results'] = {};
  return {
    ...init,
    results,
    put: (series, rpc, xs) => {
      if (xs.length) (results[rpc] ??= {})[series] = stats(xs);
    },
    cpu: [],
    floorKids: [],
    cleanups: [],
    growth: [],
    idmapByProcesses: [],
    idmapByWorkspaces: [],
    memory: [],
    idleKiBPerWorkspace: NaN,
    storms: [],
    profiles: [],
  };
}
