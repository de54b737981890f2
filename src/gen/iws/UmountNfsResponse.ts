// Original file: proto/workspace_daemon.proto


export interface UmountNfsResponse {
}

export interface UmountNfsResponse__Output {
}
