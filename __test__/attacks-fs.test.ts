/**
 * Attacks on the daemon's filesystem work (issue 11: items 1, 2 and the
 * workspace-directory part of 6). The attacker is container root: uid 0 in a
 * test container (its PID namespace) with runc's default capabilities only
 * (setpriv drops the rest: no CAP_SYS_ADMIN, no CAP_LINUX_IMMUTABLE), and it
 * reaches the workspace directory as a read-write bind of `/.workspace`
 * would show it. Canaries live in temp dirs only; every test cleans up.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

import test, { type ExecutionContext } from 'ava';

import { addWorkspaceRequest, call, connectAdmin } from '../src/adminClient.js';
import * as native from '../src/native.js';
import { makeRootfs, shInside, TestContainer, waitFor } from './helpers/container.js';
import { TestDaemon } from './helpers/daemon.js';
import { rootTestSerial } from './helpers/root.js';

const RUNC_CAPS = ['chown', 'dac_override', 'fowner', 'fsetid', 'kill', 'setuid', 'setgid', 'setfcap', 'setpcap', 'mknod', 'net_raw', 'net_bind_service', 'sys_chroot', 'audit_write'];
const TRIES = 50;

/** A python3 process as container root inside `c`; resolves once it printed its first line. */
async function asContainerRoot(t: ExecutionContext, c: TestContainer, script: string, args: string[]): Promise<{ first: string; stop: () => Promise<void> }> {
  const p: ChildProcess = spawn(
    'nsenter',
    ['--target', String(c.initHostPid), '--pid', '--', 'setpriv', `--bounding-set=-all,${RUNC_CAPS.map((x) => `+${x}`).join(',')}`, '--inh-caps=-all', '--', 'python3', '-c', script, ...args],
    // Its own process group: nsenter --pid forks, and killing nsenter alone
    // would leave the attacker running.
    { stdio: ['ignore', 'pipe', 'inherit'], detached: true },
  );
  const stop = async () => {
    const gone = p.exitCode !== null || p.signalCode !== null ? Promise.resolve() : new Promise((r) => p.once('exit', r));
    try {
      process.kill(-p.pid!, 'SIGKILL');
    } catch {
      // the group is gone already
    }
    await gone;
    await waitFor('the attacker to be gone', () => (spawnSync('pgrep', ['-g', String(p.pid)]).status === 1 ? true : undefined), 10_000);
  };
  t.teardown(stop);
  const first = await new Promise<string>((resolve, reject) => {
    createInterface({ input: p.stdout! }).once('line', resolve);
    p.once('exit', (code) => reject(new Error(`attacker exited (${code})`)));
  });
  return { first, stop };
}

/** Checks the attacker really lacks what runc does not grant. */
const CAPS_LINE = `
import os, sys
eff = int([l for l in open('/proc/self/status') if l.startswith('CapEff')][0].split()[1], 16)
assert os.getuid() == 0 and not eff & (1 << 21) and not eff & (1 << 9), 'not container root'
`;

/** Replaces daemon.sock with a symlink to the canary as fast as it can. */
const SYMLINK_SWAPPER = `${CAPS_LINE}
ws, canary = sys.argv[1], sys.argv[2]
tmp = ws + '/.l'
print('ready', flush=True)
while True:
    try: os.symlink(canary, tmp)
    except OSError: pass
    try: os.rename(tmp, ws + '/daemon.sock')
    except OSError: pass
`;

/** Plants d/ (many files) and l -> canary dir, then RENAME_EXCHANGEs them in a loop. */
const DIR_SWAPPER = `${CAPS_LINE}
import ctypes
ws, canary = sys.argv[1], sys.argv[2]
libc = ctypes.CDLL(None, use_errno=True)
try:
    os.makedirs(ws + '/d', exist_ok=True)
    for i in range(3000):
        open('%s/d/f%d' % (ws, i), 'w').close()
    os.symlink(canary, ws + '/l')
    print('planted', flush=True)
except OSError as e:
    print('refused %d' % e.errno, flush=True)
a, b = (ws + '/d').encode(), (ws + '/l').encode()
while True:
    libc.renameat2(-100, a, -100, b, 2)
`;

/** Tries to put bytes into the workspace directory every way it can. */
const FILLER = `${CAPS_LINE}
import errno
ws = sys.argv[1]
out = []
def attempt(name, f):
    try:
        f(); out.append(name + ':ok')
    except OSError as e:
        out.append(name + ':' + errno.errorcode[e.errno])
def big():
    fd = os.open(ws + '/fill', os.O_CREAT | os.O_WRONLY, 0o644)
    try: os.posix_fallocate(fd, 0, 64 << 20)
    finally: os.close(fd)
attempt('create', big)
attempt('mkdir', lambda: os.mkdir(ws + '/dir'))
attempt('mark', lambda: os.mkdir(ws + '/mark/x'))
attempt('mknod', lambda: os.mkfifo(ws + '/fifo'))
attempt('rename', lambda: os.rename(ws + '/mark', ws + '/mark2'))
attempt('unlink', lambda: os.unlink(ws + '/daemon.sock'))
print(' '.join(out), flush=True)
`;

/** A host canary: a file whose mode iwsd must never change. */
function canaryFile(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'iwsd-canary-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const f = join(dir, 'canary');
  writeFileSync(f, 'host file');
  chmodSync(f, 0o600);
  return f;
}

const mode = (p: string) => statSync(p).mode & 0o7777;

async function startDaemon(t: ExecutionContext): Promise<TestDaemon> {
  const d = await TestDaemon.start();
  t.teardown(() => d.stop());
  return d;
}

async function startContainer(t: ExecutionContext): Promise<TestContainer> {
  const c = await TestContainer.startFor(t);
  return c;
}

/** AddWorkspace then RemoveWorkspace through the admin socket, in-process (fast, for many tries). */
async function addRm(d: TestDaemon, id: string, pid: number): Promise<{ added: boolean; error?: string }> {
  const admin = connectAdmin(d.stateDir);
  try {
    try {
      await call((o, cb) => admin.AddWorkspace(addWorkspaceRequest({ id, pid }), o, cb));
    } catch (err) {
      return { added: false, error: `${(err as Error).message}` };
    }
    await call((o, cb) => admin.RemoveWorkspace({ id }, o, cb));
    return { added: true };
  } finally {
    admin.close();
  }
}

function names(dir: string): string[] {
  return readdirSync(dir).sort();
}

rootTestSerial('container root swapping daemon.sock for a symlink while the daemon creates the socket never changes a host file (fresh directory)', async (t) => {
  const d = await startDaemon(t);
  const c = await startContainer(t);
  const canary = canaryFile(t);
  const ws = join(d.stateDir, 'workspaces', 'sw');
  const a = await asContainerRoot(t, c, SYMLINK_SWAPPER, [ws, canary]);
  t.is(a.first, 'ready');
  t.timeout(300_000);
  let served = 0;
  for (let i = 0; i < TRIES; i++) {
    const r = await addRm(d, 'sw', c.initHostPid);
    if (r.added) served++;
    else t.log(`try ${i}: ${r.error}`);
    t.is(mode(canary), 0o600, `host canary's mode changed at try ${i}`);
  }
  await a.stop();
  // Racing the one short window in which the flag is off, container root can
  // deny itself its own socket (registration then fails UNAVAILABLE); it
  // never reaches a host file. A read-only bind leaves it no window at all.
  t.log(`${served} of ${TRIES} registrations served while the attacker raced`);
  t.true((await addRm(d, 'sw', c.initHostPid)).added, 'served once the attacker stops');
});

rootTestSerial('container root swapping daemon.sock for a symlink at registration of a running container never changes a host file', async (t) => {
  const d = await startDaemon(t);
  const c = await startContainer(t);
  const canary = canaryFile(t);
  const ws = join(d.stateDir, 'workspaces', 'sw');
  const a = await asContainerRoot(t, c, SYMLINK_SWAPPER, [ws, canary]);
  t.timeout(300_000);
  let served = 0;
  for (let i = 0; i < TRIES; i++) {
    // The runtime made the directory before the container started; the
    // container (its root) plays with it before the daemon registers it.
    mkdirSync(ws, { recursive: true });
    await new Promise((r) => setTimeout(r, 5));
    const r = await addRm(d, 'sw', c.initHostPid);
    if (r.added) served++;
    else t.regex(r.error!, /keeps being replaced/);
    t.is(mode(canary), 0o600, `host canary's mode changed at try ${i}`);
  }
  await a.stop();
  t.log(`${served} of ${TRIES} registrations served while the attacker raced`);
});

rootTestSerial('container root swapping daemon.sock for a symlink across kill -9 restarts never changes a host file; its directory is kept and the workspace served again', async (t) => {
  const d = await startDaemon(t);
  const c = await startContainer(t);
  const canary = canaryFile(t);
  const socket = await d.add('sw', c.initHostPid);
  const ws = join(d.stateDir, 'workspaces', 'sw');
  const a = await asContainerRoot(t, c, SYMLINK_SWAPPER, [ws, canary]);
  t.timeout(400_000);
  const inode = statSync(ws).ino;
  for (let i = 0; i < TRIES; i++) {
    await d.restart('SIGKILL');
    t.is(mode(canary), 0o600, `host canary's mode changed at restart ${i}`);
    // Restored, or (the attacker won the window and took its own socket)
    // kept for the next start: never deleted while the container runs.
    t.is(statSync(ws).ino, inode, `workspace directory kept at restart ${i}`);
  }
  await a.stop();
  await d.restart('SIGKILL');
  const ls = JSON.parse((await d.cli(['workspace', 'ls', '--json'])).stdout) as { id: string }[];
  t.deepEqual(ls.map((w) => w.id), ['sw'], 'restored');
  t.true(lstatSync(socket).isSocket());
  t.is((await c.health(socket)).status, 'SERVING');
});

rootTestSerial('container root RENAME_EXCHANGEing a directory with a symlink to a host directory during removal deletes no host file', async (t) => {
  const d = await startDaemon(t);
  const c = await startContainer(t);
  const canary = mkdtempSync(join(tmpdir(), 'iwsd-canary-dir-'));
  t.teardown(() => rmSync(canary, { recursive: true, force: true }));
  for (let i = 0; i < 500; i++) writeFileSync(join(canary, `c${i}`), 'host file');
  await d.add('sw', c.initHostPid);
  const ws = join(d.stateDir, 'workspaces', 'sw');
  const a = await asContainerRoot(t, c, DIR_SWAPPER, [ws, canary]);
  t.log(`attacker: ${a.first}`);
  t.is((await d.cli(['workspace', 'rm', '--id', 'sw'])).code, 0);
  await a.stop();
  t.is(readdirSync(canary).length, 500, 'host canary directory intact');
  t.false(existsSync(ws), 'workspace directory removed');
});

rootTestSerial('fd-based removal (native.removeTree) under a RENAME_EXCHANGE loop in a directory without the immutable flag deletes no host file', async (t) => {
  const c = await startContainer(t);
  const base = mkdtempSync(join(tmpdir(), 'iwsd-rmtree-'));
  t.teardown(() => rmSync(base, { recursive: true, force: true }));
  const canary = join(base, 'canary');
  mkdirSync(canary);
  for (let i = 0; i < 500; i++) writeFileSync(join(canary, `c${i}`), 'host file');
  const ws = join(base, 'ws');
  mkdirSync(ws);
  const a = await asContainerRoot(t, c, DIR_SWAPPER, [ws, canary]);
  t.is(a.first, 'planted');
  const r = await native.removeTree(base, 'ws');
  await a.stop();
  t.log(`removed: ${r.removed}, entries: ${r.entries}, problems: ${r.problems.join('; ')}`);
  t.is(readdirSync(canary).length, 500, 'host canary directory intact');
  // What the swapper left half-way (it keeps exchanging) goes on a second run.
  t.true((await native.removeTree(base, 'ws')).removed);
  t.false(existsSync(ws));
});

rootTestSerial('a regular file planted at daemon.sock does not make a restart delete the running workspace: it is restored, its directory kept', async (t) => {
  const d = await startDaemon(t);
  const c = await startContainer(t);
  const socket = await d.add('pl', c.initHostPid);
  const ws = join(d.stateDir, 'workspaces', 'pl');
  const inode = statSync(ws).ino;
  // Container root cannot plant it (the directory is immutable) ...
  const a = await asContainerRoot(t, c, `${CAPS_LINE}\ntry:\n    os.unlink(sys.argv[1]); open(sys.argv[1], 'w').write('x'); print('planted', flush=True)\nexcept OSError as e:\n    print('refused', e.errno, flush=True)\n`, [socket]);
  t.is(a.first, 'refused 1');
  // ... so plant it as a filesystem without the flag would let it.
  spawnSync('chattr', ['-i', ws]);
  unlinkSync(socket);
  writeFileSync(socket, 'not a socket');
  await d.restart('SIGKILL');
  const ls = JSON.parse((await d.cli(['workspace', 'ls', '--json'])).stdout) as { id: string }[];
  t.deepEqual(ls.map((w) => w.id), ['pl'], 'restored');
  t.is(statSync(ws).ino, inode, 'the same directory (nothing deleted)');
  t.true(lstatSync(join(ws, 'mark')).isDirectory());
  t.true(lstatSync(socket).isSocket(), 'the planted file was replaced');
  t.is((await c.health(socket)).status, 'SERVING');
});

rootTestSerial('container root cannot put bytes into its workspace directory (EPERM); another workspace is unaffected', async (t) => {
  const d = await startDaemon(t);
  const c = await startContainer(t);
  const other = await startContainer(t);
  await d.add('fill', c.initHostPid);
  const ws = join(d.stateDir, 'workspaces', 'fill');
  const a = await asContainerRoot(t, c, FILLER, [ws]);
  t.is(a.first, 'create:EPERM mkdir:EPERM mark:EPERM mknod:EPERM rename:EPERM unlink:EPERM');
  t.deepEqual(names(ws), ['daemon.sock', 'mark']);
  t.deepEqual(names(join(ws, 'mark')), []);
  const s2 = await d.add('other', other.initHostPid);
  t.is((await other.health(s2)).status, 'SERVING');
});

rootTestSerial('through a read-only /.workspace bind: writes get EROFS, the mark exists beforehand, and connecting to the socket works', async (t) => {
  const d = await startDaemon(t);
  const fs = makeRootfs();
  t.teardown(fs.cleanup);
  const ws = join(d.stateDir, 'workspaces', 'ro');
  mkdirSync(ws, { recursive: true });
  const c = await TestContainer.startFor(t, { rootfs: fs.rootfs, binds: [{ source: ws, target: '/.workspace', readOnly: true }] });
  await d.add('ro', c.initHostPid);
  t.true(lstatSync(join(ws, 'mark')).isDirectory(), 'mark/ made by the daemon');
  const w = shInside(c.initHostPid, 'echo x > /.workspace/fill; mkdir /.workspace/mark/x; ls /.workspace');
  t.regex(w.stderr, /Read-only file system/);
  t.deepEqual(w.stdout.trim().split(/\s+/).sort(), ['daemon.sock', 'mark']);
  const agent = await TestContainer.attach(c.initHostPid);
  t.teardown(() => agent.stop());
  // The container's view of the socket: through its read-only bind.
  t.is((await agent.health(`/proc/${c.initHostPid}/root/.workspace/daemon.sock`)).status, 'SERVING');
});

test('the runc snippet binds /.workspace read-only', async (t) => {
  const { readFileSync } = await import('node:fs');
  const cfg = JSON.parse(readFileSync(new URL('../contrib/runc-config-snippet.json', import.meta.url), 'utf8')) as { mounts: { destination: string; options: string[] }[] };
  const m = cfg.mounts.find((x) => x.destination === '/.workspace');
  t.truthy(m);
  t.true(m!.options.includes('ro'));
});
