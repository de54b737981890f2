// Original file: proto/workspace_daemon.proto


export interface WipingTeardownRequest {
  'doWipe'?: (boolean);
}

export interface WipingTeardownRequest__Output {
  'doWipe': (boolean);
}
