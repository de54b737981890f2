/**
 * The OCI hook with a real runc container (Debian runc, busybox-static
 * rootfs, bundle built here): registered at create, served from inside,
 * refused from outside, removed at stop.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, existsSync, lstatSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import test from 'ava';

import { actionFor, parseState } from '../src/ociHook.js';
import { IwsError } from '../src/errors.js';
import { TestContainer, makeRootfs, readMap } from './helpers/container.js';
import { IWSD, TestDaemon } from './helpers/daemon.js';
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
  t.throws(() => actionFor({ ...state, status: 'paused' }), { message: /paused/ });
});

function runc(args: string[]): string {
  return execFileSync('runc', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

rootTest('runc: the OCI hook registers the container, inside is served, outside refused, stop removes it', async (t) => {
  const daemon = await TestDaemon.start();
  t.teardown(() => daemon.stop().then(() => undefined));
  const fs = makeRootfs();
  t.teardown(fs.cleanup);
  const id = `oci-${process.pid}`;
  const wsDir = join(daemon.stateDir, 'workspaces', id);
  mkdirSync(wsDir, { recursive: true, mode: 0o755 });
  const bundle = join(fs.base, 'bundle');
  mkdirSync(bundle);
  execFileSync('runc', ['spec', '--bundle', bundle]);
  const cfg = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'));
  const hook = (event: string) => ({ path: process.execPath, args: [process.execPath, IWSD, 'oci-hook', '--state-dir', daemon.stateDir, '--event', event] });
  cfg.process.args = ['/bin/busybox', 'sleep', '100000'];
  cfg.process.terminal = false;
  cfg.root = { path: fs.rootfs, readonly: false };
  cfg.annotations = { 'io.iwsd.workspace-id': id };
  cfg.mounts.push({ destination: '/.workspace', type: 'bind', source: wsDir, options: ['rbind', 'rslave', 'ro'] });
  cfg.hooks = { createRuntime: [hook('createRuntime')], poststop: [hook('poststop')] };
  writeFileSync(join(bundle, 'config.json'), JSON.stringify(cfg));

  const name = `iwsd-test-${process.pid}`;
  // runc -d hands its stdio to the container: give it a file, not a pipe.
  const logPath = join(fs.base, 'runc.log');
  const logFd = openSync(logPath, 'w');
  const run = spawnSync('runc', ['run', '-d', '--bundle', bundle, name], { stdio: ['ignore', logFd, logFd] });
  closeSync(logFd);
  t.teardown(() => {
    spawnSync('runc', ['delete', '-f', name]);
  });
  t.is(run.status, 0, readFileSync(logPath, 'utf8'));
  const pid = JSON.parse(runc(['state', name])).pid as number;

  // Registered by the createRuntime hook.
  const ls = JSON.parse((await daemon.cli(['workspace', 'ls', '--json'])).stdout) as { id: string; pid: number }[];
  t.deepEqual(ls.map((w) => [w.id, w.pid]), [[id, pid]]);
  const socket = join(wsDir, 'daemon.sock');
  t.true(lstatSync(`/proc/${pid}/root/.workspace/daemon.sock`).isSocket(), 'socket visible inside at /.workspace');

  // A client inside the container's PID namespace is served.
  const inside = await TestContainer.attach(pid);
  t.teardown(() => inside.stop());
  const child = await inside.spawnUserns();
  const w = await inside.call(socket, 'WriteIDMapping', { pid: child, gid: false, mapping: [{ containerId: 0, hostId: 33333, size: 1 }] });
  t.true(w.ok, JSON.stringify(w));
  t.deepEqual(readMap(inside.hostPidOf(child), 'uid_map'), [[0, 33333, 1]]);

  // The same client from another container is refused at connect time, and told why.
  const other = await TestContainer.start();
  t.teardown(() => other.stop());
  const refused = await other.call(socket, 'WriteIDMapping', { pid: child, gid: true, mapping: [{ containerId: 0, hostId: 33333, size: 1 }] });
  t.is(refused.code, 'PERMISSION_DENIED');
  t.deepEqual(readMap(inside.hostPidOf(child), 'gid_map'), []);

  // Stop: the poststop hook (and the exit watcher) remove it.
  runc(['kill', name, 'KILL']);
  await daemon.waitForLog((l) => l.workspace === id && typeof l.reason === 'string');
  for (let i = 0; i < 100 && JSON.parse(runc(['state', name])).status !== 'stopped'; i++) await new Promise((r) => setTimeout(r, 20));
  const del = spawnSync('runc', ['delete', name], { encoding: 'utf8' });
  t.is(del.status, 0, del.stderr);
  t.deepEqual(JSON.parse((await daemon.cli(['workspace', 'ls', '--json'])).stdout), []);
  t.false(existsSync(socket));
});
