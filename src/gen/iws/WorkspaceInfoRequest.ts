// Original file: proto/workspace_daemon.proto


export interface WorkspaceInfoRequest {
}

export interface WorkspaceInfoRequest__Output {
}
