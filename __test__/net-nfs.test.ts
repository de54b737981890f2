/**
 * SetupPairVeths and MountNfs / UmountNfs end to end, as root: the real
 * daemon, throwaway containers (own PID, mount and network namespaces, or
 * sharing the host's network for the refusals), a "ring" (a process in a
 * user + network namespace made inside the container, like Gitpod's ring2),
 * and a real NFS server (nfs-ganesha) run in the container's network
 * namespace on private paths.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

import test, { type ExecutionContext } from 'ava';

import { TestContainer, children, mountsAdded, mountsOf, nspid, waitFor } from './helpers/container.js';
import { IWSD, TestDaemon } from './helpers/daemon.js';
import { isRoot, rootTest } from './helpers/root.js';

const LIMITS = Object.fromEntries(['setupPairVeths', 'mountNfs', 'umountNfs', 'mountProc'].map((k) => [k, { points: 10_000 }]));
let daemon: TestDaemon;
let small: TestDaemon;
let n = 0;

test.before(async () => {
  if (!isRoot) return;
  daemon = await TestDaemon.start({ rateLimits: LIMITS });
  small = await TestDaemon.start({ rateLimits: LIMITS, limits: { mountsPerWorkspace: 1 } });
});

test.after.always(async () => {
  await daemon?.stop();
  await small?.stop();
});

const hasNfs = (() => {
  try {
    return readFileSync('/proc/filesystems', 'utf8').split('\n').some((l) => l.trim().split(/\s+/).pop() === 'nfs4');
  } catch {
    return false;
  }
})();
const haveGanesha = existsSync('/usr/bin/ganesha.nfsd') && existsSync('/usr/bin/nfs-ls');

/** `ip <args>` in the network namespace of host PID `pid` (the test's own when undefined). */
function ip(pid: number | undefined, args: string[]): string {
  const argv = pid === undefined ? ['ip', ...args] : ['nsenter', '--target', String(pid), '--net', '--', 'ip', ...args];
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${argv.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** Interface names of a network namespace. */
function links(pid?: number): string[] {
  return ip(pid, ['-o', 'link', 'show'])
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(':')[1]!.trim().split('@')[0]!)
    .sort();
}

/** What iwsd could have changed in the host's (the test's) network namespace: its 10.0.5.x addresses, a veth0, ip_forward. */
function hostNet(): { addrs: string[]; veth0: boolean; forward: string } {
  const addrs = ip(undefined, ['-o', '-4', 'addr', 'show'])
    .split('\n')
    .filter((l) => l.includes(' 10.0.5.'));
  return { addrs, veth0: links().includes('veth0'), forward: readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim() };
}

function descendant(root: number, pred: (cmdline: string) => boolean): number | undefined {
  const queue = [root];
  while (queue.length) {
    const h = queue.shift()!;
    for (const kid of children(h)) {
      try {
        if (pred(readFileSync(`/proc/${kid}/cmdline`, 'utf8'))) return kid;
      } catch {
        // gone
      }
      queue.push(kid);
    }
  }
  return undefined;
}

/**
 * A process inside container `c` (its PID and mount namespaces) in a new
 * network namespace: with `userns`, in a new user namespace too (root
 * mapped, like a ring); without, owned by the container's (the host's) user
 * namespace. Returns its host PID and its PID inside the container.
 */
async function ring(t: ExecutionContext, c: TestContainer, opts: { userns: boolean; net?: boolean; mount?: boolean } = { userns: true }) {
  const marker = String(300000 + ++n);
  const ns = [...(opts.userns ? ['--user', '--map-root-user'] : []), ...(opts.net === false ? [] : ['--net'])];
  const enter = opts.mount === false ? ['--pid'] : ['--pid', '--mount'];
  const p: ChildProcess = spawn('nsenter', ['--target', String(c.initHostPid), ...enter, '--', 'unshare', ...ns, 'sleep', marker], { stdio: 'ignore' });
  t.teardown(() => {
    p.kill('SIGKILL');
  });
  const host = await waitFor('ring process', () => descendant(p.pid!, (cl) => cl === `sleep\0${marker}\0`));
  return { host, pid: nspid(host).at(-1)! };
}

async function setup(t: ExecutionContext, opts: { ownNet?: boolean; d?: TestDaemon } = {}) {
  const d = opts.d ?? daemon;
  const before = hostNet();
  // ownNet false: a container with host networking (its own PID and mount namespaces).
  const c = await TestContainer.start({ mountNs: true, hostNet: opts.ownNet === false });
  t.teardown(async () => {
    await c.stop();
    const after = hostNet();
    if (JSON.stringify(after) !== JSON.stringify(before)) throw new Error(`the host's network changed: ${JSON.stringify({ before, after })}`);
  });
  const id = `net-${process.pid}-${++n}`;
  const socket = await d.add(id, c.initHostPid);
  // Other users of the container reach the socket (the test's temp dirs are 0700).
  for (let dir = dirname(socket); dir.startsWith(d.stateDir) || dir === dirname(d.stateDir); dir = dirname(dir)) {
    const mode = statSync(dir).mode;
    // The workspace directory itself is sealed (immutable) and already searchable.
    if ((mode & 0o011) !== 0o011) chmodSync(dir, mode | 0o011);
    if (dir === dirname(d.stateDir)) break;
  }
  return { c, id, socket, d };
}

// ---- SetupPairVeths -------------------------------------------------------------

rootTest('SetupPairVeths: veth0 (10.0.5.1/30) in the container, eth0 (10.0.5.2/30) in the ring, up, routed, ping flows; the host network untouched', async (t) => {
  const { c, socket } = await setup(t);
  const r2 = await ring(t, c);
  const forwardBefore = hostNet().forward;
  const t0 = performance.now();
  const r = await c.call(socket, 'SetupPairVeths', { pid: r2.pid });
  t.log(`SetupPairVeths answered in ${(performance.now() - t0).toFixed(1)} ms (one connection, from inside the container; informational)`);
  t.true(r.ok, JSON.stringify(r));

  const cAddr = ip(c.initHostPid, ['-o', '-4', 'addr', 'show', 'dev', 'veth0']);
  t.regex(cAddr, /inet 10\.0\.5\.1\/30/);
  t.regex(ip(c.initHostPid, ['link', 'show', 'veth0']), /[<,]UP[,>]/);
  t.false(links(c.initHostPid).includes('eth0'), 'the peer is not left in the container');
  const pAddr = ip(r2.host, ['-o', '-4', 'addr', 'show', 'dev', 'eth0']);
  t.regex(pAddr, /inet 10\.0\.5\.2\/30/);
  t.regex(ip(r2.host, ['link', 'show', 'eth0']), /[<,]UP[,>]/);
  t.regex(ip(r2.host, ['link', 'show', 'lo']), /[<,]UP[,>]/);
  t.regex(ip(r2.host, ['route', 'show', 'default']), /default via 10\.0\.5\.1 dev eth0/);
  t.is(spawnSync('nsenter', ['--target', String(c.initHostPid), '--net', '--', 'cat', '/proc/sys/net/ipv4/ip_forward'], { encoding: 'utf8' }).stdout.trim(), '1');
  t.is(hostNet().forward, forwardBefore, "the host's ip_forward is unchanged");

  for (const [from, to] of [
    [r2.host, '10.0.5.1'],
    [c.initHostPid, '10.0.5.2'],
  ] as const) {
    const p = spawnSync('nsenter', ['--target', String(from), '--net', '--', 'busybox', 'ping', '-c', '1', '-W', '5', to], { encoding: 'utf8' });
    t.is(p.status, 0, `ping ${to}: ${p.stdout}${p.stderr}`);
  }
  t.false(links().includes('veth0'));
});

rootTest('SetupPairVeths NAT: the ring reaches past the container\'s eth0 (masquerade) and TCP to the container\'s address reaches the ring (DNAT), in table ip iwsd of the container only', async (t) => {
  const { c, socket } = await setup(t);
  // The container's uplink: eth0 (192.168.77.1/24) to an "outside" namespace (192.168.77.2/24) that has no route to 10.0.5.0/30.
  const outside = spawn('unshare', ['--net', 'sleep', String(400000 + ++n)], { stdio: 'ignore' });
  t.teardown(() => {
    outside.kill('SIGKILL');
  });
  const out = await waitFor('outside namespace', () => {
    try {
      return readlinkSync(`/proc/${outside.pid}/ns/net`) !== readlinkSync('/proc/self/ns/net') ? outside.pid! : undefined;
    } catch {
      return undefined;
    }
  });
  ip(c.initHostPid, ['link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'out0']);
  ip(c.initHostPid, ['link', 'set', 'out0', 'netns', String(out)]);
  ip(c.initHostPid, ['addr', 'add', '192.168.77.1/24', 'dev', 'eth0']);
  ip(c.initHostPid, ['link', 'set', 'eth0', 'up']);
  ip(out, ['addr', 'add', '192.168.77.2/24', 'dev', 'out0']);
  ip(out, ['link', 'set', 'out0', 'up']);
  ip(out, ['link', 'set', 'lo', 'up']);
  const r2 = await ring(t, c);
  const r = await c.call(socket, 'SetupPairVeths', { pid: r2.pid });
  t.true(r.ok, JSON.stringify(r));
  const p = spawnSync('nsenter', ['--target', String(r2.host), '--net', '--', 'busybox', 'ping', '-c', '1', '-W', '5', '192.168.77.2'], { encoding: 'utf8' });
  t.is(p.status, 0, `ping from the ring to the outside: ${p.stdout}${p.stderr}`);
  // A TCP server in the ring, reached from outside through the container's address.
  const server = spawn('nsenter', ['--target', String(r2.host), '--net', '--', 'busybox', 'nc', '-l', '-p', '8080', '-e', 'echo', 'from-the-ring'], { stdio: 'ignore' });
  t.teardown(() => {
    server.kill('SIGKILL');
  });
  const got = await waitFor(
    'DNAT to the ring',
    () => {
      const o = spawnSync('nsenter', ['--target', String(out), '--net', '--', 'busybox', 'nc', '-w', '2', '192.168.77.1', '8080'], { encoding: 'utf8', input: '' }).stdout;
      return o.includes('from-the-ring') ? o : undefined;
    },
    15_000,
  );
  t.regex(got, /from-the-ring/);
  t.deepEqual(links(out), ['lo', 'out0']);
});

rootTest('SetupPairVeths twice: the second is FAILED_PRECONDITION (InterfaceExists) and changes nothing', async (t) => {
  const { c, socket } = await setup(t);
  const r2 = await ring(t, c);
  t.true((await c.call(socket, 'SetupPairVeths', { pid: r2.pid })).ok);
  const state = () => [links(c.initHostPid), links(r2.host), ip(c.initHostPid, ['-o', '-4', 'addr']), ip(r2.host, ['-o', '-4', 'addr']), ip(r2.host, ['route'])];
  const before = state();
  const again = await c.call(socket, 'SetupPairVeths', { pid: r2.pid });
  t.is(again.code, 'FAILED_PRECONDITION', JSON.stringify(again));
  t.regex(again.details ?? '', /already has an interface veth0/);
  // A second ring cannot get the workspace's one pair either.
  const other = await ring(t, c);
  const third = await c.call(socket, 'SetupPairVeths', { pid: other.pid });
  t.is(third.code, 'FAILED_PRECONDITION', JSON.stringify(third));
  t.deepEqual(links(other.host), ['lo']);
  t.deepEqual(state(), before);
});

rootTest('SetupPairVeths: an existing eth0 in the ring is never replaced (FAILED_PRECONDITION, no veth0 left)', async (t) => {
  const { c, socket } = await setup(t);
  const r2 = await ring(t, c);
  ip(r2.host, ['link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'mine0']);
  const r = await c.call(socket, 'SetupPairVeths', { pid: r2.pid });
  t.is(r.code, 'FAILED_PRECONDITION', JSON.stringify(r));
  t.regex(r.details ?? '', /already has an interface eth0/);
  t.regex(ip(r2.host, ['link', 'show', 'eth0']), /eth0@mine0/);
  t.deepEqual(links(c.initHostPid), ['lo']);
});

rootTest('SetupPairVeths attacks: a container sharing the host network, the container\'s own netns, a netns of the host user namespace, a non-owner; nothing created', async (t) => {
  // A container without its own network namespace: refused entirely.
  const shared = await setup(t, { ownNet: false });
  const hostLinks = links();
  const sr = await ring(t, shared.c);
  const r1 = await shared.c.call(shared.socket, 'SetupPairVeths', { pid: sr.pid });
  t.is(r1.code, 'FAILED_PRECONDITION', JSON.stringify(r1));
  t.regex(r1.details ?? '', /shares the host's network namespace/);
  t.deepEqual(links(sr.host), ['lo']);

  const { c, socket } = await setup(t);
  // The container's own namespace as the target (pid 1, the agent).
  const r2 = await c.call(socket, 'SetupPairVeths', { pid: 1 });
  t.is(r2.code, 'FAILED_PRECONDITION', JSON.stringify(r2));
  t.regex(r2.details ?? '', /container's own network namespace/);
  // A network namespace owned by the host's user namespace (container root,
  // host uid 0, made it without a user namespace): cannot be shown to be the workspace's.
  const bare = await ring(t, c, { userns: false });
  const r3 = await c.call(socket, 'SetupPairVeths', { pid: bare.pid });
  t.is(r3.code, 'PERMISSION_DENIED', JSON.stringify(r3));
  t.regex(r3.details ?? '', /not owned by a user namespace made inside the workspace/);
  t.deepEqual(links(bare.host), ['lo']);
  // A ring process that shares the host's network namespace.
  const hostNetRing = await ring(t, shared.c, { userns: true, net: false });
  const r4 = await shared.c.call(shared.socket, 'SetupPairVeths', { pid: hostNetRing.pid });
  t.is(r4.code, 'FAILED_PRECONDITION', JSON.stringify(r4));
  // An unprivileged user of the container, for a ring root made.
  const r2ring = await ring(t, c);
  await c.seteuid(1000);
  const r5 = await c.call(socket, 'SetupPairVeths', { pid: r2ring.pid });
  await c.seteuid(0);
  t.is(r5.code, 'PERMISSION_DENIED', JSON.stringify(r5));
  t.regex(r5.details ?? '', /neither owns nor is root in/);
  t.deepEqual(links(r2ring.host), ['lo']);
  t.deepEqual(links(c.initHostPid), ['lo']);
  t.deepEqual(links(), hostLinks);
});

// ---- MountNfs / UmountNfs -------------------------------------------------------

/** nfs-ganesha in the network namespace of host PID `netPid`, exporting a private temp dir as /export on 127.0.0.1:2049 there. */
async function ganesha(t: ExecutionContext, netPid: number): Promise<{ dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'iwsd-nfs-'));
  mkdirSync(join(dir, 'export'));
  mkdirSync(join(dir, 'recovery'));
  writeFileSync(join(dir, 'export', 'hello.txt'), 'hello from nfs\n');
  writeFileSync(
    join(dir, 'ganesha.conf'),
    `NFS_CORE_PARAM { Protocols = 4; NFS_Port = 2049; Enable_NLM = false; Enable_RQUOTA = false; }
NFSV4 { Graceless = true; RecoveryBackend = fs; RecoveryRoot = "${dir}/recovery"; }
EXPORT { Export_Id = 1; Path = "${dir}/export"; Pseudo = "/export"; Protocols = 4; Access_Type = RW; Squash = No_Root_Squash; SecType = sys; FSAL { Name = VFS; } }
LOG { Default_Log_Level = EVENT; }
`,
  );
  spawnSync('nsenter', ['--target', String(netPid), '--net', '--', 'ip', 'link', 'set', 'lo', 'up']);
  const p = spawn('nsenter', ['--target', String(netPid), '--net', '--', 'ganesha.nfsd', '-F', '-f', join(dir, 'ganesha.conf'), '-L', join(dir, 'log'), '-p', join(dir, 'pid')], { stdio: 'ignore' });
  t.teardown(async () => {
    const exited = new Promise((r) => p.once('exit', r));
    const server = descendant(p.pid!, (cl) => cl.startsWith('ganesha.nfsd'));
    if (server) process.kill(server, 'SIGKILL');
    p.kill('SIGKILL');
    if (p.exitCode === null && p.signalCode === null) await exited;
    rmSync(dir, { recursive: true, force: true });
  });
  await waitFor(
    'ganesha serving',
    () => (spawnSync('nsenter', ['--target', String(netPid), '--net', '--', 'nfs-ls', 'nfs://127.0.0.1/export?version=4'], { encoding: 'utf8' }).stdout.includes('hello.txt') ? true : undefined),
    30_000,
  );
  return { dir };
}

function nfsLs(netPid: number | undefined): { code: number; out: string } {
  const argv = ['nfs-ls', 'nfs://127.0.0.1/export?version=4'];
  const r = netPid === undefined ? spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 20_000 }) : spawnSync('nsenter', ['--target', String(netPid), '--net', '--', ...argv], { encoding: 'utf8', timeout: 20_000 });
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

/** The NFS mounts iwsd recorded for workspace `id` (its state journal and snapshot). */
function recordedNfs(d: TestDaemon, id: string): string[] {
  const dir = join(d.stateDir, 'state');
  return readdirSync(dir)
    .filter((f) => f.startsWith(id))
    .map((f) => readFileSync(join(dir, f), 'utf8'))
    .filter((s) => s.includes('"nfs"'));
}

rootTest('MountNfs: the server in the container\'s network is reachable there and not from the host; on this kernel the answer is what the kernel allows, without side effects', async (t) => {
  if (!haveGanesha) {
    if (process.env.IWSD_REQUIRE_ROOT === '1') return t.fail('nfs-ganesha / libnfs-utils missing (.ci/run installs them)');
    t.log('SKIPPED the NFS server part: nfs-ganesha / libnfs-utils not installed');
  }
  const { c, socket, id, d } = await setup(t);
  if (haveGanesha) {
    await ganesha(t, c.initHostPid);
    t.regex(nfsLs(c.initHostPid).out, /hello\.txt/, 'reachable from the container network');
    t.notRegex(nfsLs(undefined).out, /hello\.txt/, 'not what the host network reaches');
  }
  const r2 = await ring(t, c);
  const target = `/tmp/iwsd-nfs-target-${process.pid}-${n}`;
  mkdirSync(target);
  t.teardown(() => rmSync(target, { recursive: true, force: true }));
  const before = mountsOf(r2.host);
  const r = await c.call(socket, 'MountNfs', { source: '127.0.0.1:/export', target, args: 'vers=4.2,hard,timeo=100,retrans=2', pid: r2.pid });
  if (!hasNfs) {
    t.is(r.code, 'FAILED_PRECONDITION', JSON.stringify(r));
    t.regex(r.details ?? '', /this node's kernel has no NFS client \(CONFIG_NFS_FS/);
    t.deepEqual(mountsAdded(r2.host, before), [], 'nothing mounted');
    t.deepEqual(recordedNfs(d, id), [], 'nothing recorded');
    // Nothing was counted: the workspace's quota is whole (a proc mount still fits on `small` below).
    return;
  }
  t.true(r.ok, JSON.stringify(r));
  const m = mountsOf(r2.host).find(([mp, type]) => mp === target && type.startsWith('nfs'));
  t.truthy(m, JSON.stringify(mountsOf(r2.host)));
  for (const o of ['nosuid', 'nodev']) t.true(m![2].split(',').includes(o), `${o} in ${m![2]}`);
  t.false(mountsOf(c.initHostPid).some(([mp]) => mp === target), 'only in the ring');
  t.false(mountsOf(process.pid).some(([mp]) => mp === target), 'not on the host');
  t.is(spawnSync('nsenter', ['--target', String(r2.host), '--mount', '--', 'cat', join(target, 'hello.txt')], { encoding: 'utf8' }).stdout, 'hello from nfs\n');
  t.is(recordedNfs(d, id).length > 0, true);
  const u = await c.call(socket, 'UmountNfs', { target, pid: r2.pid });
  t.true(u.ok, JSON.stringify(u));
  t.false(mountsOf(r2.host).some(([mp]) => mp === target));
});

if (hasNfs) {
  rootTest('MountNfs: from the host network the same source would not be reached (iwsd connects from the container network)', async (t) => {
    const { c, socket } = await setup(t);
    const r2 = await ring(t, c);
    // A server only in the host's network namespace (here: none in the container's).
    const r = await c.call(socket, 'MountNfs', { source: '127.0.0.1:/export', target: '/tmp', args: 'soft,timeo=10,retrans=1', pid: r2.pid });
    t.false(r.ok, JSON.stringify(r));
  });
} else {
  test.skip('MountNfs success path on a kernel with NFS (this kernel has no nfs4 in /proc/filesystems: CONFIG_NFS_FS is off)', () => undefined);
}

rootTest('MountNfs refusals, with or without an NFS client: options, source, target, foreign mount namespace, host network, quota; UmountNfs only of its own mounts', async (t) => {
  const { c, socket } = await setup(t);
  const r2 = await ring(t, c);
  const target = `/tmp/iwsd-nfs-refusal-${process.pid}-${n}`;
  mkdirSync(target);
  t.teardown(() => rmSync(target, { recursive: true, force: true }));
  const before = mountsOf(r2.host);
  const call = (req: Record<string, unknown>) => c.call(socket, 'MountNfs', { source: '127.0.0.1:/export', target, args: '', pid: r2.pid, ...req });
  for (const [args, why] of [
    ['suid', /nosuid,nodev/],
    ['dev', /nosuid,nodev/],
    ['sec=krb5', /gssd/],
    ['fsc', /cachefilesd/],
    ['context=system_u:object_r:nfs_t:s0', /SELinux/],
    ['vers=3', /vers must be one of/],
    ['proto=udp', /proto must be one of/],
    ['bogus', /not allowed/],
  ] as const) {
    const r = await call({ args });
    t.is(r.code, 'INVALID_ARGUMENT', `${args}: ${JSON.stringify(r)}`);
    t.regex(r.details ?? '', why, args);
  }
  for (const source of ['nfs.example:/export', '127.0.0.1', 'a b:/x', '']) {
    const r = await call({ source });
    t.is(r.code, 'INVALID_ARGUMENT', `${source}: ${JSON.stringify(r)}`);
  }
  for (const [bad, why] of [
    ['relative', /relative/],
    ['/nope/nope', /does not exist/],
    ['/etc/../tmp', /'\.\.'/],
  ] as const) {
    const r = await call({ target: bad });
    t.is(r.code, 'INVALID_ARGUMENT', `${bad}: ${JSON.stringify(r)}`);
    t.regex(r.details ?? '', why);
  }
  // A process that joined only the container's PID namespace: the host's mount namespace.
  const hostMnt = await ring(t, c, { userns: false, net: false, mount: false });
  const fm = await call({ pid: hostMnt.pid });
  t.is(fm.code, 'PERMISSION_DENIED', JSON.stringify(fm));
  t.regex(fm.details ?? '', /host's mount namespace/);
  // An unprivileged user, onto the ring root's namespace.
  await c.seteuid(1000);
  const nu = await call({});
  await c.seteuid(0);
  t.is(nu.code, 'PERMISSION_DENIED', JSON.stringify(nu));
  // UmountNfs of something iwsd did not mount for NFS.
  const um = await c.call(socket, 'UmountNfs', { target: '/', pid: r2.pid });
  t.is(um.code, 'PERMISSION_DENIED', JSON.stringify(um));
  t.regex(um.details ?? '', /was not made by iwsd for this workspace/);
  t.deepEqual(mountsAdded(r2.host, before), []);

  // A container that shares the host's network: no NFS mount at all.
  const shared = await setup(t, { ownNet: false });
  const sr = await ring(t, shared.c);
  const hn = await shared.c.call(shared.socket, 'MountNfs', { source: '127.0.0.1:/export', target, args: '', pid: sr.pid });
  t.is(hn.code, 'FAILED_PRECONDITION', JSON.stringify(hn));
  t.regex(hn.details ?? '', /shares the host's network namespace/);

  // Quota: one mount allowed, taken by a proc mount: MountNfs is RESOURCE_EXHAUSTED first.
  const q = await setup(t, { d: small });
  const qr = await ring(t, q.c);
  const procDir = `/tmp/iwsd-nfs-proc-${process.pid}-${n}`;
  mkdirSync(procDir);
  t.teardown(() => rmSync(procDir, { recursive: true, force: true }));
  const p = await q.c.call(q.socket, 'MountProc', { target: procDir, pid: qr.pid });
  t.true(p.ok, JSON.stringify(p));
  const ex = await q.c.call(q.socket, 'MountNfs', { source: '127.0.0.1:/export', target, args: '', pid: qr.pid });
  t.is(ex.code, 'RESOURCE_EXHAUSTED', JSON.stringify(ex));
});

rootTest('the client view from inside the container: iwsd call (SetupPairVeths --pid, MountNfs --source/--args) and iwsd/client', async (t) => {
  const { c, socket } = await setup(t);
  const r2 = await ring(t, c);
  const ok = await c.run([process.execPath, IWSD, 'call', 'SetupPairVeths', '--socket', socket, '--pid', String(r2.pid)]);
  t.is(ok.code, 0, ok.stderr);
  t.is(ok.stdout.trim(), '{}');
  t.regex(ip(r2.host, ['-o', '-4', 'addr', 'show', 'dev', 'eth0']), /10\.0\.5\.2\/30/);
  const nfs = await c.run([process.execPath, IWSD, 'call', 'MountNfs', '--socket', socket, '--pid', String(r2.pid), '--target', '/tmp', '--source', '127.0.0.1:/export', '--args', 'suid']);
  t.not(nfs.code, 0);
  t.regex(nfs.stderr, /INVALID_ARGUMENT: NFS option suid is not allowed/);
  const usage = await c.run([process.execPath, IWSD, 'call', 'MountNfs', '--socket', socket, '--pid', '1', '--target', '/tmp']);
  t.is(usage.code, 2);
  t.regex(usage.stderr, /MountNfs needs --source/);
  const wrong = await c.run([process.execPath, IWSD, 'call', 'MountProc', '--socket', socket, '--pid', '1', '--target', '/tmp', '--source', 'x:/y']);
  t.is(wrong.code, 2);
  t.regex(wrong.stderr, /--source does not apply to MountProc/);
  t.truthy(readlinkSync(`/proc/${r2.host}/ns/net`));

  // iwsd/client, from inside the container: each answer as an IwsError with its code.
  const CLIENT = new URL('../dist/api/client.js', import.meta.url).pathname;
  const script = `const { createClient } = await import(${JSON.stringify(CLIENT)});
const c = createClient(${JSON.stringify(socket)}, { timeoutMs: 10000 });
const out = {};
for (const [k, f] of Object.entries({
  again: () => c.setupPairVeths({ pid: ${r2.pid} }),
  nfs: () => c.mountNfs({ source: '127.0.0.1:/export', target: '/tmp', args: 'sec=krb5', pid: ${r2.pid} }),
  umount: () => c.umountNfs({ target: '/tmp', pid: ${r2.pid} }),
})) out[k] = await f().then(() => 'ok', (e) => e.code + ': ' + e.message);
c.close();
console.log(JSON.stringify(out));`;
  const lib = await c.run([process.execPath, '--input-type=module', '-e', script]);
  t.is(lib.code, 0, lib.stderr);
  const out = JSON.parse(lib.stdout) as Record<string, string>;
  t.regex(out.again!, /^FAILED_PRECONDITION: .*already has an interface veth0/);
  t.regex(out.nfs!, /^INVALID_ARGUMENT: NFS option sec: only sys or none/);
  // /tmp is no NFS mount of iwsd's: nothing is mounted there, or (where /tmp is a mount) not iwsd's.
  t.regex(out.umount!, /^(NOT_FOUND: nothing is mounted|PERMISSION_DENIED: the mount at .* was not made by iwsd)/);
});
