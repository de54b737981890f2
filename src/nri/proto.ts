/**
 * The NRI and ttrpc messages, from the vendored .proto files
 * (proto/vendor/README.md: NRI v0.12.3, ttrpc v1.2.9), loaded with
 * protobufjs. Field names are camelCase (`pluginName`, `NRIVersion`).
 */
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

import protobuf from 'protobufjs';

export const VENDOR_DIR = fileURLToPath(new URL('../../proto/vendor/', import.meta.url));

/** The NRI version whose api.proto is vendored (sent in RegisterPlugin). */
export const NRI_VERSION = 'v0.12.3';

export const RUNTIME_SERVICE = 'nri.pkg.api.v1alpha1.Runtime';
export const PLUGIN_SERVICE = 'nri.pkg.api.v1alpha1.Plugin';

let root: protobuf.Root | undefined;

function load(): protobuf.Root {
  if (root) return root;
  const r = new protobuf.Root();
  // Imports are relative to the vendor dir; google/protobuf/* comes with protobufjs.
  r.resolvePath = (_origin, target) => (target.startsWith('google/protobuf/') ? target : join(VENDOR_DIR, target.replace(/^.*proto\/vendor\//, '')));
  r.loadSync(['github.com/containerd/ttrpc/request.proto', 'github.com/containerd/nri/pkg/api/api.proto']);
  r.resolveAll();
  return (root = r);
}

/** A message type by its full name, e.g. `ttrpc.Request`, `nri.pkg.api.v1alpha1.Container`. */
export function type(name: string): protobuf.Type {
  return load().lookupType(name);
}

/** The request and response type names of an NRI method (`Plugin.CreateContainer`, ...). */
export function method(service: string, name: string): { request: protobuf.Type; response: protobuf.Type } | undefined {
  const s = load().lookup(service);
  if (!(s instanceof protobuf.Service)) return undefined;
  const m = s.methods[name];
  if (!m) return undefined;
  m.resolve();
  return { request: m.resolvedRequestType!, response: m.resolvedResponseType! };
}

const CONVERT: protobuf.IConversionOptions = { longs: Number, enums: String, defaults: false, arrays: true, objects: true };

export function decode<T = Record<string, unknown>>(t: protobuf.Type, bytes: Uint8Array): T {
  return t.toObject(t.decode(bytes), CONVERT) as T;
}

/**
 * Encodes a plain object (enums by name or number). A key that is no field
 * of the type is an error, so that a misspelt field is never silently dropped.
 */
export function encode(t: protobuf.Type, value: Record<string, unknown>): Uint8Array {
  for (const k of Object.keys(value)) if (!t.fields[k]) throw new Error(`${t.fullName} has no field ${k}`);
  const msg = t.fromObject(value);
  const err = t.verify(msg);
  if (err) throw new Error(`${t.fullName}: ${err}`);
  return t.encode(msg).finish();
}

/** NRI event numbers (api.proto `Event`), stable since NRI v0.6. */
export const EVENT = {
  RUN_POD_SANDBOX: 1,
  STOP_POD_SANDBOX: 2,
  REMOVE_POD_SANDBOX: 3,
  CREATE_CONTAINER: 4,
  POST_CREATE_CONTAINER: 5,
  START_CONTAINER: 6,
  POST_START_CONTAINER: 7,
  UPDATE_CONTAINER: 8,
  POST_UPDATE_CONTAINER: 9,
  STOP_CONTAINER: 10,
  REMOVE_CONTAINER: 11,
} as const;

/** ConfigureResponse.events: bit (1 << (event - 1)) per subscribed event. */
export function eventMask(events: number[]): number {
  return events.reduce((m, e) => m | (1 << (e - 1)), 0);
}
