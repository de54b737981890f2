/**
 * The package as users get it: `npm pack`, installed into a fresh project,
 * each entry point imported from TypeScript (type-checked with tsc), ESM and
 * CommonJS JavaScript, and real operations run through them as root.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import test from 'ava';

import { TestContainer, makeRootfs, readMap } from './helpers/container.js';
import { removeStateDir } from './helpers/daemon.js';
import { rootTest } from './helpers/root.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const pkg = JSON.parse(execFileSync('node', ['-p', 'JSON.stringify(require("./package.json"))'], { cwd: ROOT, encoding: 'utf8' })) as {
  devDependencies: Record<string, string>;
};

const TS = `
import { startDaemon, IwsError, ERROR_CODES as codes, type DaemonHandle, type ConfigInput } from 'iwsd';
import { Container, mountProc, umountProc, probeKernel, type KernelFeatures } from 'iwsd/native';
import { createClient, type InWorkspaceClient, type WriteIDMappingResponse } from 'iwsd/client';

export async function check(hostPid: number, socket: string): Promise<void> {
  const cfg: ConfigInput = { stateDir: '/run/iwsd-typecheck', logLevel: 'silent' };
  const d: DaemonHandle = await startDaemon(cfg);
  const c = await Container.open(hostPid);
  const { mountId }: { mountId: string } = await mountProc(c, { pid: 1, target: '/proc' });
  await umountProc(c, { pid: 1, target: '/proc', owned: [mountId] });
  const k: KernelFeatures = await probeKernel();
  const client: InWorkspaceClient = createClient(socket);
  const r: WriteIDMappingResponse = await client.writeIdMapping({ pid: 1, gid: false, mapping: [] }, { deadline: 1000 });
  const n: number = r.errorCode;
  const e = new IwsError('NOT_FOUND', 'x');
  void [k, n, e.code satisfies (typeof codes)[number]];
  await d[Symbol.asyncDispose]();
}
`;

// ESM: the embedded daemon and the native library, on the host.
const ESM = `
import { startDaemon } from 'iwsd';
import { Container, mountProc, umountProc } from 'iwsd/native';
const [hostPid, stateDir] = process.argv.slice(2);
const c = await Container.open(Number(hostPid));
const { mountId } = await mountProc(c, { pid: 1, target: '/proc' });
await umountProc(c, { pid: 1, target: '/proc', owned: [mountId] });
c.close();
const d = await startDaemon({ stateDir, logLevel: 'silent' });
const ws = await d.addWorkspace({ id: 'pkg', hostPid: Number(hostPid) });
console.log(JSON.stringify({ mountId, socket: ws.socketPath }));
process.stdin.on('end', () => d.close().then(() => process.exit(0))).resume();
`;

// CommonJS: the client, inside the workspace.
const CJS = `
const { createClient } = require('iwsd/client');
const { ERROR_CODES } = require('iwsd');
const [socket, pid] = process.argv.slice(2);
const client = createClient(socket);
client.writeIdMapping({ pid: Number(pid), gid: false, mapping: [{ containerId: 0, hostId: 33333, size: 1 }] })
  .then((r) => { console.log(JSON.stringify({ ...r, codes: ERROR_CODES.length })); client.close(); })
  .catch((e) => { console.error(e.code, e.message); process.exit(1); });
`;

test('npm pack packs what was built: no cargo run through prepare, no source maps, LICENSE, SECURITY.md and CHANGELOG.md shipped', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'iwsd-pack-'));
  t.teardown(() => removeStateDir(dir));
  // A cargo that records being run and fails: packing must not build Rust.
  const marker = join(dir, 'cargo-ran');
  writeFileSync(join(dir, 'cargo'), `#!/bin/sh\necho "$@" >> ${marker}\nexit 1\n`);
  chmodSync(join(dir, 'cargo'), 0o755);
  const r = spawnSync('npm', ['pack', '--dry-run', '--json'], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, PATH: `${dir}:${process.env.PATH}` } });
  t.is(r.status, 0, r.stderr);
  t.false(existsSync(marker), 'cargo was run while packing');
  const files = (JSON.parse(r.stdout) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path);
  t.deepEqual(files.filter((f) => f.endsWith('.map')), [], 'no source maps (they would point at src/, which is not shipped)');
  t.false(files.some((f) => f.startsWith('src/') || f.startsWith('crates/')));
  for (const f of ['LICENSE', 'SECURITY.md', 'CHANGELOG.md', 'README.md', 'dist/cli.js', 'native/index.cjs']) t.true(files.includes(f), f);
  t.true(files.some((f) => /^native\/iwsd\..*\.node$/.test(f)));
});

test('LICENSE is the Apache-2.0 text package.json and Cargo.toml name; SECURITY.md carries the README\'s attacker model', (t) => {
  const license = readFileSync(join(ROOT, 'LICENSE'), 'utf8');
  t.regex(license, /Apache License\s+Version 2\.0, January 2004/);
  t.regex(license, /END OF TERMS AND CONDITIONS/);
  t.is((JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { license: string }).license, 'Apache-2.0');
  t.regex(readFileSync(join(ROOT, 'Cargo.toml'), 'utf8'), /^license = "Apache-2\.0"$/m);
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Security\n'), readme.indexOf('\n## ', readme.indexOf('## Security\n') + 1)).split('\n').slice(1).join('\n').trim();
  const security = readFileSync(join(ROOT, 'SECURITY.md'), 'utf8');
  t.regex(security, /## Reporting a vulnerability/);
  const marker = 'stay the same. -->\n';
  t.is(security.slice(security.indexOf(marker) + marker.length).trim(), section, 'SECURITY.md\'s copy of README.md "## Security" is out of date: run node scripts/sync-security.mjs');
  const changelog = readFileSync(join(ROOT, 'CHANGELOG.md'), 'utf8');
  t.regex(changelog, /^## \[Unreleased\]$/m);
});

rootTest('npm pack → fresh project: TypeScript, ESM and CommonJS consumers, real operations', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'iwsd-pkg-'));
  t.teardown(() => removeStateDir(dir));
  execFileSync('npm', ['pack', '--ignore-scripts', '--pack-destination', dir], { cwd: ROOT, stdio: 'ignore' });
  const tarball = readdirSync(dir).find((f) => f.endsWith('.tgz'))!;
  const app = join(dir, 'app');
  execFileSync('mkdir', ['-p', app]);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module' }));
  execFileSync(
    'npm',
    ['install', '--no-audit', '--no-fund', '--prefer-offline', join(dir, tarball), `typescript@${pkg.devDependencies.typescript}`, `@types/node@${pkg.devDependencies['@types/node']}`],
    { cwd: app, stdio: 'ignore' },
  );

  // TypeScript: every entry point type-checks under nodenext resolution.
  writeFileSync(join(app, 'check.ts'), TS);
  writeFileSync(
    join(app, 'tsconfig.json'),
    JSON.stringify({ compilerOptions: { strict: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', noEmit: true, types: ['node'] }, files: ['check.ts'] }),
  );
  const tsc = spawnSync(join(app, 'node_modules/.bin/tsc'), ['-p', app], { encoding: 'utf8' });
  t.is(tsc.status, 0, tsc.stdout + tsc.stderr);

  // Real operations through the installed package.
  writeFileSync(join(app, 'host.mjs'), ESM);
  writeFileSync(join(app, 'inside.cjs'), CJS);
  const fs = makeRootfs();
  t.teardown(fs.cleanup);
  const c = await TestContainer.startFor(t, { rootfs: fs.rootfs });
  const host = spawn(process.execPath, [join(app, 'host.mjs'), String(c.initHostPid), join(dir, 'state')], { cwd: app, stdio: ['pipe', 'pipe', 'inherit'] });
  t.teardown(() => {
    host.kill('SIGKILL');
  });
  const exited = new Promise<number | null>((r) => host.once('exit', r));
  const line = await new Promise<string>((resolve) => createInterface({ input: host.stdout }).once('line', resolve));
  const { mountId, socket } = JSON.parse(line) as { mountId: string; socket: string };
  t.regex(mountId, /^\d+$/);

  const pid = await c.spawnUserns();
  const inside = spawnSync('nsenter', ['--target', String(c.initHostPid), '--pid', '--', process.execPath, join(app, 'inside.cjs'), socket, String(pid)], {
    cwd: app,
    encoding: 'utf8',
  });
  t.is(inside.status, 0, inside.stderr);
  const r = JSON.parse(inside.stdout) as { errorCode: number; codes: number };
  t.is(r.errorCode, 0);
  t.is(r.codes, 8);
  t.deepEqual(readMap(c.hostPidOf(pid), 'uid_map'), [[0, 33333, 1]]);
  host.stdin.end();
  t.is(await exited, 0);
});
