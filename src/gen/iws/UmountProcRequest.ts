// Original file: proto/workspace_daemon.proto

import type { Long } from '@grpc/proto-loader';

export interface UmountProcRequest {
  'target'?: (string);
  'pid'?: (number | string | Long);
}

export interface UmountProcRequest__Output {
  'target': (string);
  'pid': (number);
}
