// Original file: proto/workspace_daemon.proto

import type { FSShiftMethod as _iws_FSShiftMethod, FSShiftMethod__Output as _iws_FSShiftMethod__Output } from '../iws/FSShiftMethod.js';

export interface PrepareForUserNSResponse {
  'fsShift'?: (_iws_FSShiftMethod);
  'fullWorkspaceBackup'?: (boolean);
  /**
   * Whether the workspace's content lives on a persistent volume claim (Gitpod's
   * field 3; Gitpod reserved field 2, which iwsd keeps for older clients).
   */
  'persistentVolumeClaim'?: (boolean);
}

export interface PrepareForUserNSResponse__Output {
  'fsShift': (_iws_FSShiftMethod__Output);
  'fullWorkspaceBackup': (boolean);
  /**
   * Whether the workspace's content lives on a persistent volume claim (Gitpod's
   * field 3; Gitpod reserved field 2, which iwsd keeps for older clients).
   */
  'persistentVolumeClaim': (boolean);
}
