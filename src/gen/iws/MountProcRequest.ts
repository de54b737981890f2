// Original file: proto/workspace_daemon.proto

import type { Long } from '@grpc/proto-loader';

export interface MountProcRequest {
  'target'?: (string);
  'pid'?: (number | string | Long);
}

export interface MountProcRequest__Output {
  'target': (string);
  'pid': (number);
}
