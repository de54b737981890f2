/**
 * Latency per RPC, end to end from clients inside a real container (Node and
 * Go), beside what it is made of, measured in the same run: the syscall
 * floor (the same native operation in-process, no gRPC), a bare grpc-js
 * round trip (a no-op handler, same client), the time inside the daemon's
 * handler (its audit records' durationMs) and the daemon's CPU per call;
 * and the exec-helper design iwsd replaces.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { Container, DEFAULT_PROC_MASKS, mountProc, mountSysfs, prepareShiftMark, removeShiftMark, umount, writeIdMapping, type MountStrategy, type PidStrategy } from '../src/api/native.js';
import * as native from '../src/native.js';
import { TestContainer, makeRootfs, nspid, spawnUsernsInside } from '../__test__/helpers/container.js';
import { TestDaemon } from '../__test__/helpers/daemon.js';
import type { Bench } from './context.js';
import { MP, MS, RING, ROOT, adminAdd, cpuPerCall, fail, goTimed, lightContainer, log, stats, UNLIMITED, type Call, type Timed } from './lib.js';

/** The durationMs of the daemon's audit records of `rpc` among `lines`: the time inside its handler. */
export function serverSide(lines: Record<string, unknown>[], rpc: string): number[] {
  return lines.filter((l) => l.rpc === rpc && l.result === 'OK' && typeof l.durationMs === 'number').map((l) => l.durationMs as number);
}

/** Runs `series` and records its client latencies, the daemon's view of them and its CPU per call. */
async function measured(b: Bench, d: TestDaemon, label: string, calls: Call[], rounds: number, warmup: number, run: () => Promise<Timed>, what: string): Promise<void> {
  const from = d.logs.length;
  const { result, allUs, mainUs } = await cpuPerCall(d.proc.pid!, (rounds + warmup) * calls.length, run);
  fail(what, result.errors);
  const lines = d.logs.slice(from);
  for (const call of calls) {
    b.put(label, call.rpc, result.latencies[call.rpc]!);
    const server = serverSide(lines, call.rpc);
    if (server.length) b.put(`${label} · in daemon`, call.rpc, server.slice(-rounds));
  }
  b.cpu.push({ series: `${calls.map((c) => c.rpc).join('+')} (${label})`, allUs, mainUs });
}

async function usernsChildren(init: number, n: number): Promise<{ pids: number[]; stop: () => void }> {
  const kids: { host: number; stop: () => void }[] = [];
  for (let i = 0; i < n; i++) kids.push(await spawnUsernsInside(init));
  return { pids: kids.map((k) => nspid(k.host).at(-1)!), stop: () => kids.forEach((k) => k.stop()) };
}

/** End-to-end series on one daemon and container, and the bare grpc-js reference. */
export async function endToEnd(b: Bench, daemon: TestDaemon, c: TestContainer, socket: string, base: string): Promise<void> {
  const { N, WARMUP, goClient } = b;
  log(`per-RPC latency, ${N} rounds`);
  for (const calls of [MP, MS]) {
    await measured(b, daemon, 'iwsd', calls, N, WARMUP, () => c.timed(socket, calls, N, WARMUP), calls[0]!.rpc);
    if (goClient) await measured(b, daemon, 'iwsd (Go client)', calls, N, WARMUP, () => goTimed(goClient, c.initHostPid, socket, calls, N, WARMUP), `${calls[0]!.rpc} (Go client)`);
  }
  const kids = await usernsChildren(c.initHostPid, (goClient ? 3 : 2) * N);
  b.cleanups.push(kids.stop);
  b.floorKids = kids.pids.slice(N, 2 * N);
  const WIM: Call[] = [{ rpc: 'WriteIDMapping', request: { pid: '$ROUND', gid: false, mapping: RING } }];
  await measured(b, daemon, 'iwsd', WIM, N, 0, () => c.timed(socket, WIM, N, 0, kids.pids.slice(0, N)), 'WriteIDMapping');
  if (goClient) await measured(b, daemon, 'iwsd (Go client)', WIM, N, 0, () => goTimed(goClient, c.initHostPid, socket, WIM, N, 0, kids.pids.slice(2 * N, 3 * N)), 'WriteIDMapping (Go client)');

  // Reference: a bare grpc-js round trip on this machine (a no-op
  // WriteIDMapping handler, no peer check, no native call, in a process of
  // its own like the daemon), from the same client inside the container:
  // what gRPC alone costs here, in latency and in CPU per call.
  const bareSock = join(base, 'bare.sock');
  const bare = spawn(process.execPath, [join(ROOT, 'bench/bare-server.mjs'), bareSock], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise<void>((resolve, reject) => {
      bare.stdout.once('data', () => resolve());
      bare.once('exit', (code) => reject(new Error(`bare grpc-js server exited ${code}`)));
    });
    const BARE: Call[] = [{ rpc: 'WriteIDMapping', request: { pid: 1, gid: false, mapping: [] } }];
    const runs: [string, () => Promise<Timed>][] = [['bare grpc-js', () => c.timed(bareSock, BARE, N, WARMUP)]];
    if (goClient) runs.push(['bare grpc-js (Go client)', () => goTimed(goClient, c.initHostPid, bareSock, BARE, N, WARMUP)]);
    for (const [label, run] of runs) {
      const r = await cpuPerCall(bare.pid!, N + WARMUP, run);
      fail(label, r.result.errors);
      b.put(label, 'WriteIDMapping', r.result.latencies.WriteIDMapping!);
      b.cpu.push({ series: `WriteIDMapping (${label})`, allUs: r.allUs, mainUs: r.mainUs });
    }
  } finally {
    bare.kill('SIGTERM');
  }
}

/** The one-shots' floors: the mark cycled on one warm container, and as the daemon does it on a fresh one. */
export const WARM_FLOOR = 'floor (idmapped)';
export const FRESH_FLOOR = 'floor (idmapped, fresh container)';

const FUSE = (base: string) => ({ binary: 'fuse-overlayfs', upper: join(base, 'fu'), work: join(base, 'fw'), staging: join(base, 'fs'), upperBytes: 64 << 20 });

/** A container of its own for each one-shot workspace (one registration per container), with `client` inside it. */
async function oneShotContainer(b: Bench, client: 'Node' | 'Go'): Promise<{ initHostPid: number; timed: (socket: string, calls: Call[], rounds?: number) => Promise<Timed>; stop: () => Promise<void> | void }> {
  if (client === 'Go') {
    const c = await lightContainer(['work']);
    return { initHostPid: c.initHostPid, timed: (socket, calls, rounds = 1) => goTimed(b.goClient!, c.initHostPid, socket, calls, rounds, 0), stop: c.stop };
  }
  const fs = makeRootfs();
  const c = await TestContainer.start({ rootfs: fs.rootfs });
  const mayFail = (calls: Call[], e: string) => calls.some((x) => x.mayFail && e.startsWith(`${x.rpc}:`));
  return {
    initHostPid: c.initHostPid,
    timed: (socket, calls, rounds = 1) => c.timed(socket, calls, rounds).then((r) => ({ ...r, errors: r.errors.filter((e) => !mayFail(calls, e)) })),
    stop: () => c.stop().then(fs.cleanup),
  };
}

/** The label of a one-shot series: `iwsd (idmapped)` from the Node client, `iwsd (idmapped, Go client)` from the Go one. */
export const oneShotSeries = (method: string, client: 'Node' | 'Go') => `iwsd (${method}${client === 'Go' ? ', Go client' : ''})`;

/** How many one-shot workspaces per shift method and client (and fresh containers of the mark's floor). */
export const oneShotCount = (b: Bench) => Math.min(b.N, 40);

/** Unrecorded one-shot workspaces before each series (after b.WARMUP refused calls warmed the shared per-call path). */
const ONESHOT_WARMUP = 5;

/**
 * One-shot RPCs: one workspace (and container) each, per shift method this
 * kernel has, from the Node client and (when built) the Go client.
 */
export async function oneShots(b: Bench): Promise<void> {
  const ONESHOT = oneShotCount(b);
  // A first call makes the connection (HTTP/2 set-up, the daemon's peer
  // check), so the one-shots are timed on a warm connection, as
  // workspacekit's are; the first call's time is reported on its own. It is
  // an UmountProc of nothing: answered NOT_FOUND, no effect.
  const SEQ: Call[] = [
    { rpc: 'UmountProc', request: { target: '/work', pid: 1 }, mayFail: true },
    { rpc: 'PrepareForUserNS', request: {} },
    { rpc: 'Teardown', request: {} },
  ];
  const clients: ('Node' | 'Go')[] = b.goClient ? ['Node', 'Go'] : ['Node'];
  for (const method of b.methods) {
    for (const client of clients) {
      const label = oneShotSeries(method, client);
      log(`PrepareForUserNS/Teardown (${method}, ${client} client), ${ONESHOT} workspaces`);
      // Unlimited mount rates: the warm-up's refused UmountProcs are not to be answered by the rate limiter.
      const d = await TestDaemon.start({ shift: { method }, rateLimits: UNLIMITED });
      const prep: number[] = [];
      const td: number[] = [];
      const first: number[] = [];
      let from = d.logs.length;
      let cpu = { allUs: 0, mainUs: 0 };
      try {
        // A serving daemon's per-call path (grpc-js, the boundary, the
        // caller pin) is hot from its other calls; a fresh one's is not
        // optimized yet: b.WARMUP refused calls (SEQ's first) warm it, then
        // ONESHOT_WARMUP one-shot workspaces go unrecorded.
        const warm = await oneShotContainer(b, client);
        try {
          const s = await adminAdd(d.stateDir, `os-${method}-${client}-warm`, warm.initHostPid, { markPath: '/work/mark' });
          await warm.timed(s, SEQ.slice(0, 1), b.WARMUP);
        } finally {
          await warm.stop();
        }
        for (let i = 0; i < ONESHOT_WARMUP + ONESHOT; i++) {
          const c = await oneShotContainer(b, client);
          if (i === ONESHOT_WARMUP) from = d.logs.length;
          try {
            const s = await adminAdd(d.stateDir, `os-${method}-${client}-${i}`, c.initHostPid, { markPath: '/work/mark' });
            const r = await cpuPerCall(d.proc.pid!, 3, () => c.timed(s, SEQ));
            fail(`PrepareForUserNS/Teardown (${method}, ${client} client)`, r.result.errors);
            if (i < ONESHOT_WARMUP) continue;
            first.push(...r.result.latencies.UmountProc!);
            prep.push(...r.result.latencies.PrepareForUserNS!);
            td.push(...r.result.latencies.Teardown!);
            cpu = { allUs: cpu.allUs + r.allUs / ONESHOT, mainUs: cpu.mainUs + r.mainUs / ONESHOT };
          } finally {
            await c.stop();
          }
        }
      } finally {
        await d.stop();
      }
      b.put(`${label}, first call on a new connection (refused)`, 'UmountProc', first);
      b.put(label, 'PrepareForUserNS', prep);
      b.put(label, 'Teardown', td);
      const lines = d.logs.slice(from);
      b.put(`${label} · in daemon`, 'PrepareForUserNS', serverSide(lines, 'PrepareForUserNS'));
      b.put(`${label} · in daemon`, 'Teardown', serverSide(lines, 'Teardown'));
      b.cpu.push({ series: `connect+PrepareForUserNS+Teardown (${label})`, allUs: cpu.allUs, mainUs: cpu.mainUs });
    }
  }
}

const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;

/** The syscall floor: the same native operations in-process, no gRPC, no daemon. */
export async function floor(b: Bench, c: TestContainer): Promise<void> {
  const { N, WARMUP } = b;
  log('syscall floor');
  const container = await Container.open(c.initHostPid);
  try {
    const strategies = b.env.strategies as { pid: PidStrategy; mount: MountStrategy };
    const common = { pid: 1, target: '/work/target', pidStrategy: strategies.pid, mountStrategy: strategies.mount };
    for (const [mount, names] of [
      [mountProc, ['MountProc', 'UmountProc']],
      [mountSysfs, ['MountSysfs', 'UmountSysfs']],
    ] as const) {
      const fm: number[] = [];
      const fu: number[] = [];
      for (let i = 0; i < WARMUP + N; i++) {
        const t0 = process.hrtime.bigint();
        const { mountId } = await mount(container, common);
        const t1 = process.hrtime.bigint();
        await umount(container, { ...common, owned: [mountId] });
        if (i >= WARMUP) {
          fm.push(Number(t1 - t0) / 1e6);
          fu.push(ms(t1));
        }
      }
      b.put('floor', names[0], fm);
      b.put('floor', names[1], fu);
    }
    // The same with the caller checks the daemon's calls make (the caller
    // pinned by PID and start time, its uid and namespaces checked, the mount
    // recorded as made for it): container root, as the bench's clients.
    const peer: native.Peer = { pid: c.initHostPid, uid: 0, gid: 0, startTime: container.handle.startTime ?? undefined };
    const cm: number[] = [];
    const cu: number[] = [];
    for (let i = 0; i < WARMUP + N; i++) {
      const t0 = process.hrtime.bigint();
      const made = await native.mountProc(container.handle, peer, { ...common, masks: DEFAULT_PROC_MASKS });
      const t1 = process.hrtime.bigint();
      await native.umount(container.handle, peer, { ...common, owned: [{ mountId: made.mountId, madeFor: made.madeFor }] });
      if (i >= WARMUP) {
        cm.push(Number(t1 - t0) / 1e6);
        cu.push(ms(t1));
      }
    }
    b.put('floor, with caller checks', 'MountProc', cm);
    b.put('floor, with caller checks', 'UmountProc', cu);
    const fw: number[] = [];
    for (const pid of b.floorKids) {
      const t0 = process.hrtime.bigint();
      await writeIdMapping(container, { pid, mappings: RING });
      fw.push(ms(t0));
    }
    b.put('floor', 'WriteIDMapping', fw);
  } finally {
    container.close();
  }
}

/**
 * The idmapped mark in-process (user namespace, clone, mount_setattr,
 * move_mount) and its removal, on a container of its own (the mark makes
 * the container's root shared, where proc/sysfs mounts are then refused).
 */
export async function markFloor(b: Bench, base: string): Promise<void> {
  log('syscall floor of the idmapped mark');
  const light = await lightContainer(['work']);
  const container = await Container.open(light.initHostPid);
  try {
    const pp: number[] = [];
    const pt: number[] = [];
    for (let i = 0; i < Math.min(b.N, 40) + 5; i++) {
      const t0 = process.hrtime.bigint();
      const mark = await prepareShiftMark(container, { markPath: '/work/mark', method: 'idmapped', fuse: FUSE(base) });
      const t1 = process.hrtime.bigint();
      const r = await removeShiftMark(container, { mark, markPath: '/work/mark', fuse: FUSE(base) });
      if (!r.success) throw new Error(`floor removeShiftMark: ${r.problems.join('; ')}`);
      if (i >= 5) {
        pp.push(Number(t1 - t0) / 1e6);
        pt.push(ms(t1));
      }
    }
    b.put(WARM_FLOOR, 'PrepareForUserNS', pp);
    b.put(WARM_FLOOR, 'Teardown', pt);
  } finally {
    container.close();
    light.stop();
  }
}

/**
 * The idmapped one-shots' native work as the daemon does it, through the
 * binding, on a fresh container per workspace (its first mark: the root made
 * shared, /dev nodes made, the caller pinned): PrepareForUserNS =
 * authorizeLifecycle + prepareShiftMark + makeContainerDevices, Teardown =
 * authorizeLifecycle + removeShiftMark. Each part is timed too. The caller
 * is the container's init as container root (the daemon's default rule,
 * root-or-init-uid). The daemon makes each one-shot one native call
 * (prepareForUserNs, teardown); these separate calls do the same kernel work
 * plus a pool round trip or two (~25 µs each): a floor from slightly above.
 */
export async function markFloorFresh(b: Bench, base: string): Promise<void> {
  const count = oneShotCount(b);
  const WARM = 3;
  log(`syscall floor of the idmapped one-shots, ${count} fresh containers`);
  const strategies = b.env.strategies as { pid: PidStrategy };
  const parts: Record<string, number[]> = {};
  const add = (part: string, x: number) => (parts[part] ??= []).push(x);
  const pp: number[] = [];
  const pt: number[] = [];
  for (let i = 0; i < count + WARM; i++) {
    const light = await lightContainer(['work']);
    let container: Container | undefined;
    try {
      container = await Container.open(light.initHostPid);
      const peer: native.Peer = { pid: light.initHostPid, uid: 0, gid: 0, startTime: container.handle.startTime ?? undefined };
      const t0 = process.hrtime.bigint();
      await native.authorizeLifecycle(container.handle, peer, 'root-or-init-uid');
      const t1 = process.hrtime.bigint();
      const mark = await prepareShiftMark(container, { markPath: '/work/mark', method: 'idmapped', fuse: FUSE(base) });
      const t2 = process.hrtime.bigint();
      await native.makeContainerDevices(container.handle);
      const t3 = process.hrtime.bigint();
      await native.authorizeLifecycle(container.handle, peer, 'root-or-init-uid');
      const t4 = process.hrtime.bigint();
      const r = await removeShiftMark(container, { mark, markPath: '/work/mark', fuse: FUSE(base), pidStrategy: strategies.pid });
      const t5 = process.hrtime.bigint();
      if (!r.success) throw new Error(`fresh-container floor: removeShiftMark: ${r.problems.join('; ')}`);
      if (i < WARM) continue;
      const d = (a: bigint, z: bigint) => Number(z - a) / 1e6;
      pp.push(d(t0, t3));
      pt.push(d(t3, t5));
      add('PrepareForUserNS: authorizeLifecycle', d(t0, t1));
      add('PrepareForUserNS: prepareShiftMark', d(t1, t2));
      add('PrepareForUserNS: makeContainerDevices', d(t2, t3));
      add('Teardown: authorizeLifecycle', d(t3, t4));
      add('Teardown: removeShiftMark', d(t4, t5));
    } finally {
      container?.close();
      light.stop();
    }
  }
  b.put(FRESH_FLOOR, 'PrepareForUserNS', pp);
  b.put(FRESH_FLOOR, 'Teardown', pt);
  b.floorParts = Object.fromEntries(Object.entries(parts).map(([k, xs]) => [k, stats(xs)]));
}

/** The exec-helper design iwsd replaces: one helper exec per step; WriteIDMapping after a /proc scan. */
export function execHelper(b: Bench, c: TestContainer, kids: number[]): void {
  const { N } = b;
  // Each round execs helpers (no JIT to warm in the daemon's sense): 20 rounds settle the page cache.
  const WARMUP = Math.min(b.WARMUP, 20);
  log('exec-helper baseline');
  const helper = join(ROOT, 'target/release/iwsd-exec-helper');
  const r = spawnSync('unshare', ['--mount', '--propagation', 'private', process.execPath, join(ROOT, 'bench/baseline.mjs'), helper, String(c.initHostPid), String(N), String(WARMUP), '/work/b'], {
    encoding: 'utf8',
    maxBuffer: 1 << 26,
  });
  if (r.status !== 0) throw new Error(`baseline failed: ${r.stderr}`);
  const base = JSON.parse(r.stdout) as Record<string, number[]>;
  b.put('exec-helper', 'MountProc', base.MountProc!);
  b.put('exec-helper', 'UmountProc', base.UmountProc!);
  const level = nspid(c.initHostPid).length - 1;
  const bw: number[] = [];
  for (const pid of kids) {
    const t0 = process.hrtime.bigint();
    let host = 0;
    for (const e of readdirSync('/proc')) {
      if (!/^\d+$/.test(e)) continue;
      try {
        const m = /^NSpid:\s*(.*)$/m.exec(readFileSync(`/proc/${e}/status`, 'utf8'));
        if (m && m[1]!.trim().split(/\s+/)[level] === String(pid)) {
          host = Number(e);
          break;
        }
      } catch {
        // exited
      }
    }
    writeFileSync(`/proc/${host}/gid_map`, '0 33333 1\n');
    bw.push(ms(t0));
  }
  b.put('exec-helper', 'WriteIDMapping', bw);
}
