/**
 * iwsd's TypeScript per call, alone: the workspace server's handlers
 * (boundary, guard, service, state journal, audit log, metrics) called
 * in-process as grpc-js calls them, against a native library that answers
 * at once, with no gRPC transport and no kernel work. CPU µs per call of
 * this process's main thread (counts of work, not wall time), and with each
 * part left out in turn: what each costs.
 */
import { mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { parseConfig } from '../src/config.js';
import { createLogger } from '../src/log.js';
import * as realNative from '../src/native.js';
import type * as native from '../src/native.js';
import { Metrics } from '../src/observability.js';
import { RpcGuard } from '../src/rpcGuard.js';
import { workspaceHandlers, WorkspaceService, type NativeOps } from '../src/service.js';
import { StateStore } from '../src/state.js';
import type { Workspace } from '../src/workspace.js';
import pino from 'pino';
import { RateLimiterMemory } from 'rate-limiter-flexible';

import { freshState, serviceDeps } from '../__test__/helpers/service.js';
import { UNLIMITED, cpuMs } from './lib.js';

type Part = 'log' | 'metrics' | 'journal';

async function perCall(without: Part | undefined, calls: number): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'iwsd-bench-ts-'));
  try {
    const config = parseConfig({ rateLimits: UNLIMITED, limits: { mountsPerWorkspace: 100_000 } });
    // The daemon's destination (async, to a descriptor), to /dev/null; 'silent' without it.
    const log = createLogger(without === 'log' ? 'silent' : 'info', pino.destination({ fd: openSync('/dev/null', 'w'), sync: false }));
    const metrics = without === 'metrics' ? undefined : new Metrics({ workspaces: () => 1, mounts: () => ({ proc: 0, sysfs: 0, nfs: 0, marks: 0 }) });
    const guard = new RpcGuard(() => config, { metrics, log });
    const store = new StateStore(dir);
    let seq = 0;
    const ok = <T>(v: T) => Promise.resolve(v);
    const fake = {
      mountProc: () => ok({ mountId: String(++seq), madeFor: { euid: 0, userns: '4:1' } }),
      umount: () => ok({ mountId: String(seq) }),
    } as unknown as NativeOps;
    const st = freshState('w');
    store.save(st);
    const w = { id: 'w', hostPid: 1, container: {} as native.Container, policy: { rootRange: { start: 33333, size: 1 }, userRanges: [], allowHostRoot: false }, dir, socketPath: '', mounts: new Map(), shift: [], markPath: '/.workspace/mark', fullWorkspaceBackup: false, persistentVolumeClaim: false, state: st } as unknown as Workspace;
    const service = new WorkspaceService(
      w,
      serviceDeps({
        log,
        metrics,
        store: without === 'journal' ? { record: () => undefined } : store,
        native: fake,
        guard,
        shiftMethod: 'idmapped',
        idmappedAnswer: config.shift.idmappedAnswer,
      }),
    );
    const peer = { pid: 4242, uid: 0, gid: 0, startTime: 1 };
    const h = workspaceHandlers(() => ({ peer, context: { service, log } }), metrics);
    const call = (rpc: 'MountProc' | 'UmountProc') =>
      new Promise<void>((resolve, reject) => {
        const c = { request: { target: '/work/t', pid: 1 }, getPeer: () => 'p', getDeadline: () => Infinity, metadata: undefined };
        (h[rpc] as unknown as (c: unknown, cb: (e: unknown) => void) => void)(c, (e) => (e ? reject(new Error(JSON.stringify(e))) : resolve()));
      });
    const round = async (n: number) => {
      for (let i = 0; i < n; i++) {
        await call('MountProc');
        await call('UmountProc');
      }
    };
    await round(500);
    const a = cpuMs(process.pid).main;
    await round(calls / 2);
    const b = cpuMs(process.pid).main;
    log.flush();
    return ((b - a) * 1000) / calls;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Main-thread µs per MountProc/UmountProc of the TypeScript layer, whole and without each part. */
export async function tsLayer(calls = 10_000): Promise<{ whole: number; without: Record<Part, number>; rateLimiterConsume: number; nativeNoop: number }> {
  // Each variant three times, interleaved, and its least: noise (other
  // processes, GC, the JIT) only ever adds time.
  const parts = ['log', 'metrics', 'journal'] as Part[];
  let whole = Infinity;
  const without = Object.fromEntries(parts.map((p) => [p, Infinity])) as Record<Part, number>;
  for (let i = 0; i < 3; i++) {
    whole = Math.min(whole, await perCall(undefined, calls));
    for (const p of parts) without[p] = Math.min(without[p], await perCall(p, calls));
  }
  // The rate limiter (rate-limiter-flexible's RateLimiterMemory) alone: one consume per call.
  const limiter = new RateLimiterMemory({ keyPrefix: 'x', points: 1_000_000_000, duration: 10 });
  for (let i = 0; i < 1000; i++) await limiter.consume('w');
  const a = cpuMs(process.pid).main;
  for (let i = 0; i < calls; i++) await limiter.consume('w');
  const rateLimiterConsume = ((cpuMs(process.pid).main - a) * 1000) / calls;
  // One native call through the binding's task (libuv pool and back) that does nothing in the core.
  for (let i = 0; i < 500; i++) await realNative.resolvePidStrategy('ioctl');
  const n0 = cpuMs(process.pid).main;
  for (let i = 0; i < calls / 4; i++) await realNative.resolvePidStrategy('ioctl');
  const nativeNoop = ((cpuMs(process.pid).main - n0) * 1000) / (calls / 4);
  return { whole, without, rateLimiterConsume, nativeNoop };
}

if (process.argv[1]?.endsWith('tslayer.ts')) {
  for (let i = 0; i < 2; i++) console.log(JSON.stringify(await tsLayer()));
}
