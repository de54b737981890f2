/**
 * Metrics (prom-client, served on a loopback HTTP port when enabled), gRPC
 * health checking and server reflection for the daemon's servers.
 */
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';

import type * as grpc from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import * as protoLoader from '@grpc/proto-loader';
import { HealthImplementation, protoPath as healthProtoPath } from 'grpc-health-check';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import descriptor from 'protobufjs/ext/descriptor/index.js';

import type { Logger } from './log.js';
import { LOADER_OPTIONS, PROTO_DIR } from './proto.js';
import { VERSION } from './version.js';

const { FileDescriptorProto } = descriptor;

type Descriptor = Record<string, unknown>;
interface FieldD extends Descriptor {
  name: string;
  typeName?: string;
  label?: number;
  proto3Optional?: boolean;
}
interface MessageD extends Descriptor {
  name: string;
  field?: FieldD[];
  nestedType?: MessageD[];
  oneofDecl?: { name: string }[];
  options?: { mapEntry?: boolean };
}

/** protoc's name for the entry type of map field `name`: foo_bar → FooBarEntry. */
function mapEntryName(name: string): string {
  return `${name.replace(/(?:^|_)([a-z0-9])/g, (_, c: string) => c.toUpperCase())}Entry`;
}

/**
 * Makes a descriptor from protobufjs what protoc would make, for strict
 * clients (Go's protoreflect in grpcurl and grpc-health-probe): map entry
 * types are named `<Field>Entry` (protobufjs names them `<Field>`, which
 * they reject as "an invalid map"), and a proto3 `optional` field is marked
 * proto3_optional in its synthetic oneof (protobufjs drops the flag).
 */
function protocLike(m: MessageD): void {
  for (const n of m.nestedType ?? []) protocLike(n);
  for (const n of m.nestedType ?? []) {
    if (!n.options?.mapEntry) continue;
    const field = m.field?.find((f) => f.typeName === n.name || f.typeName?.endsWith(`.${n.name}`));
    if (!field) continue;
    const entry = mapEntryName(field.name);
    field.typeName = `${field.typeName!.slice(0, -n.name.length)}${entry}`;
    n.name = entry;
  }
  for (const f of m.field ?? []) {
    if (Object.prototype.hasOwnProperty.call(f, 'oneofIndex') && m.oneofDecl?.[f.oneofIndex as number]?.name === `_${f.name}`) f.proto3Optional = true;
  }
}

/**
 * What reflection serves: our protos with the field names as written (the
 * contract's, e.g. container_id: grpcurl then takes requests in the
 * contract's JSON names, and also in their camelCase JSON names) and the
 * health service, with protoc-like descriptors. Only reflection uses it:
 * the services are served from proto.ts's camelCase definition; field
 * numbers and types, so the wire format, are the same.
 */
export function reflectionDefinition(file: 'workspace_daemon.proto' | 'admin.proto'): protoLoader.PackageDefinition {
  const def: protoLoader.PackageDefinition = {
    ...protoLoader.loadSync(PROTO_DIR + file, { ...LOADER_OPTIONS, keepCase: true }),
    ...protoLoader.loadSync(healthProtoPath, { keepCase: true }),
  };
  const fixed = new Map<Buffer, Buffer>();
  const fix = (bin: Buffer): Buffer => {
    let out = fixed.get(bin);
    if (!out) {
      const fd = FileDescriptorProto.decode(bin) as unknown as { messageType?: MessageD[] };
      for (const m of fd.messageType ?? []) protocLike(m);
      out = Buffer.from(FileDescriptorProto.encode(fd as unknown as Record<string, unknown>).finish());
      fixed.set(bin, out);
    }
    return out;
  };
  const out: protoLoader.PackageDefinition = {};
  for (const [name, v] of Object.entries(def)) {
    const protos = (v as { fileDescriptorProtos?: unknown }).fileDescriptorProtos;
    out[name] = Array.isArray(protos) ? ({ ...v, fileDescriptorProtos: (protos as Buffer[]).map(fix) } as typeof v) : v;
  }
  return out;
}

export class Metrics {
  readonly registry = new Registry();
  readonly rpcs = new Counter({
    name: 'iwsd_rpc_total',
    help: 'InWorkspaceService calls by RPC and result code',
    labelNames: ['rpc', 'code'] as const,
    registers: [this.registry],
  });
  readonly latency = new Histogram({
    name: 'iwsd_rpc_duration_seconds',
    help: 'InWorkspaceService call latency by RPC and result code',
    labelNames: ['rpc', 'code'] as const,
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [this.registry],
  });
  readonly rateLimited = new Counter({
    name: 'iwsd_rate_limit_rejections_total',
    help: 'Calls refused by a rate limit, by RPC',
    labelNames: ['rpc'] as const,
    registers: [this.registry],
  });
  readonly refused = new Counter({
    name: 'iwsd_connections_refused_total',
    help: 'Connections to workspace sockets refused by the peer-credential check',
    registers: [this.registry],
  });
  readonly overCap = new Counter({
    name: 'iwsd_connections_over_cap_total',
    help: 'Connections to workspace sockets refused by a connection cap (connections.perWorkspace, connections.total)',
    registers: [this.registry],
  });
  readonly noPreface = new Counter({
    name: 'iwsd_connections_no_preface_total',
    help: 'Connections to workspace sockets closed because their client sent no HTTP/2 preface in time',
    registers: [this.registry],
  });

  constructor(source: { workspaces(): number; mounts(): { proc: number; sysfs: number; nfs: number; marks: number } }) {
    new Gauge({
      name: 'iwsd_workspaces',
      help: 'Registered workspaces',
      registers: [this.registry],
      collect() {
        this.set(source.workspaces());
      },
    });
    new Gauge({
      name: 'iwsd_live_mounts',
      help: 'Mounts iwsd made that are live, by kind (proc, sysfs, nfs, mark)',
      labelNames: ['kind'] as const,
      registers: [this.registry],
      collect() {
        const m = source.mounts();
        this.set({ kind: 'proc' }, m.proc);
        this.set({ kind: 'sysfs' }, m.sysfs);
        this.set({ kind: 'nfs' }, m.nfs);
        this.set({ kind: 'mark' }, m.marks);
      },
    });
    collectDefaultMetrics({ register: this.registry, prefix: 'iwsd_' });
    // prom-client's gauges named *_total break the naming rules promtool
    // checks (`_total` is for counters); the same numbers are served by the
    // iwsd_nodejs_active_{handles,requests,resources} gauges without it.
    for (const kind of ['handles', 'requests', 'resources']) this.registry.removeSingleMetric(`iwsd_nodejs_active_${kind}_total`);
    new Gauge({
      name: 'iwsd_build_info',
      help: 'Always 1; labels name the iwsd version and the Node.js it runs on',
      labelNames: ['version', 'nodejs_version'] as const,
      registers: [this.registry],
    }).set({ version: VERSION, nodejs_version: process.version }, 1);
  }

  observe(rpc: string, code: string, seconds: number): void {
    this.rpcs.inc({ rpc, code });
    this.latency.observe({ rpc, code }, seconds);
  }
}

/** The hosts `metrics.host` may name: 127.0.0.0/8, ::1 or localhost (the config schema checks it). */
export const LOOPBACK = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1|localhost)$/;

/** Serves GET /metrics on a loopback address; resolves with the bound port. */
export async function serveMetrics(metrics: Metrics, host: string, port: number, log: Logger): Promise<{ server: HttpServer; port: number }> {
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || req.url !== '/metrics') {
      res.writeHead(404).end('only GET /metrics is served here\n');
      return;
    }
    metrics.registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
      (err: unknown) => {
        log.error({ err }, 'collecting metrics failed');
        res.writeHead(500).end();
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return { server, port: (server.address() as AddressInfo).port };
}

const standard = new Map<string, { health: HealthImplementation; reflection: ReflectionService }>();

/**
 * Adds gRPC health checking and server reflection for `file`'s services.
 * One health and one reflection instance per proto file serve every server
 * (they hold descriptors and status maps that would otherwise be built per
 * workspace).
 */
export function addStandardServices(server: grpc.Server, file: 'workspace_daemon.proto' | 'admin.proto', serviceName: string): HealthImplementation {
  let s = standard.get(file);
  if (!s) {
    const health = new HealthImplementation({ '': 'SERVING', [serviceName]: 'SERVING' });
    // Reflection lists our service and the health service.
    s = { health, reflection: new ReflectionService(reflectionDefinition(file)) };
    standard.set(file, s);
  }
  s.health.addToServer(server);
  s.reflection.addToServer(server);
  return s.health;
}
