// Original file: proto/workspace_daemon.proto

import type { Resources as _iws_Resources, Resources__Output as _iws_Resources__Output } from '../iws/Resources.js';

export interface WorkspaceInfoResponse {
  'resources'?: (_iws_Resources | null);
}

export interface WorkspaceInfoResponse__Output {
  'resources': (_iws_Resources__Output | null);
}
