// Original file: proto/workspace_daemon.proto


export interface EvacuateCGroupResponse {
}

export interface EvacuateCGroupResponse__Output {
}
