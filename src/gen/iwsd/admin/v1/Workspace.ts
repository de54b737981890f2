// Original file: proto/admin.proto

import type { IdRange as _iwsd_admin_v1_IdRange, IdRange__Output as _iwsd_admin_v1_IdRange__Output } from '../../../iwsd/admin/v1/IdRange';
import type { Long } from '@grpc/proto-loader';

export interface Workspace {
  'id'?: (string);
  'pid'?: (number | string | Long);
  'socketPath'?: (string);
  'rootRange'?: (_iwsd_admin_v1_IdRange | null);
  'userRanges'?: (_iwsd_admin_v1_IdRange)[];
  'alive'?: (boolean);
}

export interface Workspace__Output {
  'id': (string);
  'pid': (number);
  'socketPath': (string);
  'rootRange': (_iwsd_admin_v1_IdRange__Output | null);
  'userRanges': (_iwsd_admin_v1_IdRange__Output)[];
  'alive': (boolean);
}
