/**
 * The tools operators point at iwsd, for real: grpcurl (list, describe,
 * Health through reflection, a WriteIDMapping written in the contract's own
 * JSON field names) and grpc-health-probe, on the admin socket and, from
 * inside a container, on a workspace socket. .ci/run builds both (pinned)
 * from the Go module proxy into .tools/bin; without them these tests skip,
 * visibly.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import test from 'ava';

import { TestContainer, readMap } from './helpers/container.js';
import { TestDaemon } from './helpers/daemon.js';
import { isRoot } from './helpers/root.js';

const TOOLS = fileURLToPath(new URL('../.tools/bin/', import.meta.url));
const GRPCURL = join(TOOLS, 'grpcurl');
const PROBE = join(TOOLS, 'grpc-health-probe');
const have = existsSync(GRPCURL) && existsSync(PROBE);
const why = have ? '' : ` (skipped: ${TOOLS}grpcurl and grpc-health-probe missing; .ci/run builds them with Go)`;
const toolTest = have && isRoot ? test : test.skip;

/** Runs a tool on the host, or inside `inside`'s PID namespace (workspace sockets check the peer). */
function run(tool: string, args: string[], inside?: number): { code: number; out: string } {
  const [cmd, argv] = inside ? ['nsenter', ['--target', String(inside), '--pid', '--', tool, ...args]] : [tool, args];
  const r = spawnSync(cmd, argv, { encoding: 'utf8', timeout: 20_000 });
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

/** grpcurl [-d data] unix://sock verb... */
const grpcurl = (sock: string, args: string[], inside?: number) => {
  const flags = args[0] === '-d' ? args.slice(0, 2) : [];
  return run(GRPCURL, ['-plaintext', ...flags, `unix://${sock}`, ...args.slice(flags.length)], inside);
};

toolTest(`grpcurl and grpc-health-probe on the admin socket: list, describe everything, Health through reflection${why}`, async (t) => {
  const daemon = await TestDaemon.startFor(t);
  const sock = join(daemon.stateDir, 'admin.sock');
  const list = grpcurl(sock, ['list']);
  t.is(list.code, 0, list.out);
  t.deepEqual(list.out.trim().split('\n').sort(), ['grpc.health.v1.Health', 'iwsd.admin.v1.Admin']);
  const all = grpcurl(sock, ['describe']);
  t.is(all.code, 0, all.out);
  t.regex(all.out, /rpc List \( \.grpc\.health\.v1\.HealthListRequest \)/);
  const msg = grpcurl(sock, ['describe', 'iwsd.admin.v1.AddWorkspaceRequest']);
  t.is(msg.code, 0, msg.out);
  t.regex(msg.out, /root_range = 3;/, 'the field names as written in the proto');
  t.regex(msg.out, /optional bool full_workspace_backup = 7;/, 'proto3 optional, not a oneof');
  const health = grpcurl(sock, ['-d', '{"service":"iwsd.admin.v1.Admin"}', 'grpc.health.v1.Health/Check']);
  t.is(health.code, 0, health.out);
  t.deepEqual(JSON.parse(health.out), { status: 'SERVING' });
  const probe = run(PROBE, [`-addr=unix://${sock}`]);
  t.is(probe.code, 0, probe.out);
  t.regex(probe.out, /SERVING/);
  // An admin request in the proto's own field names.
  const bad = grpcurl(sock, ['-d', '{"id":"x","pid":2147483646,"root_range":{"start":33333,"size":1}}', 'iwsd.admin.v1.Admin/AddWorkspace']);
  t.regex(bad.out, /Code: NotFound/);
});

toolTest(`grpcurl and grpc-health-probe on a workspace socket, from inside: WriteIDMapping in the contract's JSON field names${why}`, async (t) => {
  const daemon = await TestDaemon.startFor(t);
  const c = await TestContainer.startFor(t);
  const sock = await daemon.add('tools', c.initHostPid);
  const list = grpcurl(sock, ['list'], c.initHostPid);
  t.is(list.code, 0, list.out);
  t.deepEqual(list.out.trim().split('\n').sort(), ['grpc.health.v1.Health', 'iws.InWorkspaceService', 'iws.WorkspaceInfoService']);
  const all = grpcurl(sock, ['describe'], c.initHostPid);
  t.is(all.code, 0, all.out);
  const m = grpcurl(sock, ['describe', 'iws.WriteIDMappingRequest.Mapping'], c.initHostPid);
  t.regex(m.out, /uint32 container_id = 1;/);
  t.regex(m.out, /uint32 host_id = 2;/);
  const probe = run(PROBE, [`-addr=unix://${sock}`, '-service=iws.InWorkspaceService'], c.initHostPid);
  t.is(probe.code, 0, probe.out);

  const pid = await c.spawnUserns();
  const req = JSON.stringify({ pid, gid: false, mapping: [{ container_id: 0, host_id: 33333, size: 1 }] });
  const w = grpcurl(sock, ['-d', req, 'iws.InWorkspaceService/WriteIDMapping'], c.initHostPid);
  t.is(w.code, 0, w.out);
  t.deepEqual(readMap(c.hostPidOf(pid), 'uid_map'), [[0, 33333, 1]]);
  // From the host, the same socket refuses the connection.
  const outside = run(GRPCURL, ['-plaintext', '-max-time', '3', `unix://${sock}`, 'list']);
  t.not(outside.code, 0);
});
