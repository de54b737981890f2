/**
 * Which NRI containers are workspaces, and with which registration: pods
 * annotated `iwsd.io/workspace: "true"`. Every other pod and container is
 * not a workspace and is never touched.
 */
import { actionFor, ANNOTATIONS, type HookAction } from '../ociHook.js';
import { IwsError } from '../errors.js';

export const NRI_ANNOTATIONS = {
  /** "true" marks a workspace pod. */
  workspace: 'iwsd.io/workspace',
  /** The workspace id (default: the pod's uid). */
  workspaceId: 'iwsd.io/workspace-id',
  /** Only the container of this name is the workspace (default: every container of the pod). */
  container: 'iwsd.io/workspace-container',
  /** Policy overrides, same values as the OCI hook's io.iwsd.* annotations. */
  rootRange: 'iwsd.io/root-range',
  userRanges: 'iwsd.io/user-ranges',
  shiftMapping: 'iwsd.io/shift-mapping',
  markPath: 'iwsd.io/mark-path',
  fullWorkspaceBackup: 'iwsd.io/full-workspace-backup',
  persistentVolumeClaim: 'iwsd.io/persistent-volume-claim',
} as const;

export interface NriPod {
  id?: string;
  name?: string;
  uid?: string;
  namespace?: string;
  annotations?: Record<string, string>;
}

export interface NriContainer {
  id?: string;
  podSandboxId?: string;
  name?: string;
  state?: string;
  annotations?: Record<string, string>;
  pid?: number;
}

/** A workspace container's registration (as the OCI hook's, without the pid). */
export type WorkspaceSpec = Omit<HookAction, 'action' | 'pid'> & { id: string };

/**
 * The workspace of `container` in `pod`, undefined when it is none.
 * Throws IwsError (INVALID_ARGUMENT) on a workspace pod with bad annotations.
 */
export function workspaceOf(pod: NriPod | undefined, container: NriContainer): WorkspaceSpec | undefined {
  const a = pod?.annotations ?? {};
  if (a[NRI_ANNOTATIONS.workspace] !== 'true') return undefined;
  const only = a[NRI_ANNOTATIONS.container];
  if (only !== undefined && only !== container.name) return undefined;
  const id = a[NRI_ANNOTATIONS.workspaceId] ?? pod?.uid;
  if (!id) throw new IwsError('INVALID_ARGUMENT', `workspace pod ${pod?.namespace}/${pod?.name} has neither ${NRI_ANNOTATIONS.workspaceId} nor a uid`);
  // The OCI hook's parser checks the overrides: same values, other keys.
  const oci: Record<string, string> = { [ANNOTATIONS.workspaceId]: id };
  for (const k of ['rootRange', 'userRanges', 'shiftMapping', 'markPath', 'fullWorkspaceBackup', 'persistentVolumeClaim'] as const) {
    const v = a[NRI_ANNOTATIONS[k]];
    if (v !== undefined) oci[ANNOTATIONS[k]] = v;
  }
  let act: HookAction;
  try {
    act = actionFor({ ociVersion: '1.0.2', id, status: 'created', pid: 1, annotations: oci });
  } catch (err) {
    throw new IwsError('INVALID_ARGUMENT', (err as Error).message.replaceAll('io.iwsd.', 'iwsd.io/'));
  }
  const { action: _a, pid: _p, ...spec } = act;
  return spec;
}

/** Names for logs: pod, container and (later) workspace. */
export function logFields(pod: NriPod | undefined, c: NriContainer): Record<string, unknown> {
  return {
    pod: pod ? `${pod.namespace ?? ''}/${pod.name ?? ''}` : undefined,
    podUid: pod?.uid,
    container: c.name,
    containerId: c.id,
  };
}
