/** Configuration: defaults, layering, validation messages, workspace ids. Pure. */
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';

import { checkWorkspaceId, loadConfig, parseConfig } from '../src/config.js';
import { IwsError } from '../src/errors.js';

test('embedded defaults match the documented policy', (t) => {
  const c = parseConfig({});
  t.is(c.stateDir, '/run/iwsd');
  t.is(c.pidStrategy, 'auto');
  t.deepEqual(c.idPolicy, { rootRange: { start: 33333, size: 1 }, userRanges: [{ start: 100000, size: 70000 }], allowHostRoot: false, allowSetgroups: false });
  t.deepEqual(c.rateLimits.writeIdMapping, { points: 4, durationSeconds: 10 });
  t.deepEqual(c.archive, { keep: 1000, maxAgeDays: 30 });
  t.throws(() => parseConfig({ archive: { keep: -1 } }), { message: /archive\.keep/ });
  t.deepEqual(c.authz, { lifecycle: 'root-or-init-uid' });
});

test('authz can only be made stricter: unknown rules are refused', (t) => {
  t.is(parseConfig({ authz: { lifecycle: 'root' } }).authz.lifecycle, 'root');
  t.throws(() => parseConfig({ authz: { lifecycle: 'anyone' } }), { message: /authz\.lifecycle/ });
  t.throws(() => parseConfig({ authz: { writeIdMapping: 'anyone' } }), { message: /authz/ });
});

test('precedence: defaults < file < environment < flags', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'iwsd-cfg-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'c.json');
  writeFileSync(file, JSON.stringify({ stateDir: '/from/file', logLevel: 'debug', pidStrategy: 'scan', idPolicy: { userRanges: ['200000:1000'] } }));
  const fileOnly = loadConfig({ file });
  t.is(fileOnly.stateDir, '/from/file');
  t.deepEqual(fileOnly.idPolicy.userRanges, [{ start: 200000, size: 1000 }]);
  t.deepEqual(fileOnly.idPolicy.rootRange, { start: 33333, size: 1 }, 'nested defaults survive a partial file');
  const withEnv = loadConfig({ file, env: { IWSD_STATE_DIR: '/from/env', IWSD_PID_STRATEGY: 'ioctl' } });
  t.is(withEnv.stateDir, '/from/env');
  t.is(withEnv.pidStrategy, 'ioctl');
  t.is(withEnv.logLevel, 'debug');
  const withFlags = loadConfig({ file, env: { IWSD_STATE_DIR: '/from/env' }, flags: { stateDir: '/from/flag', logLevel: undefined } });
  t.is(withFlags.stateDir, '/from/flag');
  t.is(withFlags.logLevel, 'debug', 'an unset flag does not override');
});

test('invalid configuration names the field and what is expected', (t) => {
  const e1 = t.throws(() => parseConfig({ idPolicy: { userRanges: ['100000-5'] } }), { instanceOf: IwsError });
  t.is(e1?.code, 'INVALID_ARGUMENT');
  t.regex(e1?.message ?? '', /idPolicy\.userRanges\.0: id range "100000-5" must be START:SIZE, e\.g\. 100000:70000/);
  const e2 = t.throws(() => parseConfig({ pidStrategy: 'fast' }));
  t.regex(e2?.message ?? '', /pidStrategy/);
  const e3 = t.throws(() => parseConfig({ stateDirr: '/x' }));
  t.regex(e3?.message ?? '', /stateDirr/, 'unknown keys are typos, not ignored');
  const e4 = t.throws(() => parseConfig({ idPolicy: { rootRange: '99999999999:1' } }));
  t.regex(e4?.message ?? '', /rootRange/);
});

test('a config file that is missing or not JSON is a clear error', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'iwsd-cfg-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  t.regex(t.throws(() => loadConfig({ file: join(dir, 'nope.json') }))?.message ?? '', /cannot read config file/);
  const bad = join(dir, 'bad.json');
  writeFileSync(bad, '{ stateDir: ');
  t.regex(t.throws(() => loadConfig({ file: bad }))?.message ?? '', /not valid JSON/);
});

test('workspace ids are safe directory names', (t) => {
  for (const ok of ['ws1', 'a.b_c-d', 'X'.repeat(64)]) t.is(checkWorkspaceId(ok), ok);
  for (const bad of ['', '.', '..', '../x', 'a/b', '-x', 'a b', 'é', 'X'.repeat(65), 'a\0b']) {
    const e = t.throws(() => checkWorkspaceId(bad), { instanceOf: IwsError }, JSON.stringify(bad));
    t.is(e?.code, 'INVALID_ARGUMENT');
  }
});

test('mask entries and id ranges follow the core rules (one source): the 256-byte cap, u32 bounds, no sign or spaces', (t) => {
  t.deepEqual(parseConfig({ proc: { masked: ['a'.repeat(256)] } }).proc.masked, ['a'.repeat(256)]);
  const long = t.throws(() => parseConfig({ proc: { masked: ['a'.repeat(257)] } }), { instanceOf: IwsError });
  t.regex(long?.message ?? '', /proc\.masked\.0: mask entry "a+"\.\.\. is 257 bytes long; give at most 256/);
  t.regex(t.throws(() => parseConfig({ sysfs: { masked: ['../x'] } }))?.message ?? '', /sysfs\.masked\.0: mask entry "\.\.\/x"/);
  t.regex(t.throws(() => parseConfig({ idPolicy: { rootRange: '4294967296:1' } }))?.message ?? '', /idPolicy\.rootRange: id range "4294967296:1": every number must fit in 32 bits/);
  for (const bad of ['+1:5', ' 1:5', '1:5:6', '1:']) {
    t.regex(t.throws(() => parseConfig({ idPolicy: { rootRange: bad } }))?.message ?? '', /must be START:SIZE/, bad);
  }
  // network.workspaceCidr: the core's parser (the one SetupPairVeths uses), not a look-alike regex.
  for (const bad of ['10.0.5.0/33', '10.0.5.1/30', '300.0.5.0/30', '10.0.5.0']) {
    t.regex(t.throws(() => parseConfig({ network: { workspaceCidr: bad } }))?.message ?? '', /network\.workspaceCidr: workspace network ".*give an IPv4 network such as 10\.0\.5\.0\/30/, bad);
  }
  t.is(parseConfig({ network: { workspaceCidr: '192.168.7.0/29' } }).network.workspaceCidr, '192.168.7.0/29');
  const d = parseConfig({});
  t.is(d.network.workspaceCidr, '10.0.5.0/30');
  t.deepEqual(d.idPolicy, { rootRange: { start: 33333, size: 1 }, userRanges: [{ start: 100000, size: 70000 }], allowHostRoot: false, allowSetgroups: false });
  t.true(d.proc.masked.includes('kcore'));
  t.deepEqual(d.sysfs.masked, ['firmware', 'devices/virtual/powercap']);
});
