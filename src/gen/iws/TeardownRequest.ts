// Original file: proto/workspace_daemon.proto


export interface TeardownRequest {
}

export interface TeardownRequest__Output {
}
