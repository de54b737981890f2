// Original file: proto/workspace_daemon.proto


export interface MountProcResponse {
}

export interface MountProcResponse__Output {
}
