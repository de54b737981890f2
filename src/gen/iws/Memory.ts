// Original file: proto/workspace_daemon.proto

import type { Long } from '@grpc/proto-loader';

export interface Memory {
  'used'?: (number | string | Long);
  'limit'?: (number | string | Long);
}

export interface Memory__Output {
  'used': (number);
  'limit': (number);
}
