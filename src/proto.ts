/** Loads the .proto files shipped in `proto/` with one set of options. */
import { fileURLToPath } from 'node:url';

import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

import type { ProtoGrpcType as WorkspaceProto } from './gen/workspace_daemon.js';
import type { ProtoGrpcType as AdminProto } from './gen/admin.js';

/** Must match the flags of `npm run gen:proto`. */
export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};

export const PROTO_DIR = fileURLToPath(new URL('../proto/', import.meta.url));

const defs = new Map<string, protoLoader.PackageDefinition>();

/** The package definition of a proto file (also what reflection serves). */
export function definition(file: 'workspace_daemon.proto' | 'admin.proto'): protoLoader.PackageDefinition {
  let def = defs.get(file);
  if (!def) {
    def = protoLoader.loadSync(PROTO_DIR + file, LOADER_OPTIONS);
    defs.set(file, def);
  }
  return def;
}

let ws: WorkspaceProto | undefined;
let admin: AdminProto | undefined;

export function workspaceProto(): WorkspaceProto {
  return (ws ??= grpc.loadPackageDefinition(definition('workspace_daemon.proto')) as unknown as WorkspaceProto);
}

export function adminProto(): AdminProto {
  return (admin ??= grpc.loadPackageDefinition(definition('admin.proto')) as unknown as AdminProto);
}
