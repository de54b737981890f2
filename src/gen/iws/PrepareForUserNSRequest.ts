// Original file: proto/workspace_daemon.proto


export interface PrepareForUserNSRequest {
}

export interface PrepareForUserNSRequest__Output {
}
