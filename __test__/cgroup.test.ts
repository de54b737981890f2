/**
 * WorkspaceInfo, EvacuateCGroup and the /dev/fuse, /dev/net/tun nodes of
 * PrepareForUserNS, as root, against real cgroups: private test cgroups
 * under the v1 cpu, cpuacct, memory and devices hierarchies and the v2
 * (unified) one, a container (own root, PID and mount namespaces) whose init
 * the test places in them. This node is hybrid: the unified hierarchy has no
 * controllers, so v2 limits cannot be set here; v2 is exercised for what it
 * has (cpu.stat, cgroup.procs, child cgroups). Every cgroup is removed after
 * each test, also on failure.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { chmodSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, rmdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import test, { type ExecutionContext } from 'ava';

import { TestContainer, makeRootfs, waitFor } from './helpers/container.js';
import { IWSD, TestDaemon } from './helpers/daemon.js';
import { isRoot, rootTest } from './helpers/root.js';
import { cpuLimit, cpuUsed, memoryLimit, MIN_CPU_WINDOW_NS } from '../src/resources.js';
import { actionFor, ANNOTATIONS } from '../src/ociHook.js';
import { NRI_ANNOTATIONS, workspaceOf } from '../src/nri/workspaces.js';
import { addWorkspaceRequest } from '../src/adminClient.js';

const BASE = '/sys/fs/cgroup';
type Hier = 'cpu' | 'cpuacct' | 'memory' | 'devices' | 'unified';
let daemon: TestDaemon | undefined;
let n = 0;

test.before(async () => {
  if (isRoot) daemon = await TestDaemon.start();
});
test.after.always(async () => {
  await daemon?.stop();
});

/** The test process's own cgroup in hierarchy `h` (where processes go back to). */
function ownCgroup(h: Hier): string {
  for (const line of readFileSync('/proc/self/cgroup', 'utf8').split('\n')) {
    const [id, ctrls, ...path] = line.split(':');
    if (h === 'unified' ? id === '0' : ctrls?.split(',').includes(h)) return path.join(':');
  }
  throw new Error(`no ${h} hierarchy`);
}

/** Private cgroups named after the test, in the hierarchies asked for; removed at teardown. */
class TestCgroups {
  readonly name = `iwsd-test-${process.pid}-${++n}`;
  constructor(
    t: ExecutionContext,
    readonly hiers: Hier[],
  ) {
    for (const h of hiers) mkdirSync(this.dir(h));
    t.teardown(() => this.remove());
  }
  dir(h: Hier, sub = ''): string {
    return join(BASE, h, this.name, sub);
  }
  place(pid: number, hiers: Hier[] = this.hiers, sub = ''): void {
    for (const h of hiers) writeFileSync(join(this.dir(h, sub), 'cgroup.procs'), String(pid));
  }
  write(h: Hier, file: string, value: string, sub = ''): void {
    writeFileSync(join(this.dir(h, sub), file), value);
  }
  procs(h: Hier, sub = ''): number[] {
    return readFileSync(join(this.dir(h, sub), 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  }
  /** Moves what is left back to the test's own cgroups, removes the cgroups deepest first. */
  async remove(): Promise<void> {
    for (const h of this.hiers) {
      const walk = (d: string): string[] => [...readdirSync(d, { withFileTypes: true }).filter((e) => e.isDirectory()).flatMap((e) => walk(join(d, e.name))), d];
      if (!existsSync(this.dir(h))) continue;
      for (const d of walk(this.dir(h))) {
        for (const pid of readFileSync(join(d, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) {
          try {
            writeFileSync(join(BASE, h, ownCgroup(h), 'cgroup.procs'), pid);
          } catch {
            /* exited */
          }
        }
        await waitFor(`rmdir ${d}`, () => {
          try {
            rmdirSync(d);
            return true;
          } catch {
            return undefined;
          }
        });
      }
    }
  }
}

async function container(t: ExecutionContext, prepareRootfs?: (rootfs: string, outside: string) => void) {
  const fs = makeRootfs();
  t.teardown(fs.cleanup);
  prepareRootfs?.(fs.rootfs, fs.outside);
  const c = await TestContainer.startFor(t, { rootfs: fs.rootfs });
  const id = `cg-${process.pid}-${++n}`;
  const socket = await daemon!.add(id, c.initHostPid);
  return { c, socket, id, ...fs };
}

/** A process that is not the workspace's (the test's own child), stopped at teardown. */
function foreign(t: ExecutionContext): ChildProcess {
  const p = spawn('sleep', ['1000'], { stdio: 'ignore' });
  t.teardown(() => void p.kill('SIGKILL'));
  return p;
}

/** A CPU burner inside the container (its PID and mount namespaces). */
function burner(t: ExecutionContext, initHostPid: number): ChildProcess {
  const p = spawn('nsenter', ['--target', String(initHostPid), '--pid', '--mount', '--root', '--wd=/', '--', '/bin/busybox', 'sh', '-c', 'while :; do :; done'], { stdio: 'ignore' });
  t.teardown(() => void p.kill('SIGKILL'));
  return p;
}

/** The host PID of the process nsenter became (it execs the command in a forked child for --pid). */
async function execed(p: ChildProcess): Promise<number> {
  return waitFor('nsenter child', () => {
    try {
      const kids = readFileSync(`/proc/${p.pid}/task/${p.pid}/children`, 'utf8').trim();
      return kids ? Number(kids.split(/\s+/)[0]) : undefined;
    } catch {
      return undefined;
    }
  });
}

type Info = { resources: { cpu: { used: string; limit: string }; memory: { used: string; limit: string } } };
const num = (v: string | number) => Number(v);

test('CPU rates come from kept samples, never from a wait', (t) => {
  const first = cpuUsed({ cpuUsageNs: 2e9, atNs: 12e9, startedNs: 2e9 }, undefined);
  t.is(first.used, 200); // 2 s of CPU over 10 s since the init started
  const soon = cpuUsed({ cpuUsageNs: 2.1e9, atNs: 12e9 + MIN_CPU_WINDOW_NS / 2, startedNs: 2e9 }, first);
  t.is(soon, first); // too close: the previous answer, the older sample kept
  const later = cpuUsed({ cpuUsageNs: 3e9, atNs: 14e9, startedNs: 2e9 }, first);
  t.is(later.used, 500); // 1 s of CPU over 2 s
  const moved = cpuUsed({ cpuUsageNs: 1e9, atNs: 15e9, startedNs: 2e9 }, later);
  t.is(moved.used, 77); // counter went back (another cgroup): average since start
  t.is(cpuLimit({ cpuQuotaUs: 150000, cpuPeriodUs: 100000, cpus: 2 }), 1500); // Gitpod's integer quota/period would say 1000
  t.is(cpuLimit({ cpuQuotaUs: undefined, cpuPeriodUs: undefined, cpus: 2 }), 2000);
  t.is(memoryLimit({ memoryLimit: undefined, memTotal: 4096 }), 4096);
  t.is(memoryLimit({ memoryLimit: 2 ** 40, memTotal: 4096 }), 4096);
  t.is(memoryLimit({ memoryLimit: 1024, memTotal: 4096 }), 1024);
});

rootTest('WorkspaceInfo answers the container cgroup v1 CPU and memory limits and usage (millicores, bytes)', async (t) => {
  const { c, socket, id } = await container(t);
  const cg = new TestCgroups(t, ['cpu', 'cpuacct', 'memory']);
  cg.write('cpu', 'cpu.cfs_period_us', '100000');
  cg.write('cpu', 'cpu.cfs_quota_us', '50000');
  cg.write('memory', 'memory.limit_in_bytes', String(256 << 20));
  cg.place(c.initHostPid);
  const b = burner(t, c.initHostPid);
  cg.place(await execed(b));
  const first = await c.call(socket, 'WorkspaceInfo', {});
  t.true(first.ok, JSON.stringify(first));
  const r1 = (first.response as Info).resources;
  t.is(num(r1.cpu.limit), 500);
  t.is(num(r1.memory.limit), 256 << 20);
  t.true(num(r1.memory.used) >= 0 && num(r1.memory.used) <= 256 << 20);
  await new Promise((r) => setTimeout(r, 600));
  const second = await c.call(socket, 'WorkspaceInfo', {});
  t.true(second.ok, JSON.stringify(second));
  t.true(num((second.response as Info).resources.cpu.used) > 0, JSON.stringify(second.response));

  // The client views, from inside the container's PID namespace: `iwsd call`,
  // iwsd/client, and Gitpod's supervisor's iws.WorkspaceInfoService.
  const inside = (argv: string[]) => spawnSync('nsenter', ['--target', String(c.initHostPid), '--pid', '--', process.execPath, ...argv], { encoding: 'utf8' });
  const cli = inside([IWSD, 'call', 'WorkspaceInfo', '--socket', socket]);
  t.is(cli.status, 0, cli.stderr);
  t.like(JSON.parse(cli.stdout), { resources: { cpu: { limit: 500 }, memory: { limit: 256 << 20 } } });
  const dist = (f: string) => fileURLToPath(new URL(`../dist/${f}`, import.meta.url));
  const script = `
    import { createClient } from ${JSON.stringify(dist('api/client.js'))};
    import { workspaceProto } from ${JSON.stringify(dist('proto.js'))};
    import * as grpc from '@grpc/grpc-js';
    const c = createClient(${JSON.stringify(socket)});
    const a = await c.workspaceInfo();
    c.close?.();
    const S = workspaceProto().iws.WorkspaceInfoService;
    const w = new S('unix:${socket}', grpc.credentials.createInsecure());
    const b = await new Promise((res, rej) => w.WorkspaceInfo({}, (e, r) => (e ? rej(e) : res(r))));
    w.close();
    console.log(JSON.stringify({ a, b }));`;
  const node = spawnSync('nsenter', ['--target', String(c.initHostPid), '--pid', '--', process.execPath, '--input-type=module', '-e', script], { encoding: 'utf8', cwd: fileURLToPath(new URL('..', import.meta.url)) });
  t.is(node.status, 0, node.stderr);
  const views = JSON.parse(node.stdout) as { a: Info; b: Info };
  for (const v of [views.a, views.b]) {
    t.is(num(v.resources.cpu.limit), 500);
    t.is(num(v.resources.memory.limit), 256 << 20);
  }

  // Measured, not asserted: the daemon's time per call (no second sample is waited for).
  await c.callMany(socket, Array.from({ length: 20 }, () => ({ rpc: 'WorkspaceInfo', request: {} })));
  const ms = daemon!.logs.filter((l) => l.workspace === id && l.rpc === 'WorkspaceInfo' && typeof l.durationMs === 'number').map((l) => l.durationMs as number).sort((a, b) => a - b);
  t.log(`WorkspaceInfo in the daemon: ${ms.length} calls, median ${ms[ms.length >> 1]?.toFixed(2)} ms, max ${ms.at(-1)?.toFixed(2)} ms`);

  // Unlimited: every online CPU, the node's memory (as Gitpod).
  cg.write('cpu', 'cpu.cfs_quota_us', '-1');
  cg.write('memory', 'memory.limit_in_bytes', '-1');
  const unl = (await c.call(socket, 'WorkspaceInfo', {})).response as Info;
  const memTotal = Number(/MemTotal:\s+(\d+)/.exec(readFileSync('/proc/meminfo', 'utf8'))![1]) * 1024;
  t.is(num(unl.resources.memory.limit), memTotal);
  t.is(num(unl.resources.cpu.limit) % 1000, 0);
  t.true(num(unl.resources.cpu.limit) >= 1000);
});

rootTest('attack: WorkspaceInfo refuses a cgroup holding a process not the workspace (the init moved into another workspace or the daemon cgroup)', async (t) => {
  const { c, socket } = await container(t);
  const cg = new TestCgroups(t, ['cpu', 'cpuacct', 'memory']);
  cg.write('memory', 'memory.limit_in_bytes', String(128 << 20));
  cg.place(c.initHostPid);
  t.true((await c.call(socket, 'WorkspaceInfo', {})).ok);
  // Another "workspace" (a process outside the container) shares the cgroup now.
  const other = foreign(t);
  await waitFor('foreign sleep', () => (other.pid ? true : undefined));
  cg.place(other.pid!);
  const r = await c.call(socket, 'WorkspaceInfo', {});
  t.false(r.ok);
  t.is(r.code, 'PERMISSION_DENIED', JSON.stringify(r));
  t.regex(r.details ?? '', /not the workspace's/);
  // Also below it: a child cgroup with a foreign process.
  cg.place(c.initHostPid);
  writeFileSync(join(BASE, 'memory', ownCgroup('memory'), 'cgroup.procs'), String(other.pid));
  mkdirSync(cg.dir('memory', 'child'));
  cg.place(other.pid!, ['memory'], 'child');
  const below = await c.call(socket, 'WorkspaceInfo', {});
  t.is(below.code, 'PERMISSION_DENIED', JSON.stringify(below));
});

rootTest('attack: WorkspaceInfo refuses the root cgroup (the whole node) and the daemon cgroup', async (t) => {
  const { c, socket } = await container(t);
  // The container's cpu cgroup is the test's: "/" on this node (the root), or one holding the test runner.
  const r = await c.call(socket, 'WorkspaceInfo', {});
  t.false(r.ok);
  t.true(r.code === 'FAILED_PRECONDITION' || r.code === 'PERMISSION_DENIED', JSON.stringify(r));
});

rootTest('EvacuateCGroup on v2 moves the workspace processes to <cgroup>/workspace/user and only them', async (t) => {
  const { c, socket } = await container(t);
  const cg = new TestCgroups(t, ['unified']);
  cg.place(c.initHostPid);
  const ok = await c.call(socket, 'EvacuateCGroup', {});
  t.true(ok.ok, JSON.stringify(ok));
  t.deepEqual(cg.procs('unified'), []);
  t.deepEqual(cg.procs('unified', 'workspace'), []);
  t.deepEqual(cg.procs('unified', 'workspace/user'), [c.initHostPid]);
  // Called again: the init is in .../workspace/user, whose children are made below it.
  t.true((await c.call(socket, 'EvacuateCGroup', {})).ok);
  t.deepEqual(cg.procs('unified', 'workspace/user/workspace/user'), [c.initHostPid]);
});

rootTest('attack: EvacuateCGroup by an unprivileged user of the container is refused and moves nothing', async (t) => {
  const { c, socket } = await container(t);
  const cg = new TestCgroups(t, ['unified']);
  cg.place(c.initHostPid);
  // Let uid 1000 reach the socket: the daemon's private temp dirs get o+x for this test.
  const dirs: string[] = [];
  for (let d = join(socket, '..', '..'); d.startsWith(daemon!.base); d = join(d, '..')) dirs.push(d);
  const modes = dirs.map((d) => statSync(d).mode & 0o7777);
  t.teardown(() => dirs.forEach((d, i) => chmodSync(d, modes[i]!)));
  for (const [i, d] of dirs.entries()) chmodSync(d, modes[i]! | 0o011);
  const asUser = spawnSync('nsenter', ['--target', String(c.initHostPid), '--pid', '--', 'setpriv', '--reuid=1000', '--regid=1000', '--clear-groups', process.execPath, IWSD, 'call', 'EvacuateCGroup', '--socket', socket], { encoding: 'utf8' });
  t.is(asUser.status, 4, asUser.stderr);
  t.regex(asUser.stderr, /PERMISSION_DENIED/);
  t.deepEqual(cg.procs('unified'), [c.initHostPid]);
  t.false(existsSync(cg.dir('unified', 'workspace')));
});

rootTest('attack: EvacuateCGroup refuses a cgroup holding a process not the workspace and moves nothing', async (t) => {
  const { c, socket } = await container(t);
  const cg = new TestCgroups(t, ['unified']);
  cg.place(c.initHostPid);
  const other = foreign(t);
  await waitFor('foreign sleep', () => (other.pid ? true : undefined));
  cg.place(other.pid!);
  const r = await c.call(socket, 'EvacuateCGroup', {});
  t.is(r.code, 'PERMISSION_DENIED', JSON.stringify(r));
  t.deepEqual(cg.procs('unified').sort(), [c.initHostPid, other.pid!].sort());
  t.false(existsSync(cg.dir('unified', 'workspace')));
  // The container in the node's root cgroup: refused, nothing made there.
  writeFileSync(join(BASE, 'unified', 'cgroup.procs'), String(c.initHostPid));
  const root = await c.call(socket, 'EvacuateCGroup', {});
  t.is(root.code, 'FAILED_PRECONDITION', JSON.stringify(root));
  t.false(existsSync(join(BASE, 'unified', 'workspace')));
});

rootTest('PrepareForUserNS makes /dev/fuse and /dev/net/tun (0666) and allows them in the v1 devices cgroup', async (t) => {
  // makeRootfs() gives the container a /dev, as a real one has.
  const { c, socket, rootfs } = await container(t, (rootfs) => t.true(statSync(join(rootfs, 'dev')).isDirectory()));
  const cg = new TestCgroups(t, ['devices']);
  cg.write('devices', 'devices.deny', 'a');
  cg.write('devices', 'devices.allow', 'c 1:3 rwm');
  cg.place(c.initHostPid);
  const r = await c.call(socket, 'PrepareForUserNS', {});
  t.true(r.ok, JSON.stringify(r));
  for (const [p, minor] of [['dev/fuse', 229], ['dev/net/tun', 200]] as const) {
    const st = statSync(join(rootfs, p));
    t.true(st.isCharacterDevice(), p);
    t.is(st.rdev, (10 << 8) | minor, p);
    t.is(st.mode & 0o777, 0o666, p);
  }
  const list = readFileSync(join(cg.dir('devices'), 'devices.list'), 'utf8');
  t.regex(list, /^c 10:229 rwm$/m);
  t.regex(list, /^c 10:200 rwm$/m);
  await c.call(socket, 'Teardown', {});
});

rootTest('attack: /dev a symlink to a host dir, /dev/net a symlink, /dev/fuse a regular file: no host file changed', async (t) => {
  let canary = '';
  const { c, socket, rootfs, id } = await container(t, (rootfs, outside) => {
    canary = join(outside, 'canary-dev');
    mkdirSync(canary);
    rmdirSync(join(rootfs, 'dev'));
    symlinkSync(canary, join(rootfs, 'dev'));
  });
  t.true((await c.call(socket, 'PrepareForUserNS', {})).ok);
  t.deepEqual(readdirSync(canary), []);
  t.true(lstatSync(join(rootfs, 'dev')).isSymbolicLink());
  const log = await daemon!.waitForLog((l) => l.workspace === id && Array.isArray(l.devices));
  t.deepEqual((log.devices as { state: string }[]).map((d) => d.state), ['refused', 'refused']);
  t.regex(String(log.msg), /\/dev is or passes through a symlink/);
  await c.call(socket, 'Teardown', {});

  let canary2 = '';
  const two = await container(t, (rootfs, outside) => {
    canary2 = join(outside, 'canary-net');
    mkdirSync(canary2);
    mkdirSync(join(rootfs, 'dev'), { recursive: true });
    symlinkSync(canary2, join(rootfs, 'dev/net'));
    writeFileSync(join(rootfs, 'dev/fuse'), 'not a device');
  });
  t.true((await two.c.call(two.socket, 'PrepareForUserNS', {})).ok);
  t.deepEqual(readdirSync(canary2), []);
  const log2 = await daemon!.waitForLog((l) => l.workspace === two.id && Array.isArray(l.devices));
  t.deepEqual((log2.devices as { path: string; state: string }[]).map((d) => [d.path, d.state]), [['/dev/fuse', 'refused'], ['/dev/net/tun', 'refused']]);
  t.is(readFileSync(join(two.rootfs, 'dev/fuse'), 'utf8'), 'not a device');
  t.true(statSync(join(two.rootfs, 'dev/fuse')).isFile());
  await two.c.call(two.socket, 'Teardown', {});
});

test('persistent_volume_claim: the OCI hook and NRI annotations carry it into the registration', (t) => {
  const state = { ociVersion: '1.0.2', id: 'c1', status: 'created', pid: 1 };
  const on = actionFor({ ...state, annotations: { [ANNOTATIONS.workspaceId]: 'w', [ANNOTATIONS.persistentVolumeClaim]: 'true' } }, 'createRuntime');
  t.like(on, { action: 'add', persistentVolumeClaim: true });
  const off = actionFor({ ...state, annotations: { [ANNOTATIONS.workspaceId]: 'w' } }, 'createRuntime');
  t.is((off as { persistentVolumeClaim?: boolean }).persistentVolumeClaim, undefined);
  const nri = workspaceOf({ uid: 'u', annotations: { [NRI_ANNOTATIONS.workspace]: 'true', [NRI_ANNOTATIONS.persistentVolumeClaim]: 'true' } }, { name: 'c' });
  t.like(nri, { persistentVolumeClaim: true });
  t.like(addWorkspaceRequest({ id: 'w', pid: 1, persistentVolumeClaim: true }), { persistentVolumeClaim: true });
  t.false('persistentVolumeClaim' in addWorkspaceRequest({ id: 'w', pid: 1 }));
});

rootTest('persistent_volume_claim: answered by PrepareForUserNS as registered (default false), shown by workspace list', async (t) => {
  const fs = makeRootfs();
  t.teardown(fs.cleanup);
  const c = await TestContainer.startFor(t, { rootfs: fs.rootfs });
  const id = `pvc-${process.pid}-${++n}`;
  const socket = await daemon!.add(id, c.initHostPid, ['--persistent-volume-claim']);
  const r = await c.call(socket, 'PrepareForUserNS', {});
  t.true(r.ok, JSON.stringify(r));
  t.like(r.response, { persistentVolumeClaim: true });
  const plain = await container(t);
  const p = await plain.c.call(plain.socket, 'PrepareForUserNS', {});
  t.like(p.response, { persistentVolumeClaim: false });
  await c.call(socket, 'Teardown', {});
  await plain.c.call(plain.socket, 'Teardown', {});
});
