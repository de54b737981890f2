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
   * Answered only to a client that sends the request metadata
   * `iwsd-fs-shift-accept: idmapped` (or with the daemon's
   * shift.idmappedAnswer: idmapped); any other client gets FUSE for an
   * idmapped mark: it binds the mark as it would a FUSE one. The label
   * never changes which mark the daemon makes.
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
   * Answered only to a client that sends the request metadata
   * `iwsd-fs-shift-accept: idmapped` (or with the daemon's
   * shift.idmappedAnswer: idmapped); any other client gets FUSE for an
   * idmapped mark: it binds the mark as it would a FUSE one. The label
   * never changes which mark the daemon makes.
   */
  | 'IDMAPPED'
  | 2

/**
 * FSShiftMethod describes the means by which we establish the ID shift for
 * user namespaced workspaces.
 */
export type FSShiftMethod__Output = typeof FSShiftMethod[keyof typeof FSShiftMethod]
