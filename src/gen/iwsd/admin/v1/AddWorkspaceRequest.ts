// Original file: proto/admin.proto

import type { IdRange as _iwsd_admin_v1_IdRange, IdRange__Output as _iwsd_admin_v1_IdRange__Output } from '../../../iwsd/admin/v1/IdRange.js';
import type { IdMapping as _iwsd_admin_v1_IdMapping, IdMapping__Output as _iwsd_admin_v1_IdMapping__Output } from '../../../iwsd/admin/v1/IdMapping.js';
import type { Long } from '@grpc/proto-loader';

export interface AddWorkspaceRequest {
  'id'?: (string);
  /**
   * Host PID of the container's init.
   */
  'pid'?: (number | string | Long);
  /**
   * Unset: the daemon's default policy.
   */
  'rootRange'?: (_iwsd_admin_v1_IdRange | null);
  'userRanges'?: (_iwsd_admin_v1_IdRange)[];
  /**
   * The map a ring's user namespace will get; empty: derived from the ranges
   * (0 -> root range start, 1.. -> user range start).
   */
  'shiftMapping'?: (_iwsd_admin_v1_IdMapping)[];
  /**
   * Where PrepareForUserNS mounts the mark; empty: the configured default.
   */
  'markPath'?: (string);
  /**
   * Reported by PrepareForUserNS; unset: the configured default.
   */
  'fullWorkspaceBackup'?: (boolean);
  /**
   * Reported by PrepareForUserNS (persistent_volume_claim); unset: false.
   */
  'persistentVolumeClaim'?: (boolean);
  '_fullWorkspaceBackup'?: "fullWorkspaceBackup";
  '_persistentVolumeClaim'?: "persistentVolumeClaim";
}

export interface AddWorkspaceRequest__Output {
  'id': (string);
  /**
   * Host PID of the container's init.
   */
  'pid': (number);
  /**
   * Unset: the daemon's default policy.
   */
  'rootRange': (_iwsd_admin_v1_IdRange__Output | null);
  'userRanges': (_iwsd_admin_v1_IdRange__Output)[];
  /**
   * The map a ring's user namespace will get; empty: derived from the ranges
   * (0 -> root range start, 1.. -> user range start).
   */
  'shiftMapping': (_iwsd_admin_v1_IdMapping__Output)[];
  /**
   * Where PrepareForUserNS mounts the mark; empty: the configured default.
   */
  'markPath': (string);
  /**
   * Reported by PrepareForUserNS; unset: the configured default.
   */
  'fullWorkspaceBackup'?: (boolean);
  /**
   * Reported by PrepareForUserNS (persistent_volume_claim); unset: false.
   */
  'persistentVolumeClaim'?: (boolean);
  '_fullWorkspaceBackup'?: "fullWorkspaceBackup";
  '_persistentVolumeClaim'?: "persistentVolumeClaim";
}
