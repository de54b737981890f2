// Original file: proto/workspace_daemon.proto

import type { Cpu as _iws_Cpu, Cpu__Output as _iws_Cpu__Output } from '../iws/Cpu.js';
import type { Memory as _iws_Memory, Memory__Output as _iws_Memory__Output } from '../iws/Memory.js';

export interface Resources {
  'cpu'?: (_iws_Cpu | null);
  'memory'?: (_iws_Memory | null);
}

export interface Resources__Output {
  'cpu': (_iws_Cpu__Output | null);
  'memory': (_iws_Memory__Output | null);
}
