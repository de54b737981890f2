/** The iwsd command: help, argument errors, daemon lifecycle and the admin socket. */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';

import { TestContainer } from './helpers/container.js';
import { TestDaemon, runCli, IWSD } from './helpers/daemon.js';
import { rootTest } from './helpers/root.js';

test('--help explains every command', async (t) => {
  const top = await runCli(['--help']);
  t.is(top.code, 0);
  t.regex(top.stdout, /serve/);
  t.regex(top.stdout, /workspace/);
  for (const cmd of [['serve'], ['workspace', 'add'], ['workspace', 'rm'], ['workspace', 'ls'], ['doctor'], ['oci-hook']]) {
    const r = await runCli([...cmd, '--help']);
    t.is(r.code, 0, cmd.join(' '));
    t.regex(r.stdout, /--state-dir/, cmd.join(' '));
  }
  t.regex((await runCli(['workspace', 'add', '--help'])).stdout, /--root-range <start:size>/);
});

test('argument errors say what is wrong', async (t) => {
  const r1 = await runCli(['workspace', 'add', '--id', 'x', '--pid', 'abc']);
  t.not(r1.code, 0);
  t.regex(r1.stderr, /"abc" is not a PID/);
  const r2 = await runCli(['workspace', 'add', '--id', 'x', '--pid', '5', '--user-range', '1-2']);
  t.regex(r2.stderr, /must be START:SIZE/);
  const r3 = await runCli(['workspace', 'ls', '--state-dir', '/nonexistent-iwsd']);
  t.is(r3.code, 1);
  t.regex(r3.stderr, /no admin socket at \/nonexistent-iwsd\/admin\.sock: is `iwsd serve` running/);
});

test('serve refuses an invalid configuration with the field named', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'iwsd-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const r = await runCli(['serve', '--state-dir', join(dir, 's')], { ...process.env, IWSD_PID_STRATEGY: 'sometimes' });
  t.not(r.code, 0);
  t.regex(r.stderr, /pidStrategy/);
});

rootTest('daemon lifecycle: stale sockets replaced, admin socket root-only, SIGTERM stops cleanly', async (t) => {
  const base = mkdtempSync(join(tmpdir(), 'iwsd-cli-'));
  t.teardown(() => rmSync(base, { recursive: true, force: true }));
  const d = await TestDaemon.start();
  const adminSock = join(d.stateDir, 'admin.sock');
  t.is(statSync(adminSock).mode & 0o777, 0o600);
  t.is(statSync(d.stateDir).mode & 0o777, 0o700);
  t.is(await d.stop(), 0, 'SIGTERM exits 0');
  t.false(existsSync(adminSock), 'admin socket removed on shutdown');

  const stateDir = join(base, 'state');
  mkdirSync(stateDir, { recursive: true });
  // A socket file whose server is gone, as a crashed daemon leaves it.
  execFileSync('python3', ['-c', `import socket; s=socket.socket(socket.AF_UNIX); s.bind(${JSON.stringify(join(stateDir, 'admin.sock'))})`]);
  t.true(lstatSync(join(stateDir, 'admin.sock')).isSocket());
  const d2 = await TestDaemon.start({ stateDir });
  t.teardown(() => d2.stop().then(() => undefined));
  const ls = await d2.cli(['workspace', 'ls', '--json']);
  t.is(ls.code, 0, ls.stderr);
  t.deepEqual(JSON.parse(ls.stdout), []);
});

rootTest('workspace add / ls / rm through the admin socket', async (t) => {
  const d = await TestDaemon.start();
  t.teardown(() => d.stop().then(() => undefined));
  const c = await TestContainer.start();
  t.teardown(() => c.stop());

  const add = await d.cli(['workspace', 'add', '--id', 'alpha', '--pid', String(c.initHostPid), '--user-range', '200000:65536', '--json']);
  t.is(add.code, 0, add.stderr);
  const w = JSON.parse(add.stdout) as { id: string; socketPath: string; userRanges: unknown; rootRange: unknown; alive: boolean };
  t.is(w.id, 'alpha');
  t.is(w.socketPath, join(d.stateDir, 'workspaces', 'alpha', 'daemon.sock'));
  t.deepEqual(w.userRanges, [{ start: 200000, size: 65536 }]);
  t.deepEqual(w.rootRange, { start: 33333, size: 1 });
  t.true(w.alive);
  t.true(lstatSync(w.socketPath).isSocket());

  const dup = await d.cli(['workspace', 'add', '--id', 'alpha', '--pid', String(c.initHostPid)]);
  t.is(dup.code, 1);
  t.regex(dup.stderr, /already registered/);

  const badId = await d.cli(['workspace', 'add', '--id', '../etc', '--pid', String(c.initHostPid)]);
  t.is(badId.code, 1);
  t.regex(badId.stderr, /workspace id "\.\.\/etc"/);
  t.false(existsSync(join(d.stateDir, 'etc')));

  const hostProc = await d.cli(['workspace', 'add', '--id', 'host', '--pid', String(process.pid)]);
  t.is(hostProc.code, 1);
  t.regex(hostProc.stderr, /daemon's own PID namespace/);
  t.false(existsSync(join(d.stateDir, 'workspaces', 'host')), 'a failed add leaves nothing behind');

  const missing = await d.cli(['workspace', 'add', '--id', 'gone', '--pid', '2147483000']);
  t.regex(missing.stderr, /no process with host pid 2147483000/);

  const badPolicy = await d.cli(['workspace', 'add', '--id', 'root', '--pid', String(c.initHostPid), '--root-range', '0:1']);
  t.regex(badPolicy.stderr, /host id 0/);

  const ls = await d.cli(['workspace', 'ls']);
  t.regex(ls.stdout, /^ID\s+PID\s+ALIVE/);
  t.regex(ls.stdout, new RegExp(`alpha\\s+${c.initHostPid}\\s+yes\\s+33333:1\\s+200000:65536`));

  t.is((await d.cli(['workspace', 'rm', '--id', 'alpha'])).code, 0);
  t.false(existsSync(w.socketPath));
  t.deepEqual(JSON.parse((await d.cli(['workspace', 'ls', '--json'])).stdout), []);
  const rm2 = await d.cli(['workspace', 'rm', '--id', 'alpha']);
  t.regex(rm2.stderr, /no workspace alpha is registered/);
});

test('bin/iwsd.js is executable', (t) => {
  t.truthy(statSync(IWSD).mode & 0o100);
});

rootTest('doctor reports features and strategies; --json for tooling', async (t) => {
  const r = await runCli(['doctor', '--json']);
  t.is(r.code, 0, r.stderr + r.stdout);
  const report = JSON.parse(r.stdout) as { features: { name: string; available: boolean }[]; strategies: Record<string, string>; problems: string[] };
  t.true(report.features.find((f) => f.name.startsWith('pidfd_open'))!.available);
  t.deepEqual(report.problems, []);
  t.is(report.strategies.pidTranslation, 'ioctl');
  t.is(report.strategies.mountAssembly, 'detached');
  const forced = await runCli(['doctor', '--json'], { ...process.env, IWSD_PID_STRATEGY: 'scan', IWSD_MOUNT_STRATEGY: 'fallback' });
  const f = JSON.parse(forced.stdout) as { strategies: Record<string, string> };
  t.is(f.strategies.pidTranslation, 'scan');
  t.is(f.strategies.mountAssembly, 'fallback');
  const human = await runCli(['doctor']);
  t.regex(human.stdout, /strategies:\n {2}pidTranslation: ioctl/);
});

rootTest('call: an operator client for every RPC, served inside the workspace, refused outside', async (t) => {
  const d = await TestDaemon.start();
  t.teardown(() => d.stop().then(() => undefined));
  const c = await TestContainer.start();
  t.teardown(() => c.stop());
  const socket = await d.add('calls', c.initHostPid);
  const pid = await c.spawnUserns();
  const inside = spawnSync(
    'nsenter',
    ['--target', String(c.initHostPid), '--pid', '--', process.execPath, IWSD, 'call', 'writeidmapping', '--socket', socket, '--pid', String(pid), '--map', '0:33333:1'],
    { encoding: 'utf8' },
  );
  t.is(inside.status, 0, inside.stderr);
  t.is(JSON.parse(inside.stdout).errorCode, 0);
  const outside = await runCli(['call', 'Teardown', '--socket', socket]);
  t.is(outside.code, 1);
  t.regex(outside.stderr, /^iwsd: /);
  t.regex(outside.stderr, /peer check/, 'the refused client is told why');
  const bad = await runCli(['call', 'Frobnicate', '--socket', socket]);
  t.regex(bad.stderr, /unknown RPC "Frobnicate"; use one of WriteIDMapping/);
});
