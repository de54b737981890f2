/**
 * The OCI hook with a real runc container (Debian runc, busybox-static
 * rootfs, bundle built here): registered at create, served from inside,
 * refused from outside, removed at stop; a start that fails after
 * createRuntime, an exit without Teardown, the daemon down.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, existsSync, lstatSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test, { type ExecutionContext } from 'ava';

import { actionFor, parseState } from '../src/ociHook.js';
import { IwsError } from '../src/errors.js';
import { TestContainer, makeRootfs, readMap } from './helpers/container.js';
import { IWSD, TestDaemon, removeStateDir } from './helpers/daemon.js';
import { rootTest } from './helpers/root.js';

test('the hook reads the OCI state: id from the annotation, overrides, add or remove by status', (t) => {
  const state = parseState(
    JSON.stringify({
      ociVersion: '1.0.2',
      id: 'abc',
      status: 'creating',
      pid: 42,
      annotations: { 'io.iwsd.workspace-id': 'ws-7', 'io.iwsd.user-ranges': '200000:1000,300000:5', 'io.iwsd.shift-mapping': '0:33333:1' },
    }),
  );
  t.deepEqual(actionFor(state), {
    action: 'add',
    id: 'ws-7',
    pid: 42,
    userRanges: [
      { start: 200000, size: 1000 },
      { start: 300000, size: 5 },
    ],
    shiftMapping: [{ containerId: 0, hostId: 33333, size: 1 }],
  });
  t.deepEqual(actionFor({ ...state, status: 'stopped', annotations: {} }), { action: 'rm', id: 'abc' });
  t.deepEqual(actionFor(state, 'poststop'), { action: 'rm', id: 'ws-7' });
  t.throws(() => parseState('{"id": 1}'), { instanceOf: IwsError });
  t.throws(() => actionFor({ ...state, annotations: { 'io.iwsd.root-range': 'lots' } }), { message: /io.iwsd.root-range/ });
  t.throws(() => actionFor({ ...state, annotations: { 'io.iwsd.root-range': 'lots' } }), { message: /annotation io\.iwsd\.root-range: id range "lots" must be START:SIZE/ });
  t.throws(() => actionFor({ ...state, annotations: { 'io.iwsd.shift-mapping': '0:33333:1,0:x:1' } }), { message: /annotation io\.iwsd\.shift-mapping: id mapping "0:x:1" must be CONTAINER:HOST:SIZE/ });
  t.throws(() => actionFor({ ...state, status: 'paused' }), { message: /paused/ });
  t.is(actionFor({ ...state, annotations: { 'io.iwsd.on-daemon-down': 'start' } }).onDaemonDown, 'start');
  t.throws(() => actionFor({ ...state, annotations: { 'io.iwsd.on-daemon-down': 'maybe' } }), { message: /io.iwsd.on-daemon-down: "maybe" must be one of fail, start/ });
});

function runc(args: string[]): string {
  return execFileSync('runc', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** A runc bundle (busybox sleeping) whose hooks run `iwsd oci-hook` against `stateDir`. */
function bundleFor(t: ExecutionContext, stateDir: string, id: string, opts: { annotations?: Record<string, string>; hookArgs?: readonly string[]; failAfterCreateRuntime?: boolean } = {}) {
  const fs = makeRootfs();
  t.teardown(fs.cleanup);
  const wsDir = join(stateDir, 'workspaces', id);
  mkdirSync(wsDir, { recursive: true, mode: 0o755 });
  const bundle = join(fs.base, 'bundle');
  mkdirSync(bundle);
  execFileSync('runc', ['spec', '--bundle', bundle]);
  const cfg = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'));
  const hook = (event: string) => ({ path: process.execPath, args: [process.execPath, IWSD, 'oci-hook', '--state-dir', stateDir, '--event', event, ...(opts.hookArgs ?? [])] });
  cfg.process.args = ['/bin/busybox', 'sleep', '100000'];
  cfg.process.terminal = false;
  cfg.root = { path: fs.rootfs, readonly: false };
  cfg.annotations = { 'io.iwsd.workspace-id': id, ...opts.annotations };
  cfg.mounts.push({ destination: '/.workspace', type: 'bind', source: wsDir, options: ['rbind', 'rslave', 'ro'] });
  cfg.hooks = { createRuntime: [hook('createRuntime')], poststop: [hook('poststop')] };
  const write = (failing: boolean) => {
    const c = structuredClone(cfg);
    // A later createRuntime hook that fails: the start fails after iwsd registered the container.
    if (failing) c.hooks.createRuntime.push({ path: '/bin/false', args: ['false'] });
    writeFileSync(join(bundle, 'config.json'), JSON.stringify(c));
  };
  write(Boolean(opts.failAfterCreateRuntime));
  const name = `iwsd-test-${process.pid}-${id}`;
  /** runc run -d; its output (runc -d hands its stdio to the container: a file, not a pipe). */
  const run = () => {
    const logPath = join(fs.base, 'runc.log');
    const logFd = openSync(logPath, 'w');
    const r = spawnSync('runc', ['run', '-d', '--bundle', bundle, name], { stdio: ['ignore', logFd, logFd] });
    closeSync(logFd);
    return { status: r.status, output: readFileSync(logPath, 'utf8') };
  };
  t.teardown(() => {
    spawnSync('runc', ['delete', '-f', name]);
  });
  /** Kills the container and deletes it once stopped (poststop hooks run). */
  const stop = async () => {
    spawnSync('runc', ['kill', name, 'KILL']); // fails when it has stopped already
    for (let i = 0; i < 200 && JSON.parse(runc(['state', name])).status !== 'stopped'; i++) await new Promise((r) => setTimeout(r, 20));
    return spawnSync('runc', ['delete', name], { encoding: 'utf8' });
  };
  return { wsDir, bundle, name, run, stop, write, pid: () => JSON.parse(runc(['state', name])).pid as number };
}

const ls = async (daemon: TestDaemon) => JSON.parse((await daemon.cli(['workspace', 'ls', '--json'])).stdout) as { id: string; pid: number }[];

rootTest('runc: the OCI hook registers the container, inside is served, outside refused, stop removes it', async (t) => {
  const daemon = await TestDaemon.startFor(t);
  const id = `oci-${process.pid}`;
  const b = bundleFor(t, daemon.stateDir, id);
  const run = b.run();
  t.is(run.status, 0, run.output);
  const pid = b.pid();

  // Registered by the createRuntime hook.
  t.deepEqual((await ls(daemon)).map((w) => [w.id, w.pid]), [[id, pid]]);
  const socket = join(b.wsDir, 'daemon.sock');
  t.true(lstatSync(`/proc/${pid}/root/.workspace/daemon.sock`).isSocket(), 'socket visible inside at /.workspace');

  // A client inside the container's PID namespace is served.
  const inside = await TestContainer.attach(pid);
  t.teardown(() => inside.stop());
  const child = await inside.spawnUserns();
  const w = await inside.call(socket, 'WriteIDMapping', { pid: child, gid: false, mapping: [{ containerId: 0, hostId: 33333, size: 1 }] });
  t.true(w.ok, JSON.stringify(w));
  t.deepEqual(readMap(inside.hostPidOf(child), 'uid_map'), [[0, 33333, 1]]);

  // The same client from another container is refused at connect time, and told why.
  const other = await TestContainer.startFor(t);
  const refused = await other.call(socket, 'WriteIDMapping', { pid: child, gid: true, mapping: [{ containerId: 0, hostId: 33333, size: 1 }] });
  t.is(refused.code, 'PERMISSION_DENIED');
  t.deepEqual(readMap(inside.hostPidOf(child), 'gid_map'), []);

  // Stop: the exit watcher tears it down, the poststop hook finds it gone (no error, no warning).
  const del = await b.stop();
  t.is(del.status, 0, del.stderr);
  await daemon.waitForLog((l) => l.workspace === id && typeof l.msg === 'string' && l.msg.includes('torn down'));
  t.deepEqual(await ls(daemon), []);
  t.false(existsSync(socket));
  t.deepEqual(
    daemon.logs.filter((l) => typeof l.level === 'number' && l.level >= 40).map((l) => l.msg),
    [],
    'a normal stop logs no warning (no false "admin RemoveWorkspace failed … NOT_FOUND")',
  );
  // The runtime's bind-mount source stays (emptied, not sealed): the same workspace starts again.
  t.true(lstatSync(b.wsDir).isDirectory(), 'workspace directory kept');
  t.deepEqual(readdirSync(b.wsDir), []);
  const again = b.run();
  t.is(again.status, 0, again.output);
  t.deepEqual((await ls(daemon)).map((w) => [w.id, w.pid]), [[id, b.pid()]]);
  t.true(lstatSync(`/proc/${b.pid()}/root/.workspace/daemon.sock`).isSocket());
  t.is((await b.stop()).status, 0);
});

rootTest('runc: a start that fails after createRuntime leaves the bind-mount source, and the next start works', async (t) => {
  const daemon = await TestDaemon.startFor(t);
  const id = `ocifail-${process.pid}`;
  const b = bundleFor(t, daemon.stateDir, id, { failAfterCreateRuntime: true });
  const failed = b.run();
  t.not(failed.status, 0, 'the start fails (a later createRuntime hook exits 1)');
  spawnSync('runc', ['delete', '-f', b.name]);
  // Registered by our hook, then torn down when the container went; the directory stays.
  await daemon.waitForLog((l) => l.workspace === id && typeof l.msg === 'string' && l.msg.includes('torn down'), 10_000);
  t.deepEqual(await ls(daemon), []);
  t.true(lstatSync(b.wsDir).isDirectory(), 'the bind-mount source was not deleted');

  b.write(false);
  const run = b.run();
  t.is(run.status, 0, run.output);
  t.notRegex(run.output, /statfs|no such file or directory/);
  const pid = b.pid();
  t.deepEqual((await ls(daemon)).map((w) => [w.id, w.pid]), [[id, pid]]);
  const inside = await TestContainer.attach(pid);
  t.teardown(() => inside.stop());
  t.deepEqual(await inside.health(join(b.wsDir, 'daemon.sock')), { status: 'SERVING' });
  t.is((await b.stop()).status, 0);
});

rootTest('runc: a container that exits without Teardown: its mark went with its mount namespace, and the log says so', async (t) => {
  const daemon = await TestDaemon.startFor(t);
  const id = `ocimark-${process.pid}`;
  const b = bundleFor(t, daemon.stateDir, id);
  const run = b.run();
  t.is(run.status, 0, run.output);
  const inside = await TestContainer.attach(b.pid());
  t.teardown(() => inside.stop());
  const prep = await inside.call(join(b.wsDir, 'daemon.sock'), 'PrepareForUserNS', {});
  t.true(prep.ok, JSON.stringify(prep));
  t.is((await b.stop()).status, 0);
  const gone = await daemon.waitForLog((l) => l.workspace === id && typeof l.msg === 'string' && l.msg.includes("went with its container's mount namespace"), 10_000).catch(() => t.log(daemon.logs.filter((l) => l.workspace === id).map((l) => l.msg)));
  t.truthy(gone);
  await daemon.waitForLog((l) => l.workspace === id && typeof l.msg === 'string' && l.msg.includes('torn down'), 10_000);
  t.deepEqual(
    daemon.logs.filter((l) => typeof l.msg === 'string' && /not fully removed|PERMISSION_DENIED|RemoveWorkspace failed/.test(l.msg)).map((l) => l.msg),
    [],
  );
  // A FUSE helper, if the mark was one, is stopped.
  const fusePid = (daemon.logs.find((l) => typeof l.fusePid === 'number') as { fusePid?: number } | undefined)?.fusePid;
  if (fusePid) t.false(existsSync(`/proc/${fusePid}`), 'FUSE helper stopped');
});

rootTest('runc: with the daemon down the hook says what to do; fail (default) or start, by flag or annotation', async (t) => {
  const stateDir = mkdtempSync(join(tmpdir(), 'iwsd-oci-down-'));
  t.teardown(() => removeStateDir(stateDir));
  const id = `ocidown-${process.pid}`;
  // Default: the start fails, and runc shows why and what to do.
  const b = bundleFor(t, stateDir, id);
  const refused = b.run();
  t.not(refused.status, 0);
  t.regex(refused.output, /iwsd oci-hook: the iwsd daemon is not running for state dir .*: refusing to start container .* without its workspace socket; start it \(systemctl start iwsd/);
  t.regex(refused.output, /set annotation io\.iwsd\.on-daemon-down=start or pass --on-daemon-down start/);
  spawnSync('runc', ['delete', '-f', b.name]);

  // The hook's flag lets it start; so does the annotation (which wins over the flag).
  for (const [tag, opts] of [
    ['flag', { hookArgs: ['--on-daemon-down', 'start'] }],
    ['annotation', { hookArgs: ['--on-daemon-down', 'fail'], annotations: { 'io.iwsd.on-daemon-down': 'start' } }],
  ] as const) {
    const s = bundleFor(t, stateDir, `${id}-${tag}`, opts);
    const r = s.run();
    t.is(r.status, 0, `${tag}: ${r.output}`);
    t.is(JSON.parse(runc(['state', s.name])).status, 'running', tag);
    // And its poststop, with the daemon still down, is no error either.
    const del = await s.stop();
    t.is(del.status, 0, `${tag}: ${del.stderr}`);
  }
  // The hook itself: exit 1 with the message, or 0 with a warning.
  const state = JSON.stringify({ ociVersion: '1.0.2', id: 'c1', status: 'creating', pid: process.pid, annotations: { 'io.iwsd.workspace-id': 'ws-down' } });
  const hook = (args: string[]) => spawnSync(process.execPath, [IWSD, 'oci-hook', '--state-dir', stateDir, ...args], { input: state, encoding: 'utf8' });
  const fail = hook([]);
  t.is(fail.status, 1);
  t.regex(fail.stderr, /no admin socket at .*admin\.sock/);
  const start = hook(['--on-daemon-down', 'start']);
  t.is(start.status, 0, start.stderr);
  t.regex(start.stderr, /container c1 starts WITHOUT its workspace socket \(--on-daemon-down start\)/);
  const bad = hook(['--on-daemon-down', 'sometimes']);
  t.not(bad.status, 0);
  t.regex(bad.stderr, /Allowed choices are fail, start/);
});
