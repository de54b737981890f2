// Original file: proto/admin.proto


export interface RemoveWorkspaceResponse {
}

export interface RemoveWorkspaceResponse__Output {
}
