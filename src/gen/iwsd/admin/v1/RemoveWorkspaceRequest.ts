// Original file: proto/admin.proto


export interface RemoveWorkspaceRequest {
  'id'?: (string);
  /**
   * A workspace that is not registered (e.g. torn down already when its
   * container exited) is no error: the answer has removed = false.
   */
  'ifPresent'?: (boolean);
}

export interface RemoveWorkspaceRequest__Output {
  'id': (string);
  /**
   * A workspace that is not registered (e.g. torn down already when its
   * container exited) is no error: the answer has removed = false.
   */
  'ifPresent': (boolean);
}
