// Original file: proto/admin.proto


export interface ListWorkspacesRequest {
}

export interface ListWorkspacesRequest__Output {
}
