// Original file: proto/workspace_daemon.proto


export interface SetupPairVethsResponse {
}

export interface SetupPairVethsResponse__Output {
}
