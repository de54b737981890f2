// Original file: proto/workspace_daemon.proto

import type { Long } from '@grpc/proto-loader';

export interface SetupPairVethsRequest {
  'pid'?: (number | string | Long);
}

export interface SetupPairVethsRequest__Output {
  'pid': (number);
}
