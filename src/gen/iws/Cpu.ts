// Original file: proto/workspace_daemon.proto

import type { Long } from '@grpc/proto-loader';

export interface Cpu {
  'used'?: (number | string | Long);
  'limit'?: (number | string | Long);
}

export interface Cpu__Output {
  'used': (number);
  'limit': (number);
}
