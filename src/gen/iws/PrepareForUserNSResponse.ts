// Original file: proto/workspace_daemon.proto

import type { FSShiftMethod as _iws_FSShiftMethod, FSShiftMethod__Output as _iws_FSShiftMethod__Output } from '../iws/FSShiftMethod.js';

export interface PrepareForUserNSResponse {
  'fsShift'?: (_iws_FSShiftMethod);
  'fullWorkspaceBackup'?: (boolean);
}

export interface PrepareForUserNSResponse__Output {
  'fsShift': (_iws_FSShiftMethod__Output);
  'fullWorkspaceBackup': (boolean);
}
