// Original file: proto/workspace_daemon.proto

import type { Long } from '@grpc/proto-loader';

export interface UmountNfsRequest {
  'target'?: (string);
  'pid'?: (number | string | Long);
}

export interface UmountNfsRequest__Output {
  'target': (string);
  'pid': (number);
}
