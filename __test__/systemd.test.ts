/**
 * The shipped systemd unit: valid for systemd-analyze, Type=notify with
 * ExecReload, and the daemon works under the unit's hardening (its capability
 * bounding set and NoNewPrivileges, applied here with setpriv: the machine
 * need not run systemd).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import test from 'ava';

import { TestContainer, makeRootfs } from './helpers/container.js';
import { IWSD, TestDaemon } from './helpers/daemon.js';
import { rootTest } from './helpers/root.js';

const UNIT = fileURLToPath(new URL('../contrib/iwsd.service', import.meta.url));
const unit = readFileSync(UNIT, 'utf8');
const directive = (name: string) => [...unit.matchAll(new RegExp(`^${name}=(.*)$`, 'gm'))].map((m) => m[1]!);
const hasAnalyze = spawnSync('systemd-analyze', ['--version']).status === 0;

test('the unit is Type=notify, reloads with SIGHUP, runs the bin (not npm) and documents a URL that exists', (t) => {
  t.deepEqual(directive('Type'), ['notify']);
  t.deepEqual(directive('ExecReload'), ['/bin/kill -HUP $MAINPID']);
  t.deepEqual(directive('ExecStart'), ['/usr/local/bin/iwsd serve --config /etc/iwsd/config.json']);
  t.deepEqual(directive('Documentation'), ['file:/usr/local/lib/node_modules/iwsd/README.md']);
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { name: string };
  t.is(pkg.name, 'iwsd', 'npm install -g iwsd puts the README where Documentation= points');
  t.deepEqual(directive('NoNewPrivileges'), ['yes']);
});

(hasAnalyze ? test : test.skip)(`systemd-analyze verify accepts the unit${hasAnalyze ? '' : ' (systemd-analyze not installed: apt-get install systemd)'}`, (t) => {
  // verify checks that ExecStart exists: point it at this checkout's bin.
  const dir = mkdtempSync(join(tmpdir(), 'iwsd-unit-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const f = join(dir, 'iwsd.service');
  writeFileSync(f, unit.replace('/usr/local/bin/iwsd', IWSD));
  const r = spawnSync('systemd-analyze', ['verify', f], { encoding: 'utf8' });
  // Without systemd as PID 1, verify may add "sysinit.target not found"; only the unit's own complaints count.
  const own = `${r.stdout}${r.stderr}`.split('\n').filter((l) => l.trim() && !/sysinit\.target not found/.test(l));
  t.deepEqual(own, []);
  t.is(r.status, 0, r.stderr);
  const sec = spawnSync('systemd-analyze', ['security', '--offline=yes', f], { encoding: 'utf8' });
  const level = /Overall exposure level for iwsd\.service: ([\d.]+)/.exec(sec.stdout)?.[1];
  t.log(`systemd-analyze security: ${level}`);
  t.true(Number(level) <= 7.5, `exposure ${level}`);
});

/** setpriv arguments for the unit's CapabilityBoundingSet and NoNewPrivileges. */
function hardening(): string[] {
  const caps = directive('CapabilityBoundingSet')[0]!.split(/\s+/).map((c) => `+${c.replace(/^CAP_/, '').toLowerCase()}`);
  return ['setpriv', `--bounding-set=-all,${caps.join(',')}`, '--inh-caps=-all', '--no-new-privs', '--'];
}

for (const method of ['fuse', 'auto'] as const) {
  rootTest(`under the unit's capability bounding set and NoNewPrivileges (shift ${method}): prepare, map, mount, teardown, exit`, async (t) => {
    const daemon = await TestDaemon.startFor(t, { shift: { method } }, [], { wrap: hardening() });
    // The daemon really runs with the reduced set.
    const status = readFileSync(`/proc/${daemon.logs.find((l) => typeof l.pid === 'number')!.pid as number}/status`, 'utf8');
    t.regex(status, /^NoNewPrivs:\s+1$/m);
    const bnd = BigInt(`0x${/^CapBnd:\s+([0-9a-f]+)$/m.exec(status)![1]}`);
    t.is((bnd >> 21n) & 1n, 1n, 'CAP_SYS_ADMIN kept');
    t.is((bnd >> 16n) & 1n, 0n, 'CAP_SYS_MODULE dropped');
    t.is((bnd >> 17n) & 1n, 0n, 'CAP_SYS_RAWIO dropped');
    const fs = makeRootfs();
    t.teardown(fs.cleanup);
    for (const d of ['work/t0']) mkdirSync(join(fs.rootfs, d), { recursive: true });
    const c = await TestContainer.startFor(t, { rootfs: fs.rootfs });
    const socket = await daemon.add('hardened', c.initHostPid);
    // MountProc first: after PrepareForUserNS the container root is shared and a MountProc onto it refused.
    t.true((await c.call(socket, 'MountProc', { target: '/work/t0', pid: 1 })).ok);
    t.true((await c.call(socket, 'UmountProc', { target: '/work/t0', pid: 1 })).ok);
    const p = await c.call(socket, 'PrepareForUserNS', {});
    t.true(p.ok, JSON.stringify(p));
    const pid = await c.spawnUserns();
    const w = await c.call(socket, 'WriteIDMapping', { pid, gid: false, mapping: [{ containerId: 0, hostId: 33333, size: 1 }] });
    t.true(w.ok, JSON.stringify(w));
    const td = await c.call(socket, 'Teardown', {});
    t.true(td.response?.success === true, JSON.stringify(td));
    await c.stop();
    await daemon.waitForLog((l) => l.workspace === 'hardened' && l.reason === 'container exited');
    t.deepEqual(
      daemon.logs.filter((l) => l.level === 'error' || l.level === 'fatal' || (l.level === 'warn' && l.workspace === 'hardened')),
      [],
    );
  });
}
