/** WorkspaceService (src/service.ts) for unit tests over a fake native library. */
import type { ServiceDeps } from '../../src/service.js';
import type { WorkspaceState } from '../../src/state.js';
import * as native from '../../src/native.js';

const NO_MASKS = native.maskSet({ masked: [], readOnly: [] });

/**
 * A WorkspaceService's dependencies for a unit test: no masks, the fast
 * strategies (ioctl, detached), the default lifecycle rule and FUSE dirs
 * nothing reads; `deps` names the rest and may override any of these.
 */
export function serviceDeps(deps: Pick<ServiceDeps, 'log' | 'store' | 'native' | 'guard' | 'shiftMethod' | 'idmappedAnswer'> & Partial<ServiceDeps>): ServiceDeps {
  return {
    fuseOptions: () => ({ binary: '/bin/false', upper: '/x/u', work: '/x/w', staging: '/x/m', upperBytes: 1 << 20 }),
    pidStrategy: 'ioctl',
    mountStrategy: 'detached',
    proc: NO_MASKS,
    sysfs: { readOnly: true, masks: NO_MASKS },
    lifecycleRule: 'root-or-init-uid',
    ...deps,
  };
}

/** The stored state of a freshly registered workspace `id` (root range 33333, no mark, no mounts). */
export function freshState(id: string): WorkspaceState {
  return {
    version: 1,
    id,
    container: { hostPid: 1, startTime: 1 },
    registration: { rootRange: { start: 33333, size: 1 }, userRanges: [], shift: [], markPath: '/.workspace/mark', fullWorkspaceBackup: false },
    prepared: false,
    tornDown: false,
    mark: null,
    mounts: [],
  };
}
