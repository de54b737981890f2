// Original file: proto/workspace_daemon.proto


export interface EvacuateCGroupRequest {
}

export interface EvacuateCGroupRequest__Output {
}
