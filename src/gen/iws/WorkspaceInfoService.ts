// Original file: proto/workspace_daemon.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { WorkspaceInfoRequest as _iws_WorkspaceInfoRequest, WorkspaceInfoRequest__Output as _iws_WorkspaceInfoRequest__Output } from '../iws/WorkspaceInfoRequest.js';
import type { WorkspaceInfoResponse as _iws_WorkspaceInfoResponse, WorkspaceInfoResponse__Output as _iws_WorkspaceInfoResponse__Output } from '../iws/WorkspaceInfoResponse.js';

/**
 * WorkspaceInfoService serves WorkspaceInfo alone (Gitpod's supervisor calls it
 * on the same socket). Added by Gitpod after the original contract.
 */
export interface WorkspaceInfoServiceClient extends grpc.Client {
  /**
   * Get information about the workspace
   */
  WorkspaceInfo(argument: _iws_WorkspaceInfoRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_iws_WorkspaceInfoResponse__Output>): grpc.ClientUnaryCall;
  WorkspaceInfo(argument: _iws_WorkspaceInfoRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_iws_WorkspaceInfoResponse__Output>): grpc.ClientUnaryCall;
  WorkspaceInfo(argument: _iws_WorkspaceInfoRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_iws_WorkspaceInfoResponse__Output>): grpc.ClientUnaryCall;
  WorkspaceInfo(argument: _iws_WorkspaceInfoRequest, callback: grpc.requestCallback<_iws_WorkspaceInfoResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Get information about the workspace
   */
  workspaceInfo(argument: _iws_WorkspaceInfoRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_iws_WorkspaceInfoResponse__Output>): grpc.ClientUnaryCall;
  workspaceInfo(argument: _iws_WorkspaceInfoRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_iws_WorkspaceInfoResponse__Output>): grpc.ClientUnaryCall;
  workspaceInfo(argument: _iws_WorkspaceInfoRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_iws_WorkspaceInfoResponse__Output>): grpc.ClientUnaryCall;
  workspaceInfo(argument: _iws_WorkspaceInfoRequest, callback: grpc.requestCallback<_iws_WorkspaceInfoResponse__Output>): grpc.ClientUnaryCall;
  
}

/**
 * WorkspaceInfoService serves WorkspaceInfo alone (Gitpod's supervisor calls it
 * on the same socket). Added by Gitpod after the original contract.
 */
export interface WorkspaceInfoServiceHandlers extends grpc.UntypedServiceImplementation {
  /**
   * Get information about the workspace
   */
  WorkspaceInfo: grpc.handleUnaryCall<_iws_WorkspaceInfoRequest__Output, _iws_WorkspaceInfoResponse>;
  
}

export interface WorkspaceInfoServiceDefinition extends grpc.ServiceDefinition {
  WorkspaceInfo: MethodDefinition<_iws_WorkspaceInfoRequest, _iws_WorkspaceInfoResponse, _iws_WorkspaceInfoRequest__Output, _iws_WorkspaceInfoResponse__Output>
}
