// Original file: proto/workspace_daemon.proto


export interface WriteIDMappingResponse {
  'message'?: (string);
  'errorCode'?: (number);
}

export interface WriteIDMappingResponse__Output {
  'message': (string);
  'errorCode': (number);
}
