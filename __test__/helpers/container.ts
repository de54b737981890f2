/**
 * A throwaway container for tests: a new PID namespace (util-linux `unshare`)
 * whose PID 1 is agent.mjs. Killing `unshare` (--kill-child) kills the
 * namespace and everything in it. With `mountNs`, mounts made inside live in
 * the container's own mount namespace and vanish with it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { appendFileSync, chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import type { ExecutionContext } from 'ava';
import { AgentChannel } from './agentProtocol.js';
import { processes } from './process.js';

const AGENT = fileURLToPath(new URL('./agent.mjs', import.meta.url));

export interface CallResult {
  ok: boolean;
  code?: string;
  details?: string;
  response?: Record<string, unknown>;
}

export function children(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

export function nspid(hostPid: number): number[] {
  const m = /^NSpid:\s*(.*)$/m.exec(readFileSync(`/proc/${hostPid}/status`, 'utf8'));
  return m ? m[1]!.trim().split(/\s+/).map(Number) : [];
}

/** The lines of /proc/<pid>/uid_map (or gid_map) as [inside, outside, size]. */
export function readMap(hostPid: number, file: 'uid_map' | 'gid_map'): number[][] {
  return readFileSync(`/proc/${hostPid}/${file}`, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => l.trim().split(/\s+/).map(Number));
}

/** Polls `f` every 10 ms until it returns a value; throws after `ms`. */
export async function waitFor<T>(what: string, f: () => T | undefined, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export interface ContainerOptions {
  /** Own mount (private) and network namespaces. */
  mountNs?: boolean;
  /** With `mountNs`: keep the host's network namespace (a container run with host networking). */
  hostNet?: boolean;
  /**
   * Like an OCI runtime: own mount (private), network and PID namespaces,
   * and a root that is a mount of its own (bind + pivot_root) at `rootfs`,
   * with `busybox sleep` as init. The agent then joins the PID namespace
   * (not the mount namespace) with nsenter.
   */
  rootfs?: string;
  /**
   * With `rootfs`: host directories bind-mounted into it before the pivot
   * (as a runtime's `mounts`), read-only when `readOnly`.
   */
  binds?: { source: string; target: string; readOnly?: boolean }[];
  /**
   * With `rootfs`: init runs as this uid (and gid), without capabilities (as
   * Gitpod's ring0 runs as 33333); the uid is added to the rootfs's
   * /etc/passwd and /etc/group.
   */
  initUid?: number;
}

/** The user name `initUid` gets in the rootfs's /etc/passwd (busybox su needs one). */
const initUser = (uid: number) => `init${uid}`;

/** The host PID of `unshare`'s child once it is the pivoted init (`busybox sleep 100000`), else undefined. */
export function pivotedInit(unshare: ChildProcess): number | undefined {
  const kid = children(unshare.pid!)[0];
  if (kid === undefined) return undefined;
  try {
    return readFileSync(`/proc/${kid}/cmdline`, 'utf8') === '/bin/busybox\x00sleep\x00100000\x00' ? kid : undefined;
  } catch {
    return undefined;
  }
}

/** The pivot_root dance of an OCI runtime, in sh, then busybox sleep as init. */
function pivotScript(rootfs: string, binds: NonNullable<ContainerOptions['binds']> = [], initUid?: number): string {
  const mounts = binds
    .map((b) => {
      const dst = `${rootfs}/${b.target.replace(/^\/+/, '')}`;
      return `mkdir -p ${dst} && mount --bind ${b.source} ${dst}${b.readOnly ? ` && mount -o remount,bind,ro ${dst}` : ''} && `;
    })
    .join('');
  return (
    `mount --bind ${rootfs} ${rootfs} && ${mounts}cd ${rootfs} && mkdir -p .old && pivot_root . .old && ` +
    `exec /bin/busybox sh -c 'cd / && /bin/busybox umount -l /.old && /bin/busybox rmdir /.old && ` +
    (initUid === undefined ? `exec /bin/busybox sleep 100000'` : `exec /bin/busybox su -s /bin/sh ${initUser(initUid)} -c "exec /bin/busybox sleep 100000"'`)
  );
}

export class TestContainer {
  #proc: ChildProcess;
  #unshare: ChildProcess | undefined;
  #agent: AgentChannel;
  /** Host PID of the container's init (the agent). */
  initHostPid = 0;

  private constructor(opts: ContainerOptions, init?: { unshare: ChildProcess | undefined; pid: number }) {
    if (init) {
      this.#unshare = init.unshare;
      this.initHostPid = init.pid;
      this.#proc = spawn('nsenter', ['--target', String(init.pid), '--pid', '--', process.execPath, AGENT], {
        stdio: ['pipe', 'pipe', 'inherit'],
      });
    } else {
      // --mount: its own mount namespace (private propagation, so nothing
      // mounted inside can reach the host); --net: its own network namespace.
      const ns = opts.mountNs ? ['--mount', '--propagation', 'private', ...(opts.hostNet ? [] : ['--net'])] : [];
      this.#proc = spawn('unshare', ['--pid', '--fork', '--kill-child', ...ns, '--', process.execPath, AGENT], {
        stdio: ['pipe', 'pipe', 'inherit'],
      });
    }
    this.#agent = new AgentChannel(this.#proc, 'container');
  }

  /** An agent inside the PID namespace of an existing container (e.g. runc's). */
  static async attach(initHostPid: number): Promise<TestContainer> {
    const c = new TestContainer({}, { unshare: undefined, pid: initHostPid });
    await c.#agent.ready;
    return c;
  }

  /** [`start`](#start), stopped when test `t` ends (also when it fails). */
  static async startFor(t: ExecutionContext, opts: ContainerOptions = {}): Promise<TestContainer> {
    const c = await TestContainer.start(opts);
    t.teardown(() => c.stop());
    return c;
  }

  static async start(opts: ContainerOptions = {}): Promise<TestContainer> {
    if (opts.rootfs) {
      if (opts.initUid !== undefined) {
        // As a workspace image names its user (Gitpod's: gitpod, 33333).
        mkdirSync(join(opts.rootfs, 'etc'), { recursive: true });
        appendFileSync(join(opts.rootfs, 'etc/passwd'), `${initUser(opts.initUid)}:x:${opts.initUid}:${opts.initUid}::/:/bin/sh\n`);
        appendFileSync(join(opts.rootfs, 'etc/group'), `${initUser(opts.initUid)}:x:${opts.initUid}:\n`);
      }
      const unshare = spawn('unshare', ['--pid', '--fork', '--kill-child', '--mount', '--propagation', 'private', '--net', '--', 'sh', '-c', pivotScript(opts.rootfs, opts.binds, opts.initUid)], {
        stdio: ['ignore', 'inherit', 'inherit'],
      });
      const pid = await waitFor('pivoted container init', () => pivotedInit(unshare));
      const c = new TestContainer(opts, { unshare, pid });
      await c.#agent.ready;
      return c;
    }
    const c = new TestContainer(opts);
    await c.#agent.ready;
    const upid = c.#proc.pid!;
    c.initHostPid = await waitFor('container init', () => children(upid)[0]);
    return c;
  }

  #send(cmd: Record<string, unknown>): Promise<Record<string, unknown>> {
    return this.#agent.send(cmd);
  }

  /** Starts a process in a new user namespace; returns its PID inside the container. */
  async spawnUserns(): Promise<number> {
    return (await this.#send({ op: 'spawnUserns' })).pid as number;
  }

  /** Sets the agent's effective uid (its later connections are that user's). */
  async seteuid(euid: number): Promise<void> {
    await this.#send({ op: 'seteuid', euid });
  }

  /** Runs `argv` from the agent (inside the container), waiting for it. */
  async run(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    return (await this.#send({ op: 'run', argv })) as unknown as { code: number; stdout: string; stderr: string };
  }

  /** Calls an InWorkspaceService RPC from inside the container. */
  async call(socket: string, rpc: string, request: Record<string, unknown>, opts: { metadata?: Record<string, string> } = {}): Promise<CallResult> {
    return (await this.#send({ op: 'call', socket, rpc, request, ...opts })) as unknown as CallResult;
  }

  /**
   * Benchmark loop inside the container: `rounds` repetitions of `calls` over
   * one connection (a request value "$ROUND" is replaced by `values[round]`,
   * or the round number).
   */
  async timed(
    socket: string,
    calls: { rpc: string; request: unknown }[],
    rounds: number,
    warmup = 0,
    values?: number[],
  ): Promise<{ latencies: Record<string, number[]>; errors: string[] }> {
    const r = await this.#send({ op: 'timed', socket, calls, rounds, warmup, values });
    return { latencies: r.latencies as Record<string, number[]>, errors: r.errors as string[] };
  }

  /** grpc.health.v1.Health/Check from inside the container. */
  async health(socket: string, service = ''): Promise<{ status?: string; error?: string }> {
    const { status, error } = (await this.#send({ op: 'health', socket, service })) as { status?: string; error?: string };
    return error ? { error } : { status };
  }

  /** Lists services through server reflection from inside the container. */
  async reflect(socket: string): Promise<{ services?: string[]; error?: string }> {
    const { services, error } = (await this.#send({ op: 'reflect', socket })) as { services?: string[]; error?: string };
    return error ? { error } : { services };
  }

  /** Starts `busybox sleep` chrooted to `root`; returns its PID inside the container. */
  async spawnChroot(root: string): Promise<number> {
    return (await this.#send({ op: 'spawnChroot', root })).pid as number;
  }

  /** Makes many calls over one connection, `concurrency` at a time. */
  async callMany(socket: string, calls: { rpc: string; request: Record<string, unknown> }[], concurrency = 1): Promise<CallResult[]> {
    return (await this.#send({ op: 'callMany', socket, calls, concurrency })).results as CallResult[];
  }

  /** Opens `n` raw connections to `socket` that send nothing; resolves with how many connected. */
  async hold(name: string, socket: string, n: number): Promise<number> {
    return (await this.#send({ op: 'hold', name, socket, n })).connected as number;
  }

  /** Of the connections held under `name`: how many there are and how many the other side closed. */
  async held(name: string): Promise<{ total: number; closed: number }> {
    const r = await this.#send({ op: 'held', name });
    return { total: r.total as number, closed: r.closed as number };
  }

  async unhold(name: string): Promise<void> {
    await this.#send({ op: 'unhold', name });
  }

  /** Keeps `concurrency` calls outstanding (over `clients` connections) until unflood(). */
  async flood(socket: string, calls: { rpc: string; request: unknown }[], concurrency: number, clients = 1): Promise<void> {
    await this.#send({ op: 'flood', socket, calls, concurrency, clients });
  }

  async unflood(): Promise<{ calls: number; codes: Record<string, number> }> {
    const r = await this.#send({ op: 'unflood' });
    return { calls: r.calls as number, codes: r.codes as Record<string, number> };
  }

  /** Starts a process in the container that swaps `dir` with a symlink to `target`. */
  async startSwapper(dir: string, link: string, target: string): Promise<void> {
    await this.#send({ op: 'swap', dir, link, target });
  }

  async stopSwapper(): Promise<void> {
    await this.#send({ op: 'unswap' });
  }

  /** The host PID of the process that is `pid` inside this container. */
  hostPidOf(pid: number): number {
    const queue = [this.initHostPid, this.#proc.pid!];
    while (queue.length) {
      const h = queue.shift()!;
      const ns = nspid(h);
      if (ns.length >= 2 && ns[ns.length - 1] === pid) return h;
      queue.push(...children(h));
    }
    throw new Error(`no process ${pid} in the container`);
  }

  /**
   * Kills the container: SIGKILL to its init ends the PID namespace and
   * everything in it. `unshare` and `nsenter` stay alive to reap their
   * children (so nothing waits on the host's init to do it), then exit.
   */
  async stop(): Promise<void> {
    try {
      if (this.initHostPid) process.kill(this.initHostPid, 'SIGKILL');
    } catch {
      // already gone
    }
    for (const p of [this.#unshare, this.#proc]) {
      if (!p || p.exitCode !== null || p.signalCode !== null) continue;
      const exited = new Promise((r) => p.once('exit', r));
      const timer = setTimeout(() => p.kill('SIGKILL'), 3000);
      if (!this.initHostPid) p.kill('SIGKILL');
      await exited;
      clearTimeout(timer);
    }
  }

}

/** (mount point, fs type, mount options) of every mount `hostPid` sees, relative to its root. */
export function mountsOf(hostPid: number): [string, string, string][] {
  return readFileSync(`/proc/${hostPid}/mountinfo`, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const f = l.split(' ');
      const sep = f.indexOf('-');
      return [f[4]!, f[sep + 1]!, f[5]!];
    });
}

/**
 * The mounts of `hostPid`'s namespace that are not in `before` (a multiset difference). For "nothing
 * was mounted" checks: on a busy node the host's own mounts change meanwhile, and a container
 * namespace copied from the host's loses a copied mount when the host deletes its mount point (the
 * kernel detaches it in every namespace), so whole tables are not compared.
 */
export function mountsAdded(hostPid: number, before: [string, string, string][]): [string, string, string][] {
  const left = new Map<string, number>();
  for (const m of before) left.set(m.join('\0'), (left.get(m.join('\0')) ?? 0) + 1);
  return mountsOf(hostPid).filter((m) => {
    const n = left.get(m.join('\0')) ?? 0;
    if (n > 0) left.set(m.join('\0'), n - 1);
    return n === 0;
  });
}

export function hostMountinfo(): string {
  return readFileSync('/proc/self/mountinfo', 'utf8');
}

/** fuse-overlayfs processes serving workspace `id` (its dirs are named after it). */
export function fusePids(id: string): number[] {
  return processes((cmd) => cmd.startsWith('/usr/bin/fuse-overlayfs\0') && cmd.includes(`/fuse/${id}/`)).map((p) => p.pid);
}

/** Filesystem types iwsd itself mounts (proc, sysfs, FUSE and shiftfs marks, fusectl to abort a mark, NFS). */
const IWSD_TYPES = new Set(['proc', 'sysfs', 'fuse.fuse-overlayfs', 'shiftfs', 'fusectl', 'nfs', 'nfs4']);

function under(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir.endsWith('/') ? dir : `${dir}/`);
}

/**
 * The part of the host's mount table that iwsd could have added to during a
 * test, as sorted "mount point type source" lines: every mount under `own`
 * (the test's own temp and state paths), and every mount of a type iwsd makes
 * outside the temp dir (where an escaped mount would land). Mounts other
 * programs make meanwhile (container runtimes, other test runs, each in a
 * directory of its own) are not compared.
 */
export function hostMounts(own: string[]): string[] {
  const tmp = tmpdir();
  return hostMountinfo()
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const f = l.split(' ');
      const sep = f.indexOf('-');
      return { mp: f[4]!, type: f[sep + 1]!, source: f[sep + 2]! };
    })
    .filter(({ mp, type }) => own.some((d) => under(mp, d)) || (IWSD_TYPES.has(type) && !under(mp, tmp)))
    .map(({ mp, type, source }) => `${mp} ${type} ${source}`)
    .sort();
}

/**
 * Another program mounting and unmounting on the host meanwhile, as a
 * container runtime does: a tmpfs and a proc in a private temp dir of its own,
 * over and over until stopped; `stop()` unmounts and removes everything.
 */
export function startHostMounter(): { dir: string; stop: () => Promise<number> } {
  const dir = mkdtempSync(join(tmpdir(), 'other-mounter-'));
  const script =
    `cd ${dir} && mkdir -p a b && n=0 && trap 'umount -l a b 2>/dev/null; echo $n; exit 0' TERM && ` +
    'while :; do mount -t tmpfs other a && mount -t proc other b && umount a && umount b && n=$((n+1)); done';
  const p = spawn('sh', ['-c', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  p.stdout.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<void>((r) => p.once('exit', () => r()));
  return {
    dir,
    async stop() {
      p.kill('SIGTERM');
      await exited;
      spawnSync('umount', ['-l', join(dir, 'a'), join(dir, 'b')], { stdio: 'ignore' });
      rmSync(dir, { recursive: true, force: true });
      return Number(out.trim()) || 0;
    },
  };
}

/**
 * A busybox-static rootfs in a temp dir, with traps for escape tests:
 * `escape` (symlink to a host dir outside), `file`, `work/target`.
 */
export function makeRootfs(): { base: string; rootfs: string; outside: string; cleanup: () => void } {
  const base = mkdtempSync(join(tmpdir(), 'iwsd-rootfs-'));
  const rootfs = join(base, 'rootfs');
  const outside = join(base, 'outside');
  for (const d of ['bin', 'dev', 'proc', 'sys', 'tmp', 'work/target', 'work/sub']) mkdirSync(join(rootfs, d), { recursive: true });
  mkdirSync(outside);
  copyFileSync('/bin/busybox', join(rootfs, 'bin/busybox'));
  chmodSync(join(rootfs, 'bin/busybox'), 0o755);
  for (const applet of ['sh', 'cat', 'wc', 'ls', 'tr', 'echo', 'mount', 'umount', 'mkdir', 'sleep']) {
    symlinkSync('busybox', join(rootfs, 'bin', applet));
  }
  writeFileSync(join(rootfs, 'file'), 'x');
  symlinkSync(outside, join(rootfs, 'escape'));
  symlinkSync(outside, join(rootfs, 'work/sub/out'));
  return { base, rootfs, outside, cleanup: () => rmSync(base, { recursive: true, force: true }) };
}

/** Runs a busybox shell command inside `hostPid`'s root and namespaces. */
export function shInside(hostPid: number, script: string): { code: number; stdout: string; stderr: string } {
  const r = spawnSync('nsenter', ['--target', String(hostPid), '--mount', '--pid', '--net', '--root', '--wd=/', '--', '/bin/busybox', 'sh', '-c', script], {
    encoding: 'utf8',
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/**
 * The host PID of `launcher`'s child once it is `busybox sleep` in a user
 * namespace other than `outer` (an `ns/user` link's target), e.g. what
 * `nsenter ... busybox unshare -U ... busybox sleep` starts.
 */
export function sleeperInNewUserns(launcher: ChildProcess, outer: string, what: string, ms?: number): Promise<number> {
  return waitFor(
    what,
    () => {
      const kid = children(launcher.pid!)[0];
      if (kid === undefined) return undefined;
      try {
        return readlinkSync(`/proc/${kid}/ns/user`) !== outer && readFileSync(`/proc/${kid}/cmdline`, 'utf8').startsWith('/bin/busybox\x00sleep') ? kid : undefined;
      } catch {
        return undefined;
      }
    },
    ms,
  );
}

/**
 * Starts a process inside a pivoted container (its mount and PID namespaces
 * and root) in a new user namespace without maps; returns its host PID and
 * its PID inside the container. `unshare`: more busybox unshare options
 * (e.g. a mount namespace of its own, as a ring has); `ms`: how long to wait.
 */
export async function spawnUsernsInside(
  initHostPid: number,
  opts: { unshare?: string[]; ms?: number } = {},
): Promise<{ host: number; pid: number; stop: () => void }> {
  const p = spawn('nsenter', ['--target', String(initHostPid), '--mount', '--pid', '--root', '--wd=/', '--', '/bin/busybox', 'unshare', '-U', ...(opts.unshare ?? []), '/bin/busybox', 'sleep', '100000'], {
    stdio: 'ignore',
  });
  try {
    const host = await sleeperInNewUserns(p, readlinkSync('/proc/self/ns/user'), 'user-namespaced process', opts.ms);
    return { host, pid: nspid(host).at(-1)!, stop: () => p.kill('SIGKILL') };
  } catch (err) {
    p.kill('SIGKILL');
    throw err;
  }
}

/** Runs a busybox shell command as root of `hostPid`'s user namespace, in its mount namespace and root. */
export function shAsUserns(hostPid: number, script: string): { code: number; stdout: string; stderr: string } {
  const r = spawnSync('nsenter', ['--target', String(hostPid), '--user', '--mount', '--root', '--wd=/', '--', '/bin/busybox', 'sh', '-c', script], {
    encoding: 'utf8',
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}
