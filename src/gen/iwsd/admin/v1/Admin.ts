// Original file: proto/admin.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { AddWorkspaceRequest as _iwsd_admin_v1_AddWorkspaceRequest, AddWorkspaceRequest__Output as _iwsd_admin_v1_AddWorkspaceRequest__Output } from '../../../iwsd/admin/v1/AddWorkspaceRequest.js';
import type { ListWorkspacesRequest as _iwsd_admin_v1_ListWorkspacesRequest, ListWorkspacesRequest__Output as _iwsd_admin_v1_ListWorkspacesRequest__Output } from '../../../iwsd/admin/v1/ListWorkspacesRequest.js';
import type { ListWorkspacesResponse as _iwsd_admin_v1_ListWorkspacesResponse, ListWorkspacesResponse__Output as _iwsd_admin_v1_ListWorkspacesResponse__Output } from '../../../iwsd/admin/v1/ListWorkspacesResponse.js';
import type { RemoveWorkspaceRequest as _iwsd_admin_v1_RemoveWorkspaceRequest, RemoveWorkspaceRequest__Output as _iwsd_admin_v1_RemoveWorkspaceRequest__Output } from '../../../iwsd/admin/v1/RemoveWorkspaceRequest.js';
import type { RemoveWorkspaceResponse as _iwsd_admin_v1_RemoveWorkspaceResponse, RemoveWorkspaceResponse__Output as _iwsd_admin_v1_RemoveWorkspaceResponse__Output } from '../../../iwsd/admin/v1/RemoveWorkspaceResponse.js';
import type { Workspace as _iwsd_admin_v1_Workspace, Workspace__Output as _iwsd_admin_v1_Workspace__Output } from '../../../iwsd/admin/v1/Workspace.js';

export interface AdminClient extends grpc.Client {
  /**
   * AddWorkspace registers a running container and starts its socket.
   */
  AddWorkspace(argument: _iwsd_admin_v1_AddWorkspaceRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_iwsd_admin_v1_Workspace__Output>): grpc.ClientUnaryCall;
  AddWorkspace(argument: _iwsd_admin_v1_AddWorkspaceRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_iwsd_admin_v1_Workspace__Output>): grpc.ClientUnaryCall;
  AddWorkspace(argument: _iwsd_admin_v1_AddWorkspaceRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_iwsd_admin_v1_Workspace__Output>): grpc.ClientUnaryCall;
  AddWorkspace(argument: _iwsd_admin_v1_AddWorkspaceRequest, callback: grpc.requestCallback<_iwsd_admin_v1_Workspace__Output>): grpc.ClientUnaryCall;
  /**
   * AddWorkspace registers a running container and starts its socket.
   */
  addWorkspace(argument: _iwsd_admin_v1_AddWorkspaceRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_iwsd_admin_v1_Workspace__Output>): grpc.ClientUnaryCall;
  addWorkspace(argument: _iwsd_admin_v1_AddWorkspaceRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_iwsd_admin_v1_Workspace__Output>): grpc.ClientUnaryCall;
  addWorkspace(argument: _iwsd_admin_v1_AddWorkspaceRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_iwsd_admin_v1_Workspace__Output>): grpc.ClientUnaryCall;
  addWorkspace(argument: _iwsd_admin_v1_AddWorkspaceRequest, callback: grpc.requestCallback<_iwsd_admin_v1_Workspace__Output>): grpc.ClientUnaryCall;
  
  /**
   * ListWorkspaces lists the registered workspaces.
   */
  ListWorkspaces(argument: _iwsd_admin_v1_ListWorkspacesRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_iwsd_admin_v1_ListWorkspacesResponse__Output>): grpc.ClientUnaryCall;
  ListWorkspaces(argument: _iwsd_admin_v1_ListWorkspacesRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_iwsd_admin_v1_ListWorkspacesResponse__Output>): grpc.ClientUnaryCall;
  ListWorkspaces(argument: _iwsd_admin_v1_ListWorkspacesRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_iwsd_admin_v1_ListWorkspacesResponse__Output>): grpc.ClientUnaryCall;
  ListWorkspaces(argument: _iwsd_admin_v1_ListWorkspacesRequest, callback: grpc.requestCallback<_iwsd_admin_v1_ListWorkspacesResponse__Output>): grpc.ClientUnaryCall;
  /**
   * ListWorkspaces lists the registered workspaces.
   */
  listWorkspaces(argument: _iwsd_admin_v1_ListWorkspacesRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_iwsd_admin_v1_ListWorkspacesResponse__Output>): grpc.ClientUnaryCall;
  listWorkspaces(argument: _iwsd_admin_v1_ListWorkspacesRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_iwsd_admin_v1_ListWorkspacesResponse__Output>): grpc.ClientUnaryCall;
  listWorkspaces(argument: _iwsd_admin_v1_ListWorkspacesRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_iwsd_admin_v1_ListWorkspacesResponse__Output>): grpc.ClientUnaryCall;
  listWorkspaces(argument: _iwsd_admin_v1_ListWorkspacesRequest, callback: grpc.requestCallback<_iwsd_admin_v1_ListWorkspacesResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * RemoveWorkspace stops a workspace's socket and forgets it.
   */
  RemoveWorkspace(argument: _iwsd_admin_v1_RemoveWorkspaceRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_iwsd_admin_v1_RemoveWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  RemoveWorkspace(argument: _iwsd_admin_v1_RemoveWorkspaceRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_iwsd_admin_v1_RemoveWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  RemoveWorkspace(argument: _iwsd_admin_v1_RemoveWorkspaceRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_iwsd_admin_v1_RemoveWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  RemoveWorkspace(argument: _iwsd_admin_v1_RemoveWorkspaceRequest, callback: grpc.requestCallback<_iwsd_admin_v1_RemoveWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  /**
   * RemoveWorkspace stops a workspace's socket and forgets it.
   */
  removeWorkspace(argument: _iwsd_admin_v1_RemoveWorkspaceRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_iwsd_admin_v1_RemoveWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  removeWorkspace(argument: _iwsd_admin_v1_RemoveWorkspaceRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_iwsd_admin_v1_RemoveWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  removeWorkspace(argument: _iwsd_admin_v1_RemoveWorkspaceRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_iwsd_admin_v1_RemoveWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  removeWorkspace(argument: _iwsd_admin_v1_RemoveWorkspaceRequest, callback: grpc.requestCallback<_iwsd_admin_v1_RemoveWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  
}

export interface AdminHandlers extends grpc.UntypedServiceImplementation {
  /**
   * AddWorkspace registers a running container and starts its socket.
   */
  AddWorkspace: grpc.handleUnaryCall<_iwsd_admin_v1_AddWorkspaceRequest__Output, _iwsd_admin_v1_Workspace>;
  
  /**
   * ListWorkspaces lists the registered workspaces.
   */
  ListWorkspaces: grpc.handleUnaryCall<_iwsd_admin_v1_ListWorkspacesRequest__Output, _iwsd_admin_v1_ListWorkspacesResponse>;
  
  /**
   * RemoveWorkspace stops a workspace's socket and forgets it.
   */
  RemoveWorkspace: grpc.handleUnaryCall<_iwsd_admin_v1_RemoveWorkspaceRequest__Output, _iwsd_admin_v1_RemoveWorkspaceResponse>;
  
}

export interface AdminDefinition extends grpc.ServiceDefinition {
  AddWorkspace: MethodDefinition<_iwsd_admin_v1_AddWorkspaceRequest, _iwsd_admin_v1_Workspace, _iwsd_admin_v1_AddWorkspaceRequest__Output, _iwsd_admin_v1_Workspace__Output>
  ListWorkspaces: MethodDefinition<_iwsd_admin_v1_ListWorkspacesRequest, _iwsd_admin_v1_ListWorkspacesResponse, _iwsd_admin_v1_ListWorkspacesRequest__Output, _iwsd_admin_v1_ListWorkspacesResponse__Output>
  RemoveWorkspace: MethodDefinition<_iwsd_admin_v1_RemoveWorkspaceRequest, _iwsd_admin_v1_RemoveWorkspaceResponse, _iwsd_admin_v1_RemoveWorkspaceRequest__Output, _iwsd_admin_v1_RemoveWorkspaceResponse__Output>
}
