/** Metrics on a loopback port, gRPC health checking and server reflection. */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import test from 'ava';

import { parseConfig } from '../src/config.js';
import { TestContainer } from './helpers/container.js';
import { TestDaemon } from './helpers/daemon.js';
import { isRoot, rootTest } from './helpers/root.js';

test('metrics are off by default and only served on loopback addresses', (t) => {
  t.false(parseConfig({}).metrics.enabled);
  t.throws(() => parseConfig({ metrics: { enabled: true, host: '0.0.0.0' } }), { message: /metrics\.host: must be a loopback address/ });
  t.is(parseConfig({ metrics: { host: '::1' } }).metrics.host, '::1');
});

rootTest('/metrics, health (SERVING) and reflection on workspace and admin sockets', async (t) => {
  const daemon = await TestDaemon.startFor(t, { metrics: { enabled: true, port: 0 } });
  const c = await TestContainer.startFor(t);
  const socket = await daemon.add('obs', c.initHostPid);
  const port = (await daemon.waitForLog((l) => typeof l.metricsPort === 'number')).metricsPort as number;

  // Traffic: successes, an invalid map, a rate-limited call, a refused connection.
  const ring = [{ containerId: 0, hostId: 33333, size: 1 }];
  const a = await c.spawnUserns();
  const b = await c.spawnUserns();
  t.true((await c.call(socket, 'WriteIDMapping', { pid: a, gid: false, mapping: ring })).ok);
  t.true((await c.call(socket, 'WriteIDMapping', { pid: a, gid: true, mapping: ring })).ok);
  t.is((await c.call(socket, 'WriteIDMapping', { pid: b, gid: false, mapping: [] })).code, 'INVALID_ARGUMENT');
  t.true((await c.call(socket, 'WriteIDMapping', { pid: b, gid: false, mapping: ring })).ok);
  t.is((await c.call(socket, 'WriteIDMapping', { pid: b, gid: true, mapping: ring })).code, 'RESOURCE_EXHAUSTED');
  const other = await TestContainer.startFor(t);
  t.is((await other.call(socket, 'WriteIDMapping', { pid: b, gid: true, mapping: ring })).code, 'PERMISSION_DENIED');

  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  t.is(res.status, 200);
  const text = await res.text();
  for (const series of [
    /^iwsd_rpc_total\{rpc="WriteIDMapping",code="OK"\} 3$/m,
    /^iwsd_rpc_total\{rpc="WriteIDMapping",code="INVALID_ARGUMENT"\} 1$/m,
    /^iwsd_rpc_total\{rpc="WriteIDMapping",code="RESOURCE_EXHAUSTED"\} 1$/m,
    /^iwsd_rpc_duration_seconds_bucket\{le="0.01",rpc="WriteIDMapping",code="OK"\} \d+$/m,
    /^iwsd_rate_limit_rejections_total\{rpc="WriteIDMapping"\} 1$/m,
    /^iwsd_connections_refused_total 1$/m,
    /^iwsd_workspaces 1$/m,
    /^iwsd_live_mounts\{kind="proc"\} 0$/m,
    /^iwsd_process_resident_memory_bytes \d+/m,
  ]) {
    t.regex(text, series);
  }
  t.is((await fetch(`http://127.0.0.1:${port}/other`)).status, 404);

  // Standard gRPC tooling on the workspace socket, from inside.
  t.deepEqual(await c.health(socket), { status: 'SERVING' });
  t.deepEqual(await c.health(socket, 'iws.InWorkspaceService'), { status: 'SERVING' });
  const listed = await c.reflect(socket);
  t.true(listed.services?.includes('iws.InWorkspaceService'), JSON.stringify(listed));

  // And on the admin socket (root on the host).
  const reflectionProto = fileURLToPath(new URL('../node_modules/@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto', import.meta.url));
  const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(reflectionProto, { keepCase: true })) as unknown as {
    grpc: { reflection: { v1: { ServerReflection: new (addr: string, creds: grpc.ChannelCredentials) => grpc.Client & { ServerReflectionInfo(): grpc.ClientDuplexStream<unknown, { list_services_response?: { service: { name: string }[] } }> } } } };
  };
  const client = new pkg.grpc.reflection.v1.ServerReflection(`unix:${join(daemon.stateDir, 'admin.sock')}`, grpc.credentials.createInsecure());
  const names = await new Promise<string[]>((resolve, reject) => {
    const call = client.ServerReflectionInfo();
    call.on('data', (r) => {
      resolve((r.list_services_response?.service ?? []).map((s: { name: string }) => s.name));
      call.end();
    });
    call.on('error', reject);
    call.write({ list_services: '*' });
  });
  client.close();
  t.true(names.includes('iwsd.admin.v1.Admin'), JSON.stringify(names));
  t.true(names.includes('grpc.health.v1.Health'));
});

rootTest('metrics follow the naming rules promtool checks and carry a build-info metric', async (t) => {
  const daemon = await TestDaemon.startFor(t, { metrics: { enabled: true, port: 0 } });
  const port = (await daemon.waitForLog((l) => typeof l.metricsPort === 'number')).metricsPort as number;
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const types = new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!]));
  t.true(types.size > 10);
  for (const [name, type] of types) {
    if (type !== 'counter') t.false(name.endsWith('_total'), `${type} ${name} must not end in _total`);
    else t.true(name.endsWith('_total'), `counter ${name} must end in _total`);
    t.regex(text, new RegExp(`^# HELP ${name} \\S`, 'm'), `${name} has help`);
  }
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  t.regex(text, new RegExp(`^iwsd_build_info\\{version="${pkg.version.replace(/\./g, '\\.')}",nodejs_version="${process.version}"\\} 1$`, 'm'));
  t.regex(text, /^iwsd_nodejs_active_handles(\{[^}]*\})? \d+$/m);
});

// tools/promlint: the reference parser (prometheus/common expfmt) and promlint,
// what `promtool check metrics` runs; .ci/run builds it into .tools/bin.
const PROMLINT = fileURLToPath(new URL('../.tools/bin/promlint', import.meta.url));
const promlint = (text: string) => {
  const r = spawnSync(PROMLINT, [], { input: text, encoding: 'utf8', timeout: 20_000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
};
const havePromlint = existsSync(PROMLINT);
const lintTest = havePromlint && isRoot ? test : test.skip;

lintTest(`/metrics passes the strict exposition-format parser and promtool's linter${havePromlint ? '' : ` (skipped: ${PROMLINT} missing; .ci/run builds it with Go)`}`, async (t) => {
  // The parser is strict: it refuses what a lenient one would let through.
  t.is(promlint('# TYPE a counter\n# TYPE a counter\na_total 1\n').code, 1);
  t.is(promlint('bad-name 1\n').code, 1);
  t.is(promlint('# HELP x_total h\n# TYPE x_total gauge\nx_total 1\n').code, 3, 'a gauge named _total is a lint problem');

  const daemon = await TestDaemon.startFor(t, { metrics: { enabled: true, port: 0 } });
  const c = await TestContainer.startFor(t);
  const socket = await daemon.add('lint', c.initHostPid);
  const port = (await daemon.waitForLog((l) => typeof l.metricsPort === 'number')).metricsPort as number;
  // Every series family with samples: calls, a refusal, a rate limit, a histogram.
  const a = await c.spawnUserns();
  const ring = [{ containerId: 0, hostId: 33333, size: 1 }];
  t.true((await c.call(socket, 'WriteIDMapping', { pid: a, gid: false, mapping: ring })).ok);
  t.is((await c.call(socket, 'WriteIDMapping', { pid: a, gid: true, mapping: [] })).code, 'INVALID_ARGUMENT');
  const other = await TestContainer.startFor(t);
  t.is((await other.call(socket, 'Teardown', {})).code, 'PERMISSION_DENIED'); // refused peers are answered why
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  t.regex(text, /^iwsd_rpc_duration_seconds_bucket\{/m);
  const r = promlint(text);
  t.is(r.code, 0, r.out);
  t.is(r.out, '');
});
