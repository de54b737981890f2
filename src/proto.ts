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

function load<T>(file: string): T {
  const def = protoLoader.loadSync(PROTO_DIR + file, LOADER_OPTIONS);
  return grpc.loadPackageDefinition(def) as unknown as T;
}

let ws: WorkspaceProto | undefined;
let admin: AdminProto | undefined;

export function workspaceProto(): WorkspaceProto {
  return (ws ??= load<WorkspaceProto>('workspace_daemon.proto'));
}

export function adminProto(): AdminProto {
  return (admin ??= load<AdminProto>('admin.proto'));
}
