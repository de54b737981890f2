// Original file: proto/workspace_daemon.proto

/**
 * FSShiftMethod describes the means by which we establish the ID shift for
 * user namespaced workspaces.
 */
export const FSShiftMethod = {
  SHIFTFS: 'SHIFTFS',
  FUSE: 'FUSE',
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
 * FSShiftMethod describes the means by which we establish the ID shift for
 * user namespaced workspaces.
 */
export type FSShiftMethod__Output = typeof FSShiftMethod[keyof typeof FSShiftMethod]
