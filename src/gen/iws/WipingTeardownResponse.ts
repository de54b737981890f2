// Original file: proto/workspace_daemon.proto


export interface WipingTeardownResponse {
  'success'?: (boolean);
}

export interface WipingTeardownResponse__Output {
  'success': (boolean);
}
