// Original file: proto/workspace_daemon.proto


export interface UmountProcResponse {
}

export interface UmountProcResponse__Output {
}
