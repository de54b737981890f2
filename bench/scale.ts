/**
 * How costs grow: MountProc with the container's mount table, WriteIDMapping
 * with the processes in the container and with the workspaces registered,
 * daemon memory with the workspaces registered; and the machine's own jitter.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';

import { TestContainer, nspid, spawnUsernsInside } from '../__test__/helpers/container.js';
import { TestDaemon } from '../__test__/helpers/daemon.js';
import type { Bench } from './context.js';
import { MP, RING, UNLIMITED, addProcesses, adminAdd, daemonSample, fail, goTimed, lightContainer, log, sleep, stats, type Call, type Timed } from './lib.js';

/** MountProc as the container's mount table grows (1 to 1,000 mounts). */
export async function mountTableGrowth(b: Bench, c: TestContainer, socket: string): Promise<void> {
  log('growth with the mount table');
  let have = 0;
  for (const k of [1, 10, 100, 1000]) {
    const add = k - have;
    const r = spawnSync('nsenter', ['--target', String(c.initHostPid), '--mount', '--root', '--wd=/', '--', '/bin/busybox', 'sh', '-c', `i=${have}; while [ $i -lt ${k} ]; do /bin/busybox mkdir -p /work/g/$i && /bin/busybox mount -t tmpfs g /work/g/$i || exit 1; i=$((i+1)); done`], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`adding ${add} mounts failed: ${r.stderr}`);
    have = k;
    const g = b.goClient ? await goTimed(b.goClient, c.initHostPid, socket, MP, 100, 10) : await c.timed(socket, MP, 100, 10);
    fail('growth', g.errors);
    const st = stats(g.latencies.MountProc!);
    b.growth.push({ mounts: k, p50: st.p50, p99: st.p99 });
  }
}

/** `rounds` WriteIDMapping calls, each on a fresh user-namespaced process of the container. */
async function idmapRounds(b: Bench, initHostPid: number, socket: string, rounds: number, agent?: TestContainer): Promise<Timed> {
  const kids: { host: number; stop: () => void }[] = [];
  try {
    for (let i = 0; i < rounds; i++) kids.push(await spawnUsernsInside(initHostPid));
    const pids = kids.map((k) => nspid(k.host).at(-1)!);
    const calls: Call[] = [{ rpc: 'WriteIDMapping', request: { pid: '$ROUND', gid: false, mapping: RING } }];
    if (b.goClient) return await goTimed(b.goClient, initHostPid, socket, calls, rounds, 0, pids);
    if (!agent) throw new Error('no Go client and no agent to call from');
    return await agent.timed(socket, calls, rounds, 0, pids);
  } finally {
    for (const k of kids) k.stop();
  }
}

const IDMAP_ROUNDS = 100;

/** WriteIDMapping with 1, 100 and 1,000 processes in the container (iwsd finds the PID through the kernel, not a /proc scan). */
export async function idmapByProcesses(b: Bench, daemon: TestDaemon): Promise<void> {
  log('WriteIDMapping vs processes in the container');
  const c = b.goClient ? undefined : await TestContainer.start({ mountNs: true });
  const light = b.goClient ? await lightContainer() : undefined;
  const init = light?.initHostPid ?? c!.initHostPid;
  try {
    const socket = await adminAdd(daemon.stateDir, 'idmap-procs', init);
    let have = 1;
    for (const k of [1, 100, 1000]) {
      if (k > have) addProcesses(init, k - have);
      have = k;
      const r = await idmapRounds(b, init, socket, IDMAP_ROUNDS, c);
      fail(`WriteIDMapping with ${k} processes`, r.errors);
      b.idmapByProcesses.push({ processes: k, stats: stats(r.latencies.WriteIDMapping!) });
    }
  } finally {
    light?.stop();
    await c?.stop();
  }
}

/**
 * Daemon RSS with 0, 1, 100 and 1,000 registered workspaces (each a
 * sleeping process in a PID namespace of its own), and WriteIDMapping on one
 * of them at 1, 100 and 1,000. Idle cost per workspace: the RSS slope from
 * 100 to 1,000 (what one more workspace costs once the daemon is warm).
 */
export async function memoryAndRegistered(b: Bench): Promise<void> {
  log('memory and WriteIDMapping vs registered workspaces');
  const d = await TestDaemon.start({ rateLimits: UNLIMITED });
  b.cleanups.push(() => d.stop().then(() => undefined));
  const sleepers: ChildProcess[] = [];
  b.cleanups.push(() => sleepers.forEach((p) => p.kill('SIGKILL')));
  const settle = async () => {
    await sleep(1500);
    return daemonSample(d.proc.pid!).rssKiB;
  };
  b.memory.push({ workspaces: 0, rssKiB: await settle() });
  const probe = b.goClient ? await lightContainer() : undefined;
  const agent = b.goClient ? undefined : await TestContainer.start({ mountNs: true });
  const init = probe?.initHostPid ?? agent!.initHostPid;
  b.cleanups.push(() => (probe ? probe.stop() : agent!.stop()));
  const socket = await adminAdd(d.stateDir, 'probe', init);
  for (const target of [1, 100, 1000]) {
    while (sleepers.length + 1 < target) {
      const p = spawn('unshare', ['--pid', '--fork', '--kill-child', '--', 'sleep', '100000'], { stdio: 'ignore' });
      sleepers.push(p);
      let pid = 0;
      for (let i = 0; i < 400 && !pid; i++) {
        try {
          pid = Number(readFileSync(`/proc/${p.pid}/task/${p.pid}/children`, 'utf8').trim().split(/\s+/)[0]) || 0;
        } catch {
          // not yet
        }
        if (!pid) await sleep(5);
      }
      if (!pid) throw new Error('a sleeper workspace did not start');
      await adminAdd(d.stateDir, `mem-${sleepers.length}`, pid);
    }
    b.memory.push({ workspaces: target, rssKiB: await settle() });
    const r = await idmapRounds(b, init, socket, IDMAP_ROUNDS, agent);
    fail(`WriteIDMapping with ${target} workspaces`, r.errors);
    b.idmapByWorkspaces.push({ workspaces: target, stats: stats(r.latencies.WriteIDMapping!) });
  }
  const at = (n: number) => b.memory.find((m) => m.workspaces === n)!.rssKiB;
  b.idleKiBPerWorkspace = (at(1000) - at(100)) / 900;
}

/** The machine's own jitter: a fixed ~0.2 ms busy loop, timed 2,000 times. */
export function machineJitter(b: Bench): void {
  const xs: number[] = [];
  let sink = 0;
  for (let i = 0; i < 2200; i++) {
    const t0 = process.hrtime.bigint();
    for (let j = 0; j < 200_000; j++) sink += j & 7;
    if (i >= 200) xs.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  if (sink < 0) log(String(sink));
  b.machine = stats(xs);
}
