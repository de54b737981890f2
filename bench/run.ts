/**
 * `npm run bench` (as root): iwsd's RPC latency end to end (client inside a
 * real container), against the syscall floor (the same native operation
 * in-process, no gRPC) and the exec-helper baseline (the design iwsd
 * replaces), measured in the same run; plus a start storm, idle memory per
 * workspace and how MountProc cost grows with the container's mount table.
 * Writes bench/results/latest.{md,json,svg}. Fails loudly if an operation
 * errors. Sizes: IWSD_BENCH_N (default 300), IWSD_BENCH_STORM (default "50,200").
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import * as grpc from '@grpc/grpc-js';

import { Container, mountProc, umountProc, writeIdMapping } from '../src/api/native.js';
import { adminProto, workspaceProto } from '../src/proto.js';
import * as native from '../src/native.js';
import { TestContainer, makeRootfs, nspid, spawnUsernsInside } from '../__test__/helpers/container.js';
import { TestDaemon } from '../__test__/helpers/daemon.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const N = Number(process.env.IWSD_BENCH_N ?? 300);
const WARMUP = 20;
const STORM = (process.env.IWSD_BENCH_STORM ?? '50,200').split(',').map(Number).filter((x) => x > 0);
const RING = [{ containerId: 0, hostId: 33333, size: 1 }];

type Stats = { n: number; min: number; p50: number; p95: number; p99: number; max: number };
function stats(xs: number[]): Stats {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
  return { n: s.length, min: s[0]!, p50: q(0.5), p95: q(0.95), p99: q(0.99), max: s[s.length - 1]! };
}
const f = (x: number) => (x < 10 ? x.toFixed(3) : x.toFixed(1));

function fail(what: string, errors: string[]): void {
  if (errors.length) throw new Error(`${what}: ${errors.length} calls failed, e.g. ${errors.slice(0, 3).join('; ')}`);
}

function log(msg: string): void {
  process.stderr.write(`bench: ${msg}\n`);
}

function daemonSample(pid: number): { rssKiB: number; threads: number; fds: number } {
  const st = readFileSync(`/proc/${pid}/status`, 'utf8');
  return {
    rssKiB: Number(/^VmRSS:\s+(\d+)/m.exec(st)![1]),
    threads: Number(/^Threads:\s+(\d+)/m.exec(st)![1]),
    fds: readdirSync(`/proc/${pid}/fd`).length,
  };
}

async function usernsChildren(init: number, n: number): Promise<{ pids: number[]; stop: () => void }> {
  const kids: { host: number; stop: () => void }[] = [];
  for (let i = 0; i < n; i++) kids.push(await spawnUsernsInside(init));
  return { pids: kids.map((k) => nspid(k.host).at(-1)!), stop: () => kids.forEach((k) => k.stop()) };
}

async function adminAdd(stateDir: string, id: string, pid: number, extra: Record<string, unknown> = {}): Promise<string> {
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

type Call = { rpc: string; request: Record<string, unknown> };

/**
 * The Go client (bench/go-client), built static into target/, or undefined
 * (with a visible note) when no Go toolchain is installed.
 */
function buildGoClient(): string | undefined {
  const out = join(ROOT, 'target/iwsd-bench-go-client');
  const r = spawnSync('go', ['build', '-o', out, '.'], { cwd: join(ROOT, 'bench/go-client'), env: { ...process.env, CGO_ENABLED: '0' }, stdio: 'inherit' });
  if (r.error || r.status !== 0) {
    log(`Go client not built (${r.error?.message ?? `go build exited ${r.status}`}): the Go-client series are skipped`);
    return undefined;
  }
  return out;
}

/**
 * Like TestContainer#timed, from the Go client run inside the container's
 * PID namespace (asynchronously: the bare server lives in this process).
 */
async function goTimed(bin: string, initHostPid: number, socket: string, calls: Call[], rounds: number, warmup = 0, values?: number[]): Promise<{ latencies: Record<string, number[]>; errors: string[] }> {
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
  return JSON.parse(out) as { latencies: Record<string, number[]>; errors: string[] };
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the benchmark needs root');
  execFileSync('cargo', ['build', '--release', '-q', '-p', 'iwsd-exec-helper'], { cwd: ROOT, stdio: 'inherit' });
  const helper = join(ROOT, 'target/release/iwsd-exec-helper');
  const goClient = buildGoClient();
  const kernel = await native.probeKernel();
  const env = { kernel: release(), cores: cpus().length, cpu: cpus()[0]?.model ?? '', node: process.version, n: N, strategies: {} as Record<string, string>, shiftMethods: '' };
  env.strategies = { pid: await native.resolvePidStrategy('auto'), mount: await native.resolveMountStrategy('auto'), peer: kernel.peerPidfd ? 'SO_PEERPIDFD' : 'SO_PEERCRED' };

  const results: Record<string, Record<string, Stats>> = {};
  const put = (series: string, rpc: string, xs: number[]) => ((results[rpc] ??= {})[series] = stats(xs));

  const UNLIMITED = Object.fromEntries(['writeIdMapping', 'mountProc', 'umountProc', 'mountSysfs', 'umountSysfs'].map((k) => [k, { points: 1_000_000_000 }]));
  const daemon = await TestDaemon.start({ rateLimits: UNLIMITED, limits: { mountsPerWorkspace: 100_000 } });
  const cleanups: (() => Promise<void> | void)[] = [() => daemon.stop().then(() => undefined)];
  try {
    const fs = makeRootfs();
    cleanups.push(fs.cleanup);
    for (const d of ['work/target', 'work/b', 'work/g']) mkdirSync(join(fs.rootfs, d), { recursive: true });
    const c = await TestContainer.start({ rootfs: fs.rootfs });
    cleanups.push(() => c.stop());
    const socket = await adminAdd(daemon.stateDir, 'bench', c.initHostPid);

    // ---- per RPC, end to end ---------------------------------------------------
    log(`per-RPC latency, ${N} rounds`);
    const mp = await c.timed(socket, [{ rpc: 'MountProc', request: { target: '/work/target', pid: 1 } }, { rpc: 'UmountProc', request: { target: '/work/target', pid: 1 } }], N, WARMUP);
    fail('MountProc/UmountProc', mp.errors);
    put('iwsd', 'MountProc', mp.latencies.MountProc!);
    put('iwsd', 'UmountProc', mp.latencies.UmountProc!);
    const ms = await c.timed(socket, [{ rpc: 'MountSysfs', request: { target: '/work/target', pid: 1 } }, { rpc: 'UmountSysfs', request: { target: '/work/target', pid: 1 } }], N, WARMUP);
    fail('MountSysfs/UmountSysfs', ms.errors);
    put('iwsd', 'MountSysfs', ms.latencies.MountSysfs!);
    put('iwsd', 'UmountSysfs', ms.latencies.UmountSysfs!);
    // The same series from the Go client (most workspace tooling is Go).
    const MP: Call[] = [{ rpc: 'MountProc', request: { target: '/work/target', pid: 1 } }, { rpc: 'UmountProc', request: { target: '/work/target', pid: 1 } }];
    const MS: Call[] = [{ rpc: 'MountSysfs', request: { target: '/work/target', pid: 1 } }, { rpc: 'UmountSysfs', request: { target: '/work/target', pid: 1 } }];
    if (goClient) {
      for (const calls of [MP, MS]) {
        const g = await goTimed(goClient, c.initHostPid, socket, calls, N, WARMUP);
        fail('Go client', g.errors);
        for (const call of calls) put('iwsd (Go client)', call.rpc, g.latencies[call.rpc]!);
      }
    }
    const kids = await usernsChildren(c.initHostPid, (goClient ? 4 : 3) * N);
    cleanups.push(kids.stop);
    const wim = await c.timed(socket, [{ rpc: 'WriteIDMapping', request: { pid: '$ROUND', gid: false, mapping: RING } }], N, 0, kids.pids.slice(0, N));
    fail('WriteIDMapping', wim.errors);
    put('iwsd', 'WriteIDMapping', wim.latencies.WriteIDMapping!);
    if (goClient) {
      const g = await goTimed(goClient, c.initHostPid, socket, [{ rpc: 'WriteIDMapping', request: { pid: '$ROUND', gid: false, mapping: RING } }], N, 0, kids.pids.slice(3 * N, 4 * N));
      fail('Go client WriteIDMapping', g.errors);
      put('iwsd (Go client)', 'WriteIDMapping', g.latencies.WriteIDMapping!);
    }

    // Reference: a bare grpc-js round trip on this machine (a no-op
    // WriteIDMapping handler, no peer check, no native call), from the same
    // client inside the container: what gRPC alone costs here.
    const bare = new grpc.Server();
    bare.addService(workspaceProto().iws.InWorkspaceService.service, {
      WriteIDMapping: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, { message: '', errorCode: 0 }),
    });
    const bareSock = join(fs.base, 'bare.sock');
    await new Promise<void>((res, rej) => bare.bindAsync(`unix:${bareSock}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? rej(e) : res())));
    const br = await c.timed(bareSock, [{ rpc: 'WriteIDMapping', request: { pid: 1, gid: false, mapping: [] } }], N, WARMUP);
    fail('bare grpc-js', br.errors);
    put('bare grpc-js', 'WriteIDMapping', br.latencies.WriteIDMapping!);
    if (goClient) {
      const g = await goTimed(goClient, c.initHostPid, bareSock, [{ rpc: 'WriteIDMapping', request: { pid: 1, gid: false, mapping: [] } }], N, WARMUP);
      fail('bare grpc-js (Go client)', g.errors);
      put('bare grpc-js (Go client)', 'WriteIDMapping', g.latencies.WriteIDMapping!);
    }
    bare.forceShutdown();

    // One-shot RPCs: one workspace each, per shift method this kernel has.
    const ONESHOT = Math.min(N, 40);
    const methods = (['idmapped', 'fuse', 'shiftfs'] as const).filter((m) => (m === 'shiftfs' ? kernel.shiftfs : m === 'fuse' ? kernel.fuse : true));
    env.shiftMethods = methods.join(', ');
    if (!kernel.shiftfs) log('shiftfs is not available on this kernel: its PrepareForUserNS/Teardown series are skipped');
    for (const method of methods) {
      const d = await TestDaemon.start({ shift: { method } });
      cleanups.push(() => d.stop().then(() => undefined));
      const prep: number[] = [];
      const td: number[] = [];
      for (let i = 0; i < ONESHOT; i++) {
        const s = await adminAdd(d.stateDir, `os-${method}-${i}`, c.initHostPid, { markPath: `/work/mark-${method}-${i}` });
        const r = await c.timed(s, [{ rpc: 'PrepareForUserNS', request: {} }, { rpc: 'Teardown', request: {} }], 1);
        fail(`PrepareForUserNS/Teardown (${method})`, r.errors);
        prep.push(...r.latencies.PrepareForUserNS!);
        td.push(...r.latencies.Teardown!);
      }
      put(`iwsd (${method})`, 'PrepareForUserNS', prep);
      put(`iwsd (${method})`, 'Teardown', td);
    }

    // ---- syscall floor: the same native operations in-process ---------------------
    log('syscall floor');
    const container = await Container.open(c.initHostPid);
    const fm: number[] = [];
    const fu: number[] = [];
    for (let i = 0; i < WARMUP + N; i++) {
      const t0 = process.hrtime.bigint();
      const { mountId } = await mountProc(container, { pid: 1, target: '/work/target' });
      const t1 = process.hrtime.bigint();
      await umountProc(container, { pid: 1, target: '/work/target', owned: [mountId] });
      const t2 = process.hrtime.bigint();
      if (i >= WARMUP) {
        fm.push(Number(t1 - t0) / 1e6);
        fu.push(Number(t2 - t1) / 1e6);
      }
    }
    put('floor', 'MountProc', fm);
    put('floor', 'UmountProc', fu);
    const fw: number[] = [];
    for (const pid of kids.pids.slice(N, 2 * N)) {
      const t0 = process.hrtime.bigint();
      await writeIdMapping(container, { pid, mappings: RING });
      fw.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    put('floor', 'WriteIDMapping', fw);

    // ---- exec-helper baseline ------------------------------------------------------
    log('exec-helper baseline');
    const b = spawnSync('unshare', ['--mount', '--propagation', 'private', process.execPath, join(ROOT, 'bench/baseline.mjs'), helper, String(c.initHostPid), String(N), String(WARMUP), '/work/b'], {
      encoding: 'utf8',
      maxBuffer: 1 << 26,
    });
    if (b.status !== 0) throw new Error(`baseline failed: ${b.stderr}`);
    const base = JSON.parse(b.stdout) as Record<string, number[]>;
    put('exec-helper', 'MountProc', base.MountProc!);
    put('exec-helper', 'UmountProc', base.UmountProc!);
    // WriteIDMapping as that design did it: scan /proc/*/status for the PID, then write.
    const level = nspid(c.initHostPid).length - 1;
    const bw: number[] = [];
    for (const pid of kids.pids.slice(2 * N, 3 * N)) {
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
      writeFileSync(`/proc/${host}/uid_map`, '0 33333 1\n');
      bw.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    put('exec-helper', 'WriteIDMapping', bw);
    container.close();

    // ---- growth with the container's mount table ------------------------------------
    log('growth');
    const growth: { mounts: number; p50: number; p99: number }[] = [];
    let have = 0;
    for (const k of [1, 10, 100, 1000]) {
      const add = k - have;
      const r = spawnSync('nsenter', ['--target', String(c.initHostPid), '--mount', '--root', '--wd=/', '--', '/bin/busybox', 'sh', '-c', `i=${have}; while [ $i -lt ${k} ]; do /bin/busybox mkdir -p /work/g/$i && /bin/busybox mount -t tmpfs g /work/g/$i || exit 1; i=$((i+1)); done`], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`adding ${add} mounts failed: ${r.stderr}`);
      have = k;
      const g = await c.timed(socket, [{ rpc: 'MountProc', request: { target: '/work/target', pid: 1 } }, { rpc: 'UmountProc', request: { target: '/work/target', pid: 1 } }], 100, 10);
      fail('growth', g.errors);
      const st = stats(g.latencies.MountProc!);
      growth.push({ mounts: k, p50: st.p50, p99: st.p99 });
    }

    // ---- fairness: a quiet workspace during a neighbour's flood --------------------------
    // Default configuration, except the quiet workspace's mount rate limits
    // (its own measurement loop would hit them). The neighbour keeps 3,000
    // WriteIDMapping calls outstanding over 16 connections (most answered
    // RESOURCE_EXHAUSTED by its rate limit) and opens 500 more connections
    // that send nothing.
    log('fairness');
    const fairness = await (async () => {
      const fdm = await TestDaemon.start({ rateLimits: { mountProc: { points: 1_000_000_000 }, umountProc: { points: 1_000_000_000 } } });
      cleanups.push(() => fdm.stop().then(() => undefined));
      const ffs = makeRootfs();
      cleanups.push(ffs.cleanup);
      const qc = await TestContainer.start({ rootfs: ffs.rootfs });
      cleanups.push(() => qc.stop());
      const nc = await TestContainer.start();
      cleanups.push(() => nc.stop());
      const quiet = await adminAdd(fdm.stateDir, 'quiet', qc.initHostPid);
      const noisy = await adminAdd(fdm.stateDir, 'noisy', nc.initHostPid);
      const alone = await qc.timed(quiet, MP, N, WARMUP);
      fail('fairness (alone)', alone.errors);
      const before = daemonSample(fdm.proc.pid!);
      let peak = before;
      const sampler = setInterval(() => {
        const x = daemonSample(fdm.proc.pid!);
        peak = { rssKiB: Math.max(peak.rssKiB, x.rssKiB), threads: Math.max(peak.threads, x.threads), fds: Math.max(peak.fds, x.fds) };
      }, 20);
      const connected = await nc.hold('held', noisy, 500);
      await nc.flood(noisy, [{ rpc: 'WriteIDMapping', request: { pid: 1, gid: false, mapping: RING } }], 3000, 16);
      await new Promise((r) => setTimeout(r, 1000));
      const during = await qc.timed(quiet, MP, N, WARMUP);
      const flood = await nc.unflood();
      const held = await nc.held('held');
      await nc.unhold('held');
      clearInterval(sampler);
      fail('fairness (during the flood)', during.errors);
      return {
        alone: stats(alone.latencies.MountProc!),
        during: stats(during.latencies.MountProc!),
        flood: { ...flood, heldConnected: connected, heldClosedByDaemon: held.closed },
        daemon: { before, peak },
      };
    })();

    // ---- idle memory per workspace ------------------------------------------------------
    log('memory');
    const memDaemon = await TestDaemon.start({});
    cleanups.push(() => memDaemon.stop().then(() => undefined));
    const sleepers: ReturnType<typeof spawn>[] = [];
    cleanups.push(() => sleepers.forEach((p) => p.kill('SIGKILL')));
    const memory: { workspaces: number; rssKiB: number }[] = [];
    const settle = async () => {
      await new Promise((r) => setTimeout(r, 1500));
      return daemonSample(memDaemon.proc.pid!).rssKiB;
    };
    memory.push({ workspaces: 0, rssKiB: await settle() });
    for (const target of [100, 500]) {
      while (sleepers.length < target) {
        const p = spawn('unshare', ['--pid', '--fork', '--kill-child', '--', 'sleep', '100000'], { stdio: 'ignore' });
        sleepers.push(p);
        let init = 0;
        for (let i = 0; i < 200 && !init; i++) {
          try {
            init = Number(readFileSync(`/proc/${p.pid}/task/${p.pid}/children`, 'utf8').trim().split(/\s+/)[0]) || 0;
          } catch {
            // not yet
          }
          if (!init) await new Promise((r) => setTimeout(r, 5));
        }
        await adminAdd(memDaemon.stateDir, `mem-${sleepers.length}`, init);
      }
      memory.push({ workspaces: target, rssKiB: await settle() });
    }
    const perWs = (memory[2]!.rssKiB - memory[0]!.rssKiB) / 500;

    // ---- start storm ----------------------------------------------------------------------
    const storms: Record<string, unknown>[] = [];
    for (const size of STORM) {
      log(`start storm of ${size} workspaces (setting up containers)`);
      const sd = await TestDaemon.start({ limits: { mountsPerWorkspace: 1000 } });
      const members: { c: TestContainer; socket: string; child: number; cleanup: () => void }[] = [];
      try {
        for (let i = 0; i < size; i += 8) {
          await Promise.all(
            Array.from({ length: Math.min(8, size - i) }, async (_, j) => {
              const r = makeRootfs();
              mkdirSync(join(r.rootfs, 'work/p'), { recursive: true });
              mkdirSync(join(r.rootfs, 'work/s'), { recursive: true });
              const sc = await TestContainer.start({ rootfs: r.rootfs });
              const s = await adminAdd(sd.stateDir, `storm-${i + j}`, sc.initHostPid);
              const child = await spawnUsernsInside(sc.initHostPid);
              members.push({ c: sc, socket: s, child: nspid(child.host).at(-1)!, cleanup: () => (child.stop(), r.cleanup()) });
            }),
          );
        }
        const before = daemonSample(sd.proc.pid!);
        let peak = before;
        const sampler = setInterval(() => {
          const s = daemonSample(sd.proc.pid!);
          peak = { rssKiB: Math.max(peak.rssKiB, s.rssKiB), threads: Math.max(peak.threads, s.threads), fds: Math.max(peak.fds, s.fds) };
        }, 20);
        const ring = (m: (typeof members)[number]): Call[] => [
          { rpc: 'PrepareForUserNS', request: {} },
          { rpc: 'WriteIDMapping', request: { pid: m.child, gid: false, mapping: RING } },
          { rpc: 'WriteIDMapping', request: { pid: m.child, gid: true, mapping: RING } },
          { rpc: 'MountProc', request: { target: '/work/p', pid: 1 } },
          { rpc: 'MountSysfs', request: { target: '/work/s', pid: 1 } },
          { rpc: 'UmountProc', request: { target: '/work/p', pid: 1 } },
          { rpc: 'Teardown', request: {} },
        ];
        let runs: { ms: number; errors: string[] }[];
        let t0: number;
        if (goClient) {
          // Every client is started and waiting before the clock starts
          // (workspace tooling is running when its workspace starts).
          const clients = await Promise.all(
            members.map(async (m) => {
              const p = spawn('nsenter', ['--target', String(m.c.initHostPid), '--pid', '--', goClient, m.socket, '1', '0', JSON.stringify(ring(m))], {
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
              return { p, done };
            }),
          );
          log(`start storm of ${size}: go (Go clients)`);
          t0 = Date.now();
          for (const c of clients) c.p.stdin.end('go\n');
          runs = await Promise.all(clients.map((c) => c.done));
        } else {
          log(`start storm of ${size}: go (Node clients)`);
          t0 = Date.now();
          runs = await Promise.all(
            members.map(async (m) => {
              const s0 = Date.now();
              const r = await m.c.timed(m.socket, ring(m), 1);
              return { ms: Date.now() - s0, errors: r.errors };
            }),
          );
        }
        const wall = Date.now() - t0;
        clearInterval(sampler);
        await new Promise((r) => setTimeout(r, 500));
        const after = daemonSample(sd.proc.pid!);
        const errors = runs.flatMap((r) => r.errors);
        storms.push({ workspaces: size, client: goClient ? 'Go' : 'Node', wallMs: wall, perWorkspace: stats(runs.map((r) => r.ms)), errors: errors.length, before, peak, after });
        fail(`storm ${size}`, errors);
      } finally {
        for (const m of members) {
          await m.c.stop();
          m.cleanup();
        }
        await sd.stop();
      }
    }

    // ---- report ----------------------------------------------------------------------------
    const report = { when: new Date().toISOString(), env, kernelFeatures: kernel, results, growth, fairness, memory, idleKiBPerWorkspace: perWs, storms };
    const out = join(ROOT, 'bench/results');
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, 'latest.json'), `${JSON.stringify(report, null, 2)}\n`);
    const md = markdown(report);
    writeFileSync(join(out, 'latest.md'), md);
    writeFileSync(join(out, 'latest.svg'), svg(results));
    process.stdout.write(md);
  } finally {
    for (const c of cleanups.reverse()) await c();
  }
}

function markdown(r: {
  env: Record<string, unknown>;
  results: Record<string, Record<string, Stats>>;
  growth: { mounts: number; p50: number; p99: number }[];
  memory: { workspaces: number; rssKiB: number }[];
  idleKiBPerWorkspace: number;
  storms: Record<string, unknown>[];
  fairness: { alone: Stats; during: Stats; flood: { calls: number; codes: Record<string, number>; heldConnected: number; heldClosedByDaemon: number }; daemon: { before: Record<string, number>; peak: Record<string, number> } };
}): string {
  const L: string[] = [];
  L.push(`# iwsd benchmark`, '', `kernel ${r.env.kernel}, ${r.env.cores} cores (${r.env.cpu}), node ${r.env.node}; strategies ${JSON.stringify(r.env.strategies)}; shift methods measured: ${r.env.shiftMethods} (others unavailable here); n=${r.env.n} per series (after warm-up)`, '');
  L.push('## Latency per RPC (ms)', '', '| RPC | series | min | p50 | p95 | p99 | max | p50 vs iwsd |', '| --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const [rpc, series] of Object.entries(r.results)) {
    const own = series.iwsd ?? Object.values(series)[0]!;
    for (const [name, s] of Object.entries(series)) {
      L.push(`| ${rpc} | ${name} | ${f(s.min)} | ${f(s.p50)} | ${f(s.p95)} | ${f(s.p99)} | ${f(s.max)} | ${(s.p50 / own.p50).toFixed(2)}× |`);
    }
  }
  const mp = r.results.MountProc!;
  L.push('', '## Targets', '', '| target | measured | met |', '| --- | --- | --- |');
  const row = (t: string, m: string, ok: boolean) => L.push(`| ${t} | ${m} | ${ok ? 'yes' : '**no**'} |`);
  const bare = r.results.WriteIDMapping!;
  for (const [series, client, bareSeries] of [
    ['iwsd', 'Node client', 'bare grpc-js'],
    ['iwsd (Go client)', 'Go client', 'bare grpc-js (Go client)'],
  ] as const) {
    const e2e = mp[series];
    if (!e2e) continue;
    row(`MountProc end to end p50 ≤ 1 ms (${client})`, `${f(e2e.p50)} ms`, e2e.p50 <= 1);
    row(`MountProc end to end p99 ≤ 3 ms (${client})`, `${f(e2e.p99)} ms`, e2e.p99 <= 3);
    row(
      `TypeScript + gRPC overhead over the floor ≤ 0.5 ms (MountProc p50, ${client})`,
      `${f(e2e.p50 - mp.floor!.p50)} ms (a bare grpc-js round trip alone: ${f(bare[bareSeries]!.p50)} ms here)`,
      e2e.p50 - mp.floor!.p50 <= 0.5,
    );
  }
  row('native MountProc ≥ 5× faster than exec-helper (p50)', `${(mp['exec-helper']!.p50 / mp.floor!.p50).toFixed(1)}× (end to end: ${(mp['exec-helper']!.p50 / mp.iwsd!.p50).toFixed(1)}×)`, mp['exec-helper']!.p50 / mp.floor!.p50 >= 5);
  for (const s of r.storms) {
    const ok = (s.wallMs as number) <= 5000 && s.errors === 0 && (s.after as { fds: number }).fds <= (s.before as { fds: number }).fds && (s.after as { threads: number }).threads <= (s.before as { threads: number }).threads;
    row(`start storm of ${s.workspaces}: ≤ 5 s, no errors, nothing leaked`, `${s.wallMs} ms, ${s.errors} errors, fds ${(s.before as { fds: number }).fds}→${(s.after as { fds: number }).fds}, threads ${(s.before as { threads: number }).threads}→${(s.after as { threads: number }).threads}`, ok);
  }
  const fr = r.fairness;
  row('fairness: quiet MountProc p99 during a neighbour\'s flood ≤ 2× alone', `${f(fr.during.p99)} ms vs ${f(fr.alone.p99)} ms alone (${(fr.during.p99 / fr.alone.p99).toFixed(2)}×)`, fr.during.p99 <= 2 * fr.alone.p99);
  row('idle cost per registered workspace ≤ 100 KiB RSS', `${r.idleKiBPerWorkspace.toFixed(1)} KiB`, r.idleKiBPerWorkspace <= 100);
  L.push('', '## Fairness: a quiet workspace\'s MountProc during a neighbour\'s flood (ms)', '', '| series | min | p50 | p95 | p99 | max |', '| --- | --- | --- | --- | --- | --- |');
  for (const [name, st] of [['alone', fr.alone], ['during the flood', fr.during]] as const) L.push(`| ${name} | ${f(st.min)} | ${f(st.p50)} | ${f(st.p95)} | ${f(st.p99)} | ${f(st.max)} |`);
  L.push(
    '',
    `Flood: 3,000 WriteIDMapping calls kept outstanding over 16 connections (${fr.flood.calls} answered while the quiet series ran: ${Object.entries(fr.flood.codes).map(([k, v]) => `${k} ${v}`).join(', ')}), plus 500 connections sending nothing (${fr.flood.heldConnected} got through connect(), ${fr.flood.heldClosedByDaemon} closed by the daemon by the end). Daemon fds ${fr.daemon.before.fds}→${fr.daemon.peak.fds} (peak), RSS ${fr.daemon.before.rssKiB}→${fr.daemon.peak.rssKiB} KiB (peak). Default configuration except the quiet workspace's mount rate limits.`,
  );
  L.push('', '## MountProc p50 as the container mount table grows', '', '| mounts in container | p50 ms | p99 ms |', '| --- | --- | --- |');
  for (const g of r.growth) L.push(`| ${g.mounts} | ${f(g.p50)} | ${f(g.p99)} |`);
  L.push('', '## Daemon RSS with registered workspaces', '', '| workspaces | RSS KiB |', '| --- | --- |');
  for (const m of r.memory) L.push(`| ${m.workspaces} | ${m.rssKiB} |`);
  L.push('', '## Start storms (full ring sequence per workspace, concurrently)', '', '| workspaces | clients | wall ms | per-workspace p50 / p99 ms | errors | daemon RSS KiB before/peak/after | threads | fds |', '| --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const s of r.storms) {
    const b = s.before as Record<string, number>;
    const p = s.peak as Record<string, number>;
    const a = s.after as Record<string, number>;
    const pw = s.perWorkspace as Stats;
    L.push(`| ${s.workspaces} | ${s.client} | ${s.wallMs} | ${f(pw.p50)} / ${f(pw.p99)} | ${s.errors} | ${b.rssKiB}/${p.rssKiB}/${a.rssKiB} | ${b.threads}/${p.threads}/${a.threads} | ${b.fds}/${p.fds}/${a.fds} |`);
  }
  L.push('', 'Series: **iwsd** = end to end over the workspace socket from a client inside the container; **floor** = the same native operation in-process (no gRPC); **exec-helper** = the replaced design (one helper exec per step, staging mounts in the daemon namespace; WriteIDMapping after a /proc scan); **bare grpc-js** = a no-op handler over a unix socket, same client: the cost of gRPC alone on this machine; **(Go client)** = the same calls from a static grpc-go client inside the container (bench/go-client) instead of the Node one. Chart: latest.svg.', '');
  return L.join('\n');
}

function svg(results: Record<string, Record<string, Stats>>): string {
  const rows = Object.entries(results).flatMap(([rpc, series]) => Object.entries(series).map(([name, s]) => ({ label: `${rpc} · ${name}`, s })));
  const max = Math.max(...rows.map((r) => r.s.p99));
  const W = 900;
  const left = 260;
  const scale = (x: number) => left + 20 + ((W - left - 60) * Math.log10(1 + x * 10)) / Math.log10(1 + max * 10);
  const colors: Record<string, string> = { iwsd: '#2b6cb0', floor: '#38a169', 'exec-helper': '#c53030' };
  const H = 40 + rows.length * 22;
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">`, `<text x="10" y="18" font-size="13">latency per RPC (ms, log scale): bar = p50, whisker = p99, tick = min</text>`];
  rows.forEach((r, i) => {
    const y = 32 + i * 22;
    const color = colors[r.label.split(' · ')[1]!.split(' ')[0]!] ?? '#6b46c1';
    parts.push(`<text x="10" y="${y + 12}">${r.label}</text>`);
    parts.push(`<rect x="${left + 20}" y="${y + 3}" width="${scale(r.s.p50) - left - 20}" height="12" fill="${color}"/>`);
    parts.push(`<line x1="${scale(r.s.p50)}" y1="${y + 9}" x2="${scale(r.s.p99)}" y2="${y + 9}" stroke="${color}"/>`);
    parts.push(`<line x1="${scale(r.s.min)}" y1="${y + 1}" x2="${scale(r.s.min)}" y2="${y + 17}" stroke="#000"/>`);
    parts.push(`<text x="${scale(r.s.p99) + 4}" y="${y + 12}">${f(r.s.p50)} / ${f(r.s.p99)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
