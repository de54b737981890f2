// Original file: proto/admin.proto

import type { Workspace as _iwsd_admin_v1_Workspace, Workspace__Output as _iwsd_admin_v1_Workspace__Output } from '../../../iwsd/admin/v1/Workspace.js';

export interface ListWorkspacesResponse {
  'workspaces'?: (_iwsd_admin_v1_Workspace)[];
}

export interface ListWorkspacesResponse__Output {
  'workspaces': (_iwsd_admin_v1_Workspace__Output)[];
}
