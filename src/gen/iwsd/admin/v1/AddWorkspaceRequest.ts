// Original file: proto/admin.proto

import type { IdRange as _iwsd_admin_v1_IdRange, IdRange__Output as _iwsd_admin_v1_IdRange__Output } from '../../../iwsd/admin/v1/IdRange';
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
}
