// Original file: proto/workspace_daemon.proto


export interface MountNfsResponse {
}

export interface MountNfsResponse__Output {
}
