// Original file: proto/admin.proto


export interface RemoveWorkspaceRequest {
  'id'?: (string);
}

export interface RemoveWorkspaceRequest__Output {
  'id': (string);
}
