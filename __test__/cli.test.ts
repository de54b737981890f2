/** The iwsd command: help, argument errors, daemon lifecycle and the admin socket. */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';

import { createClient } from '../src/api/client.js';
import { IwsError } from '../src/errors.js';
import { daemonNodeFlags, missingNodeFlags } from '../src/nodeFlags.js';
import { TestContainer } from './helpers/container.js';
import { DAEMON_NODE_FLAGS, TestDaemon, runCli, IWSD } from './helpers/daemon.js';
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
  const d2 = await TestDaemon.startFor(t, { stateDir });
  const ls = await d2.cli(['workspace', 'ls', '--json']);
  t.is(ls.code, 0, ls.stderr);
  t.deepEqual(JSON.parse(ls.stdout), []);
});

rootTest('workspace add / ls / rm through the admin socket', async (t) => {
  const d = await TestDaemon.startFor(t);
  const c = await TestContainer.startFor(t);

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

rootTest('one registration per container: a second id for the same container is refused', async (t) => {
  const d = await TestDaemon.startFor(t);
  const c = await TestContainer.startFor(t);
  await d.add('first', c.initHostPid);
  const second = await d.cli(['workspace', 'add', '--id', 'second', '--pid', String(c.initHostPid), '--user-range', '200000:65536']);
  t.not(second.code, 0);
  t.regex(second.stderr, new RegExp(`the container with init PID ${c.initHostPid} is already registered as workspace first: one registration per container`));
  t.deepEqual((JSON.parse((await d.cli(['workspace', 'ls', '--json'])).stdout) as { id: string }[]).map((w) => w.id), ['first']);
  // Once removed, it can be registered again, under any id.
  t.is((await d.cli(['workspace', 'rm', '--id', 'first'])).code, 0);
  await d.add('second', c.initHostPid);
  t.deepEqual((JSON.parse((await d.cli(['workspace', 'ls', '--json'])).stdout) as { id: string }[]).map((w) => w.id), ['second']);
});

test('bin/iwsd.js is executable', (t) => {
  t.truthy(statSync(IWSD).mode & 0o100);
});

test("the daemon's node flags are bin/iwsd.js's first line; one started without them is found out", (t) => {
  t.deepEqual(daemonNodeFlags(IWSD), ['--max-semi-space-size=4']);
  t.deepEqual(DAEMON_NODE_FLAGS, daemonNodeFlags(IWSD));
  t.deepEqual(missingNodeFlags(['--max-semi-space-size=4'], ['--max-semi-space-size=4'], ''), []);
  t.deepEqual(missingNodeFlags(['--max-semi-space-size=4'], [], '--enable-source-maps --max-semi-space-size=4'), []);
  t.deepEqual(missingNodeFlags(['--max-semi-space-size=4'], ['--max-semi-space-size=16'], ''), ['--max-semi-space-size=4']);
  const dir = mkdtempSync(join(tmpdir(), 'iwsd-flags-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'plain.js'), '#!/usr/bin/env node\n');
  t.throws(() => daemonNodeFlags(join(dir, 'plain.js')), { message: /first line is not/ });
});

rootTest('the daemon started as the command (bin/iwsd.js run itself) has its node flags; a test daemon has the same', async (t) => {
  for (const viaCommand of [true, false]) {
    const d = await TestDaemon.startFor(t, {}, [], { viaCommand });
    const starting = d.logs.find((l) => Array.isArray(l.nodeFlags));
    t.deepEqual(starting?.nodeFlags, ['--max-semi-space-size=4'], `viaCommand ${viaCommand}`);
    t.false(d.logs.some((l) => 'nodeFlagsMissing' in l), `viaCommand ${viaCommand}: no warning`);
    await d.stop();
  }
});

test('a daemon started as `node bin/iwsd.js serve`, without its node flags, says which are missing and how to start it', async (t) => {
  const base = mkdtempSync(join(tmpdir(), 'iwsd-test-'));
  t.teardown(() => rmSync(base, { recursive: true, force: true }));
  const p = spawn(process.execPath, [IWSD, 'serve', '--state-dir', join(base, 'state')], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, NODE_OPTIONS: '' } });
  t.teardown(() => p.kill('SIGKILL'));
  let out = '';
  p.stdout.on('data', (b: Buffer) => (out += b.toString()));
  const end = Date.now() + 15_000;
  while (!out.includes('iwsd serving') && Date.now() < end && p.exitCode === null) await new Promise((r) => setTimeout(r, 20));
  const warn = out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => 'nodeFlagsMissing' in l);
  t.truthy(warn, out);
  t.deepEqual(warn!.nodeFlagsMissing, ['--max-semi-space-size=4']);
  t.regex(String(warn!.msg), /start the daemon as bin\/iwsd\.js/);
  p.kill('SIGTERM');
  await new Promise((r) => p.once('exit', r));
});

rootTest('doctor reports features and strategies; --json for tooling', async (t) => {
  const r = await runCli(['doctor', '--json']);
  t.is(r.code, 0, r.stderr + r.stdout);
  const report = JSON.parse(r.stdout) as { version: string; features: { name: string; available: boolean }[]; strategies: Record<string, string>; problems: string[] };
  t.is(report.version, (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version, 'version from package.json');
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
  t.regex(human.stdout, /^iwsd \d+\.\d+\.\d+/);
});

rootTest('call: an operator client for every RPC, served inside the workspace, refused outside; status name and exit code per class', async (t) => {
  const d = await TestDaemon.startFor(t);
  const c = await TestContainer.startFor(t);
  const socket = await d.add('calls', c.initHostPid);
  const pid = await c.spawnUserns();
  const inside = (args: string[]) => {
    const r = spawnSync('nsenter', ['--target', String(c.initHostPid), '--pid', '--', process.execPath, IWSD, 'call', ...args, '--socket', socket], { encoding: 'utf8' });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const ok = inside(['writeidmapping', '--pid', String(pid), '--map', '0:33333:1']);
  t.is(ok.code, 0, ok.stderr);
  t.is(JSON.parse(ok.stdout).errorCode, 0);

  // One exit code per class, the status name on stderr.
  const invalid = inside(['WriteIDMapping', '--pid', String(pid), '--gid', '--map', '0:0:1']);
  t.is(invalid.code, 3, invalid.stderr);
  t.regex(invalid.stderr, /^iwsd: INVALID_ARGUMENT: /);
  const missing = inside(['WriteIDMapping', '--pid', '99999', '--map', '0:33333:1']);
  t.is(missing.code, 5, missing.stderr);
  t.regex(missing.stderr, /^iwsd: NOT_FOUND: /);
  const umount = inside(['UmountProc', '--pid', String(pid), '--target', '/proc']);
  t.is(umount.code, 4, umount.stderr);
  t.regex(umount.stderr, /^iwsd: PERMISSION_DENIED: /);

  // From the host: the peer check refuses the connection, and the client says so.
  const outside = await runCli(['call', 'Teardown', '--socket', socket]);
  // The refusal is answered (PERMISSION_DENIED saying the peer check failed):
  // exit 4, never ECONNRESET.
  t.is(outside.code, 4, outside.stderr);
  t.regex(outside.stderr, /^iwsd: PERMISSION_DENIED: /);
  t.regex(outside.stderr, /peer check/, 'the refused client is told why');
  t.notRegex(outside.stderr, /ECONNRESET|Resolution note/);
  const client = createClient(socket, { timeoutMs: 5000 });
  const e = await t.throwsAsync(client.teardown(), { instanceOf: IwsError });
  client.close();
  t.is(e?.code, 'PERMISSION_DENIED');
  // The admin socket does not serve InWorkspaceService.
  const unimpl = await runCli(['call', 'Teardown', '--socket', join(d.stateDir, 'admin.sock')]);
  t.is(unimpl.code, 9, unimpl.stderr);
  t.regex(unimpl.stderr, /^iwsd: UNIMPLEMENTED: /);
  // Nothing there, or a socket file with nobody listening.
  const none = await runCli(['call', 'Teardown', '--socket', join(d.stateDir, 'nothing.sock')]);
  t.is(none.code, 8, none.stderr);
  t.regex(none.stderr, /^iwsd: UNAVAILABLE: no socket at /);
  const stale = join(d.stateDir, 'stale.sock');
  execFileSync('python3', ['-c', `import socket; s=socket.socket(socket.AF_UNIX); s.bind(${JSON.stringify(stale)})`]);
  const dead = await runCli(['call', 'Teardown', '--socket', stale]);
  t.is(dead.code, 8, dead.stderr);
  t.regex(dead.stderr, /nothing listens on /);

  // Usage errors: exit 2, nothing sent.
  const bad = await runCli(['call', 'Frobnicate', '--socket', socket]);
  t.is(bad.code, 2);
  t.regex(bad.stderr, /unknown RPC "Frobnicate"; use one of WriteIDMapping/);
  for (const [args, why] of [
    [['Teardown', '--timeout', 'abc'], /"abc" is not a timeout in milliseconds/],
    [['Teardown', '--timeout', '0'], /"0" is not a timeout/],
    [['WriteIDMapping', '--map', '0:33333:1'], /WriteIDMapping needs --pid/],
    [['WriteIDMapping', '--pid', '5'], /WriteIDMapping needs --map/],
    [['MountProc', '--pid', '5'], /MountProc needs --target/],
    [['MountProc', '--pid', '5', '--target', 'proc'], /"proc" is not an absolute path/],
    [['Teardown', '--pid', '5'], /--pid does not apply to Teardown/],
    [['MountSysfs', '--pid', '5', '--target', '/sys', '--gid'], /--gid does not apply to MountSysfs/],
  ] as const) {
    const r = await runCli(['call', ...args, '--socket', socket]);
    t.is(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    t.regex(r.stderr, why);
  }
  const help = await runCli(['call', '--help']);
  t.is(help.code, 0);
  t.regex(help.stdout, /^ +10 +refused +the daemon refused the connection/m);
  t.regex(help.stdout, /^ +3 +INVALID_ARGUMENT/m);
});
