import type * as grpc from '@grpc/grpc-js';
import type { MessageTypeDefinition } from '@grpc/proto-loader';

import type { AddWorkspaceRequest as _iwsd_admin_v1_AddWorkspaceRequest, AddWorkspaceRequest__Output as _iwsd_admin_v1_AddWorkspaceRequest__Output } from './iwsd/admin/v1/AddWorkspaceRequest.js';
import type { AdminClient as _iwsd_admin_v1_AdminClient, AdminDefinition as _iwsd_admin_v1_AdminDefinition } from './iwsd/admin/v1/Admin.js';
import type { IdMapping as _iwsd_admin_v1_IdMapping, IdMapping__Output as _iwsd_admin_v1_IdMapping__Output } from './iwsd/admin/v1/IdMapping.js';
import type { IdRange as _iwsd_admin_v1_IdRange, IdRange__Output as _iwsd_admin_v1_IdRange__Output } from './iwsd/admin/v1/IdRange.js';
import type { ListWorkspacesRequest as _iwsd_admin_v1_ListWorkspacesRequest, ListWorkspacesRequest__Output as _iwsd_admin_v1_ListWorkspacesRequest__Output } from './iwsd/admin/v1/ListWorkspacesRequest.js';
import type { ListWorkspacesResponse as _iwsd_admin_v1_ListWorkspacesResponse, ListWorkspacesResponse__Output as _iwsd_admin_v1_ListWorkspacesResponse__Output } from './iwsd/admin/v1/ListWorkspacesResponse.js';
import type { RemoveWorkspaceRequest as _iwsd_admin_v1_RemoveWorkspaceRequest, RemoveWorkspaceRequest__Output as _iwsd_admin_v1_RemoveWorkspaceRequest__Output } from './iwsd/admin/v1/RemoveWorkspaceRequest.js';
import type { RemoveWorkspaceResponse as _iwsd_admin_v1_RemoveWorkspaceResponse, RemoveWorkspaceResponse__Output as _iwsd_admin_v1_RemoveWorkspaceResponse__Output } from './iwsd/admin/v1/RemoveWorkspaceResponse.js';
import type { Workspace as _iwsd_admin_v1_Workspace, Workspace__Output as _iwsd_admin_v1_Workspace__Output } from './iwsd/admin/v1/Workspace.js';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  iwsd: {
    admin: {
      v1: {
        AddWorkspaceRequest: MessageTypeDefinition<_iwsd_admin_v1_AddWorkspaceRequest, _iwsd_admin_v1_AddWorkspaceRequest__Output>
        Admin: SubtypeConstructor<typeof grpc.Client, _iwsd_admin_v1_AdminClient> & { service: _iwsd_admin_v1_AdminDefinition }
        IdMapping: MessageTypeDefinition<_iwsd_admin_v1_IdMapping, _iwsd_admin_v1_IdMapping__Output>
        IdRange: MessageTypeDefinition<_iwsd_admin_v1_IdRange, _iwsd_admin_v1_IdRange__Output>
        ListWorkspacesRequest: MessageTypeDefinition<_iwsd_admin_v1_ListWorkspacesRequest, _iwsd_admin_v1_ListWorkspacesRequest__Output>
        ListWorkspacesResponse: MessageTypeDefinition<_iwsd_admin_v1_ListWorkspacesResponse, _iwsd_admin_v1_ListWorkspacesResponse__Output>
        RemoveWorkspaceRequest: MessageTypeDefinition<_iwsd_admin_v1_RemoveWorkspaceRequest, _iwsd_admin_v1_RemoveWorkspaceRequest__Output>
        RemoveWorkspaceResponse: MessageTypeDefinition<_iwsd_admin_v1_RemoveWorkspaceResponse, _iwsd_admin_v1_RemoveWorkspaceResponse__Output>
        Workspace: MessageTypeDefinition<_iwsd_admin_v1_Workspace, _iwsd_admin_v1_Workspace__Output>
      }
    }
  }
}

