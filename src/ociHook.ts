/**
 * `iwsd oci-hook`: registers/unregisters a container with the running daemon
 * from an OCI runtime hook. The runtime passes the container state on stdin
 * (runc/crun `createRuntime`, `poststart`, `poststop`; CRI-O/podman hooks.d).
 */
import { z } from 'zod';

import { IwsError, toIwsError } from './errors.js';
import { parseIdMapping, parseIdRange, type IdMapping, type IdRange } from './native.js';

export const ANNOTATIONS = {
  workspaceId: 'io.iwsd.workspace-id',
  rootRange: 'io.iwsd.root-range',
  userRanges: 'io.iwsd.user-ranges',
  shiftMapping: 'io.iwsd.shift-mapping',
  markPath: 'io.iwsd.mark-path',
  fullWorkspaceBackup: 'io.iwsd.full-workspace-backup',
  persistentVolumeClaim: 'io.iwsd.persistent-volume-claim',
  onDaemonDown: 'io.iwsd.on-daemon-down',
} as const;

/**
 * What the hook does when it cannot register a container because the daemon
 * is down (no admin socket, nobody listening, no answer): `fail` the
 * container's start (default), or let it `start` without its workspace socket.
 */
export const ON_DAEMON_DOWN = ['fail', 'start'] as const;
export type OnDaemonDown = (typeof ON_DAEMON_DOWN)[number];

export function parseOnDaemonDown(v: string, where: string): OnDaemonDown {
  const t = v.trim();
  const found = ON_DAEMON_DOWN.find((d) => d === t);
  if (found === undefined) {
    throw new IwsError('INVALID_ARGUMENT', `${where}: ${JSON.stringify(v)} must be one of ${ON_DAEMON_DOWN.join(', ')}`);
  }
  return found;
}

const StateSchema = z.object({
  ociVersion: z.string(),
  id: z.string().min(1),
  status: z.string(),
  pid: z.number().int().optional(),
  bundle: z.string().optional(),
  annotations: z.record(z.string(), z.string()).optional(),
});

export type OciState = z.infer<typeof StateSchema>;

export interface HookAction {
  action: 'add' | 'rm';
  id: string;
  pid?: number;
  rootRange?: IdRange;
  userRanges?: IdRange[];
  shiftMapping?: IdMapping[];
  markPath?: string;
  fullWorkspaceBackup?: boolean;
  persistentVolumeClaim?: boolean;
  /** From the annotation; overrides the hook's --on-daemon-down. */
  onDaemonDown?: OnDaemonDown;
}

export function parseState(text: string): OciState {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new IwsError('INVALID_ARGUMENT', 'the OCI state on stdin is not JSON (run iwsd oci-hook as an OCI runtime hook)');
  }
  const r = StateSchema.safeParse(v);
  if (!r.success) throw new IwsError('INVALID_ARGUMENT', `the OCI state on stdin is invalid: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return r.data;
}

/** One value of annotation `name`, parsed by the core's parser; its message names the annotation. */
function annotated<T>(name: string, v: string, parse: (s: string) => T): T {
  try {
    return parse(v.trim());
  } catch (err) {
    throw new IwsError('INVALID_ARGUMENT', `annotation ${name}: ${toIwsError(err).message}`);
  }
}

/**
 * What to do for a state: register while the container is being created or
 * runs, unregister once it stopped. `event` (the hook's name) overrides the
 * status when given.
 */
export function actionFor(state: OciState, event?: string): HookAction {
  const a = state.annotations ?? {};
  const id = a[ANNOTATIONS.workspaceId] ?? state.id;
  const kind = event ?? state.status;
  if (['stopped', 'poststop'].includes(kind)) return { action: 'rm', id };
  if (!['creating', 'created', 'running', 'createRuntime', 'createContainer', 'prestart', 'poststart'].includes(kind)) {
    throw new IwsError('INVALID_ARGUMENT', `don't know what to do for container status/event ${JSON.stringify(kind)}`);
  }
  if (!state.pid || state.pid < 1) throw new IwsError('INVALID_ARGUMENT', `the OCI state of ${state.id} has no pid`);
  const out: HookAction = { action: 'add', id, pid: state.pid };
  const root = a[ANNOTATIONS.rootRange];
  const users = a[ANNOTATIONS.userRanges];
  const shift = a[ANNOTATIONS.shiftMapping];
  if (root) out.rootRange = annotated(ANNOTATIONS.rootRange, root, parseIdRange);
  if (users) out.userRanges = users.split(',').map((x) => annotated(ANNOTATIONS.userRanges, x, parseIdRange));
  if (shift) out.shiftMapping = shift.split(',').map((x) => annotated(ANNOTATIONS.shiftMapping, x, parseIdMapping));
  if (a[ANNOTATIONS.markPath]) out.markPath = a[ANNOTATIONS.markPath];
  if (a[ANNOTATIONS.fullWorkspaceBackup]) out.fullWorkspaceBackup = a[ANNOTATIONS.fullWorkspaceBackup] === 'true';
  if (a[ANNOTATIONS.persistentVolumeClaim]) out.persistentVolumeClaim = a[ANNOTATIONS.persistentVolumeClaim] === 'true';
  const down = a[ANNOTATIONS.onDaemonDown];
  if (down) out.onDaemonDown = parseOnDaemonDown(down, `annotation ${ANNOTATIONS.onDaemonDown}`);
  return out;
}
