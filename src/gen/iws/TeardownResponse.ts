// Original file: proto/workspace_daemon.proto


export interface TeardownResponse {
  'success'?: (boolean);
}

export interface TeardownResponse__Output {
  'success': (boolean);
}
