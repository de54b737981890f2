// Original file: proto/admin.proto

import type { IdRange as _iwsd_admin_v1_IdRange, IdRange__Output as _iwsd_admin_v1_IdRange__Output } from '../../../iwsd/admin/v1/IdRange.js';
import type { IdMapping as _iwsd_admin_v1_IdMapping, IdMapping__Output as _iwsd_admin_v1_IdMapping__Output } from '../../../iwsd/admin/v1/IdMapping.js';
import type { Long } from '@grpc/proto-loader';

export interface Workspace {
  'id'?: (string);
  'pid'?: (number | string | Long);
  'socketPath'?: (string);
  'rootRange'?: (_iwsd_admin_v1_IdRange | null);
  'userRanges'?: (_iwsd_admin_v1_IdRange)[];
  'alive'?: (boolean);
  'shiftMapping'?: (_iwsd_admin_v1_IdMapping)[];
  'markPath'?: (string);
  'fullWorkspaceBackup'?: (boolean);
  /**
   * Whether the one-shot calls have been used.
   */
  'prepared'?: (boolean);
  'tornDown'?: (boolean);
  'persistentVolumeClaim'?: (boolean);
}

export interface Workspace__Output {
  'id': (string);
  'pid': (number);
  'socketPath': (string);
  'rootRange': (_iwsd_admin_v1_IdRange__Output | null);
  'userRanges': (_iwsd_admin_v1_IdRange__Output)[];
  'alive': (boolean);
  'shiftMapping': (_iwsd_admin_v1_IdMapping__Output)[];
  'markPath': (string);
  'fullWorkspaceBackup': (boolean);
  /**
   * Whether the one-shot calls have been used.
   */
  'prepared': (boolean);
  'tornDown': (boolean);
  'persistentVolumeClaim': (boolean);
}
