/**
 * iwsd as a supervisor runs it: one daemon per state dir, a failed start
 * that exits and leaves nothing bound, SIGHUP reloads, SIGTERM stops, and
 * systemd readiness (sd_notify on $NOTIFY_SOCKET).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

import test, { type ExecutionContext } from 'ava';

import { TestContainer, makeRootfs } from './helpers/container.js';
import { IWSD, TestDaemon } from './helpers/daemon.js';
import { rootTest } from './helpers/root.js';

const msg = (l: Record<string, unknown>) => (typeof l.msg === 'string' ? l.msg : '');

/** The cli's `serve`, to completion, with a deadline (a start that hangs fails). */
function serveOnce(args: string[], ms = 20_000) {
  return new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; ms: number }>((resolve) => {
    const start = Date.now();
    const p = spawn(process.execPath, [IWSD, 'serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    p.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), ms);
    p.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - start });
    });
  });
}

rootTest('a second iwsd on a live state dir exits non-zero naming the running one, and leaves it serving', async (t) => {
  const daemon = await TestDaemon.startFor(t);
  const second = await serveOnce(['--state-dir', daemon.stateDir]);
  t.is(second.code, 1, second.stderr);
  t.regex(second.stderr, new RegExp(`another iwsd \\(pid ${daemon.proc.pid}\\) is serving state dir ${daemon.stateDir}`));
  t.is(readFileSync(join(daemon.stateDir, 'iwsd.lock'), 'utf8'), `${daemon.proc.pid}\n`);
  // The first one still owns its admin socket and answers on it.
  t.true(existsSync(join(daemon.stateDir, 'admin.sock')));
  const ls = await daemon.cli(['workspace', 'ls', '--json']);
  t.is(ls.code, 0, ls.stderr);
  t.deepEqual(JSON.parse(ls.stdout), []);
  t.false(daemon.logs.some((l) => l.level === 'error' || l.level === 'fatal'));
});

rootTest('a start that fails (metrics port taken) exits 1 with the reason, leaving nothing bound and the lock free', async (t) => {
  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => new Promise<void>((r) => blocker.close(() => r())));
  const port = (blocker.address() as AddressInfo).port;
  const base = await mkdtemp(join(tmpdir(), 'iwsd-test-'));
  t.teardown(() => rm(base, { recursive: true, force: true }));
  const stateDir = join(base, 'state');
  const cfg = join(base, 'config.json');
  writeFileSync(cfg, JSON.stringify({ metrics: { enabled: true, port } }));

  const r = await serveOnce(['--state-dir', stateDir, '--config', cfg]);
  t.is(r.signal, null, 'exited on its own, not killed by the deadline');
  t.is(r.code, 1);
  t.true(r.ms < 15_000, `exited after ${r.ms} ms`);
  t.regex(r.stderr, /EADDRINUSE/);
  t.regex(r.stdout, /"level":"fatal".*iwsd failed to start/);
  t.false(existsSync(join(stateDir, 'admin.sock')), 'no admin socket left');
  // The lock is free again: a daemon on the same state dir starts.
  writeFileSync(cfg, '{}');
  const ok = await serveOnce(['--state-dir', stateDir, '--config', cfg], 3000);
  t.is(ok.signal, 'SIGKILL', 'still running after 3 s');
  t.notRegex(ok.stderr, /another iwsd/);
});

test('a start that fails on an invalid state dir exits 1 with the reason', async (t) => {
  const base = await mkdtemp(join(tmpdir(), 'iwsd-test-'));
  t.teardown(() => rm(base, { recursive: true, force: true }));
  writeFileSync(join(base, 'file'), '');
  const r = await serveOnce(['--state-dir', join(base, 'file', 'state')]);
  t.is(r.code, 1);
  t.regex(r.stderr, /ENOTDIR|not a directory/);
});

/** A daemon (with `config`) serving workspace `id` in a container with /work/t0 and /work/t1, and its config file. */
async function reloadable(t: ExecutionContext, config: Record<string, unknown>, id: string) {
  const daemon = await TestDaemon.startFor(t, config);
  const cfg = join(daemon.base, 'config.json');
  const fs = makeRootfs();
  t.teardown(fs.cleanup);
  for (const d of ['work/t0', 'work/t1']) mkdirSync(join(fs.rootfs, d), { recursive: true });
  const c = await TestContainer.startFor(t, { rootfs: fs.rootfs });
  const socket = await daemon.add(id, c.initHostPid);
  return { daemon, cfg, c, socket };
}

rootTest('SIGHUP: a reload reaches the guard also when its lanes are fitted to the libuv pool (a fitted copy of the configuration, made again by the reload)', async (t) => {
  // 16 + 8 lanes do not fit the daemon's pool of 8 threads: the guard reads a fitted copy, not the configuration itself.
  const work = { shortLane: 16, longLane: 8 };
  const { daemon, cfg, c, socket } = await reloadable(t, { work }, 'fit');
  writeFileSync(cfg, JSON.stringify({ work, limits: { mountsPerWorkspace: 1 }, rateLimits: { umountProc: { points: 1 } } }));
  daemon.proc.kill('SIGHUP');
  const rec = await daemon.waitForLog((l) => msg(l).startsWith('configuration reloaded'));
  t.true((rec.applied as string[]).includes('limits.mountsPerWorkspace'), JSON.stringify(rec));
  const m = await c.call(socket, 'MountProc', { target: '/work/t0', pid: 1 });
  t.true(m.ok, JSON.stringify(m));
  t.is((await c.call(socket, 'MountProc', { target: '/work/t1', pid: 1 })).code, 'RESOURCE_EXHAUSTED', 'the reloaded mount limit holds');
  t.true((await c.call(socket, 'UmountProc', { target: '/work/t0', pid: 1 })).ok);
  t.is((await c.call(socket, 'UmountProc', { target: '/work/t0', pid: 1 })).code, 'RESOURCE_EXHAUSTED', 'the reloaded rate limit holds');
});

rootTest('SIGHUP reloads logLevel, rateLimits and limits at once, reports the rest as needing a restart, and keeps serving', async (t) => {
  const { daemon, cfg, c, socket } = await reloadable(t, { logLevel: 'info' }, 'hup');
  await daemon.cli(['workspace', 'ls']);
  t.false(daemon.logs.some((l) => l.level === 'debug'), 'no debug lines at info');

  writeFileSync(cfg, JSON.stringify({ logLevel: 'debug', rateLimits: { writeIdMapping: { points: 1 } }, metrics: { port: 9999 }, pidStrategy: 'scan' }));
  daemon.proc.kill('SIGHUP');
  const rec = await daemon.waitForLog((l) => msg(l).startsWith('configuration reloaded'));
  t.deepEqual(rec.applied, ['logLevel', 'rateLimits.writeIdMapping.points']);
  t.deepEqual(rec.needsRestart, ['pidStrategy', 'metrics.port']);
  t.true(daemon.logs.some((l) => l.level === 'warn' && msg(l).includes('needs a restart') && msg(l).includes('metrics.port')));

  // Debug lines now, from the root logger and the workspace's child logger.
  t.is((await daemon.cli(['workspace', 'ls'])).code, 0);
  await daemon.waitForLog((l) => l.level === 'debug' && l.admin === 'ListWorkspaces');
  // The new rate limit holds for the running workspace: 1 call per 10 s.
  const ring = [{ containerId: 0, hostId: 33333, size: 1 }];
  const pid = await c.spawnUserns();
  t.true((await c.call(socket, 'WriteIDMapping', { pid, gid: false, mapping: ring })).ok);
  t.is((await c.call(socket, 'WriteIDMapping', { pid, gid: true, mapping: ring })).code, 'RESOURCE_EXHAUSTED');

  // An invalid configuration is refused; the daemon runs on with the old one.
  writeFileSync(cfg, JSON.stringify({ logLevel: 'loud' }));
  daemon.proc.kill('SIGHUP');
  const bad = await daemon.waitForLog((l) => msg(l).startsWith('configuration reload failed'));
  t.regex(msg(bad), /logLevel/);
  t.is(bad.level, 'error');
  t.is(daemon.proc.exitCode, null);
  t.true(existsSync(join(daemon.stateDir, 'admin.sock')));
  t.is((await daemon.cli(['workspace', 'ls'])).code, 0);

  // Limits: mountsPerWorkspace 1 holds for the running workspace.
  writeFileSync(cfg, JSON.stringify({ limits: { mountsPerWorkspace: 1 } }));
  const seen = daemon.logs.length;
  daemon.proc.kill('SIGHUP');
  await daemon.waitForLog((l) => daemon.logs.indexOf(l) >= seen && msg(l).startsWith('configuration reloaded'));
  const last = daemon.logs.filter((l) => msg(l).startsWith('configuration reloaded')).at(-1)!;
  t.true((last.applied as string[]).includes('limits.mountsPerWorkspace'));
  const m = await c.call(socket, 'MountProc', { target: '/work/t0', pid: 1 });
  t.true(m.ok, JSON.stringify(m));
  t.is((await c.call(socket, 'MountProc', { target: '/work/t1', pid: 1 })).code, 'RESOURCE_EXHAUSTED');
  t.true((await c.call(socket, 'UmountProc', { target: '/work/t0', pid: 1 })).ok);
});

rootTest('SIGTERM to the iwsd bin (as the systemd unit runs it) stops it cleanly: exit 0, admin socket removed', async (t) => {
  const daemon = await TestDaemon.start();
  const stateDir = daemon.stateDir;
  daemon.proc.kill('SIGTERM');
  const code = await new Promise<number | null>((r) => daemon.proc.once('exit', (c) => r(c)));
  t.is(code, 0);
  t.true(daemon.logs.some((l) => msg(l) === 'iwsd stopped'));
  t.false(existsSync(join(stateDir, 'admin.sock')));
  t.teardown(() => daemon.stop().then(() => undefined));
  // The unit runs the bin itself, never npm (which does not forward SIGTERM).
  const unit = readFileSync(new URL('../contrib/iwsd.service', import.meta.url), 'utf8');
  t.regex(unit, /^ExecStart=\/usr\/local\/bin\/iwsd serve /m);
});

/** A unix datagram socket standing in for systemd's $NOTIFY_SOCKET (python3: Node has no unix dgram). */
async function notifySocket(dir: string) {
  const path = join(dir, 'notify.sock');
  const script = [
    'import socket, sys, json',
    's = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)',
    's.bind(sys.argv[1])',
    'print(json.dumps("bound"), flush=True)',
    'while True: print(json.dumps(s.recv(4096).decode()), flush=True)',
  ].join('\n');
  const p = spawn('python3', ['-c', script, path], { stdio: ['ignore', 'pipe', 'inherit'] });
  const messages: string[] = [];
  const rl = createInterface({ input: p.stdout });
  await new Promise<void>((resolve, reject) => {
    p.once('error', reject);
    rl.on('line', (line) => {
      const m = JSON.parse(line) as string;
      if (m === 'bound') resolve();
      else messages.push(m);
    });
  });
  return {
    path,
    messages,
    async next(pred: (m: string) => boolean, ms = 10_000): Promise<string> {
      const end = Date.now() + ms;
      for (;;) {
        const hit = messages.find(pred);
        if (hit) return hit;
        if (Date.now() > end) throw new Error(`no sd_notify message matched; got ${JSON.stringify(messages)}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    stop: () => p.kill('SIGKILL'),
  };
}

rootTest('readiness: READY=1 on $NOTIFY_SOCKET once the admin socket serves; RELOADING/READY on SIGHUP; STOPPING on SIGTERM', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'iwsd-notify-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const n = await notifySocket(dir);
  t.teardown(n.stop);
  const daemon = await TestDaemon.startFor(t, {}, [], { env: { ...process.env, NOTIFY_SOCKET: n.path } });
  const ready = await n.next((m) => m.startsWith('READY=1'));
  t.true(ready.includes(`MAINPID=${daemon.proc.pid}`), ready);
  t.is(n.messages.indexOf(ready), 0, 'READY=1 is the first message');
  // By then every socket serves: the admin socket answers.
  t.is((await daemon.cli(['workspace', 'ls'])).code, 0);

  daemon.proc.kill('SIGHUP');
  await n.next((m) => m.startsWith('RELOADING=1') && /MONOTONIC_USEC=\d+/.test(m));
  await n.next((m) => m === 'READY=1');
  daemon.proc.kill('SIGTERM');
  await n.next((m) => m === 'STOPPING=1');
});

test('a malformed NOTIFY_SOCKET is logged, never fatal', async (t) => {
  const base = await mkdtemp(join(tmpdir(), 'iwsd-test-'));
  t.teardown(() => rm(base, { recursive: true, force: true }));
  const p = spawn(process.execPath, [IWSD, 'serve', '--state-dir', join(base, 'state')], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, NOTIFY_SOCKET: 'not-a-path' },
  });
  let out = '';
  p.stdout.on('data', (b: Buffer) => (out += b.toString()));
  const end = Date.now() + 15_000;
  while (!out.includes('sd_notify failed') && Date.now() < end && p.exitCode === null) await new Promise((r) => setTimeout(r, 20));
  t.regex(out, /"level":"warn".*sd_notify failed/);
  t.is(p.exitCode, null, 'still serving');
  p.kill('SIGTERM');
  await new Promise((r) => p.once('exit', r));
});
