// Original file: proto/admin.proto


export interface RemoveWorkspaceResponse {
  /**
   * Whether this call removed it (false only with if_present).
   */
  'removed'?: (boolean);
}

export interface RemoveWorkspaceResponse__Output {
  /**
   * Whether this call removed it (false only with if_present).
   */
  'removed': (boolean);
}
