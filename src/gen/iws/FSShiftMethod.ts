// Original file: proto/workspace_daemon.proto

/**
 * FSShiftMethod describes the means by which we establish the ID shift for
 * user namespaced workspaces.
 */
export const FSShiftMethod = {
  SHIFTFS: 'SHIFTFS',
  FUSE: 'FUSE',
  /**
   * An idmapped mount of the container's root (Linux 5.12+); added by iwsd.
   */
  IDMAPPED: 'IDMAPPED',
} as const;

/**
 * FSShiftMethod describes the means by which we establish the ID shift for
 * user namespaced workspaces.
 */
export type FSShiftMethod =
  | 'SHIFTFS'
  | 0
  | 'FUSE'
  | 1
  /**
   * An idmapped mount of the container's root (Linux 5.12+); added by iwsd.
   */
  | 'IDMAPPED'
  | 2

/**
 * FSShiftMethod describes the means by which we establish the ID shift for
 * user namespaced workspaces.
 */
export type FSShiftMethod__Output = typeof FSShiftMethod[keyof typeof FSShiftMethod]
