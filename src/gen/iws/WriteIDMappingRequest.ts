// Original file: proto/workspace_daemon.proto

import type { Long } from '@grpc/proto-loader';

export interface _iws_WriteIDMappingRequest_Mapping {
  'containerId'?: (number);
  'hostId'?: (number);
  'size'?: (number);
}

export interface _iws_WriteIDMappingRequest_Mapping__Output {
  'containerId': (number);
  'hostId': (number);
  'size': (number);
}

export interface WriteIDMappingRequest {
  'pid'?: (number | string | Long);
  'gid'?: (boolean);
  'mapping'?: (_iws_WriteIDMappingRequest_Mapping)[];
}

export interface WriteIDMappingRequest__Output {
  'pid': (number);
  'gid': (boolean);
  'mapping': (_iws_WriteIDMappingRequest_Mapping__Output)[];
}
