// Original file: proto/workspace_daemon.proto

import type { Long } from '@grpc/proto-loader';

export interface MountNfsRequest {
  'source'?: (string);
  'target'?: (string);
  'args'?: (string);
  'pid'?: (number | string | Long);
}

export interface MountNfsRequest__Output {
  'source': (string);
  'target': (string);
  'args': (string);
  'pid': (number);
}
