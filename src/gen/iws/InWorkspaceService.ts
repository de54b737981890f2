// Original file: proto/workspace_daemon.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { MountProcRequest as _iws_MountProcRequest, MountProcRequest__Output as _iws_MountProcRequest__Output } from '../iws/MountProcRequest.js';
import type { MountProcResponse as _iws_MountProcResponse, MountProcResponse__Output as _iws_MountProcResponse__Output } from '../iws/MountProcResponse.js';
import type { PrepareForUserNSRequest as _iws_PrepareForUserNSRequest, PrepareForUserNSRequest__Output as _iws_PrepareForUserNSRequest__Output } from '../iws/PrepareForUserNSRequest.js';
import type { PrepareForUserNSResponse as _iws_PrepareForUserNSResponse, PrepareForUserNSResponse__Output as _iws_PrepareForUserNSResponse__Output } from '../iws/PrepareForUserNSResponse.js';
import type { TeardownRequest as _iws_TeardownRequest, TeardownRequest__Output as _iws_TeardownRequest__Output } from '../iws/TeardownRequest.js';
import type { TeardownResponse as _iws_TeardownResponse, TeardownResponse__Output as _iws_TeardownResponse__Output } from '../iws/TeardownResponse.js';
import type { UmountProcRequest as _iws_UmountProcRequest, UmountProcRequest__Output as _iws_UmountProcRequest__Output } from '../iws/UmountProcRequest.js';
import type { UmountProcResponse as _iws_UmountProcResponse, UmountProcResponse__Output as _iws_UmountProcResponse__Output } from '../iws/UmountProcResponse.js';
import type { WriteIDMappingRequest as _iws_WriteIDMappingRequest, WriteIDMappingRequest__Output as _iws_WriteIDMappingRequest__Output } from '../iws/WriteIDMappingRequest.js';
import type { WriteIDMappingResponse as _iws_WriteIDMappingResponse, WriteIDMappingResponse__Output as _iws_WriteIDMappingResponse__Output } from '../iws/WriteIDMappingResponse.js';

export interface InWorkspaceServiceClient extends grpc.Client {
  /**
   * MountProc mounts a masked proc in the container's rootfs.
   * The PID must be in the PID namespace of the workspace container.
   * The path is relative to the mount namespace of the PID.
   */
  MountProc(argument: _iws_MountProcRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_iws_MountProcResponse__Output>): grpc.ClientUnaryCall;
  MountProc(argument: _iws_MountProcRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_iws_MountProcResponse__Output>): grpc.ClientUnaryCall;
  MountProc(argument: _iws_MountProcRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_iws_MountProcResponse__Output>): grpc.ClientUnaryCall;
  MountProc(argument: _iws_MountProcRequest, callback: grpc.requestCallback<_iws_MountProcResponse__Output>): grpc.ClientUnaryCall;
  /**
   * MountProc mounts a masked proc in the container's rootfs.
   * The PID must be in the PID namespace of the workspace container.
   * The path is relative to the mount namespace of the PID.
   */
  mountProc(argument: _iws_MountProcRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_iws_MountProcResponse__Output>): grpc.ClientUnaryCall;
  mountProc(argument: _iws_MountProcRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_iws_MountProcResponse__Output>): grpc.ClientUnaryCall;
  mountProc(argument: _iws_MountProcRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_iws_MountProcResponse__Output>): grpc.ClientUnaryCall;
  mountProc(argument: _iws_MountProcRequest, callback: grpc.requestCallback<_iws_MountProcResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * MountSysfs mounts a masked sysfs in the container's rootfs.
   * The PID must be in the PID namespace of the workspace container.
   * The path is relative to the mount namespace of the PID.
   */
  MountSysfs(argument: _iws_MountProcRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_iws_MountProcResponse__Output>): grpc.ClientUnaryCall;
  MountSysfs(argument: _iws_MountProcRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_iws_MountProcResponse__Output>): grpc.ClientUnaryCall;
  MountSysfs(argument: _iws_MountProcRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_iws_MountProcResponse__Output>): grpc.ClientUnaryCall;
  MountSysfs(argument: _iws_MountProcRequest, callback: grpc.requestCallback<_iws_MountProcResponse__Output>): grpc.ClientUnaryCall;
  /**
   * MountSysfs mounts a masked sysfs in the container's rootfs.
   * The PID must be in the PID namespace of the workspace container.
   * The path is relative to the mount namespace of the PID.
   */
  mountSysfs(argument: _iws_MountProcRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_iws_MountProcResponse__Output>): grpc.ClientUnaryCall;
  mountSysfs(argument: _iws_MountProcRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_iws_MountProcResponse__Output>): grpc.ClientUnaryCall;
  mountSysfs(argument: _iws_MountProcRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_iws_MountProcResponse__Output>): grpc.ClientUnaryCall;
  mountSysfs(argument: _iws_MountProcRequest, callback: grpc.requestCallback<_iws_MountProcResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * PrepareForUserNS prepares a workspace container for wrapping it in a user namespace.
   * A container that called this function MUST call Teardown.
   * 
   * This call will make the workspace container's rootfs shared, and mount the workspace
   * container's rootfs as a shiftfs mark under `/.workspace/mark` if the workspace has
   * the daemon hostPath mount. Can only be used once per workspace.
   */
  PrepareForUserNS(argument: _iws_PrepareForUserNSRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_iws_PrepareForUserNSResponse__Output>): grpc.ClientUnaryCall;
  PrepareForUserNS(argument: _iws_PrepareForUserNSRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_iws_PrepareForUserNSResponse__Output>): grpc.ClientUnaryCall;
  PrepareForUserNS(argument: _iws_PrepareForUserNSRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_iws_PrepareForUserNSResponse__Output>): grpc.ClientUnaryCall;
  PrepareForUserNS(argument: _iws_PrepareForUserNSRequest, callback: grpc.requestCallback<_iws_PrepareForUserNSResponse__Output>): grpc.ClientUnaryCall;
  /**
   * PrepareForUserNS prepares a workspace container for wrapping it in a user namespace.
   * A container that called this function MUST call Teardown.
   * 
   * This call will make the workspace container's rootfs shared, and mount the workspace
   * container's rootfs as a shiftfs mark under `/.workspace/mark` if the workspace has
   * the daemon hostPath mount. Can only be used once per workspace.
   */
  prepareForUserNs(argument: _iws_PrepareForUserNSRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_iws_PrepareForUserNSResponse__Output>): grpc.ClientUnaryCall;
  prepareForUserNs(argument: _iws_PrepareForUserNSRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_iws_PrepareForUserNSResponse__Output>): grpc.ClientUnaryCall;
  prepareForUserNs(argument: _iws_PrepareForUserNSRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_iws_PrepareForUserNSResponse__Output>): grpc.ClientUnaryCall;
  prepareForUserNs(argument: _iws_PrepareForUserNSRequest, callback: grpc.requestCallback<_iws_PrepareForUserNSResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Teardown prepares workspace content backups and unmounts shiftfs mounts. The canary is supposed to be triggered
   * when the workspace is about to shut down, e.g. using the PreStop hook of a Kubernetes container.
   */
  Teardown(argument: _iws_TeardownRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_iws_TeardownResponse__Output>): grpc.ClientUnaryCall;
  Teardown(argument: _iws_TeardownRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_iws_TeardownResponse__Output>): grpc.ClientUnaryCall;
  Teardown(argument: _iws_TeardownRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_iws_TeardownResponse__Output>): grpc.ClientUnaryCall;
  Teardown(argument: _iws_TeardownRequest, callback: grpc.requestCallback<_iws_TeardownResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Teardown prepares workspace content backups and unmounts shiftfs mounts. The canary is supposed to be triggered
   * when the workspace is about to shut down, e.g. using the PreStop hook of a Kubernetes container.
   */
  teardown(argument: _iws_TeardownRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_iws_TeardownResponse__Output>): grpc.ClientUnaryCall;
  teardown(argument: _iws_TeardownRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_iws_TeardownResponse__Output>): grpc.ClientUnaryCall;
  teardown(argument: _iws_TeardownRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_iws_TeardownResponse__Output>): grpc.ClientUnaryCall;
  teardown(argument: _iws_TeardownRequest, callback: grpc.requestCallback<_iws_TeardownResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * UmountProc unmounts a masked proc from the container's rootfs.
   * The PID must be in the PID namespace of the workspace container.
   * The path is relative to the mount namespace of the PID.
   */
  UmountProc(argument: _iws_UmountProcRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_iws_UmountProcResponse__Output>): grpc.ClientUnaryCall;
  UmountProc(argument: _iws_UmountProcRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_iws_UmountProcResponse__Output>): grpc.ClientUnaryCall;
  UmountProc(argument: _iws_UmountProcRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_iws_UmountProcResponse__Output>): grpc.ClientUnaryCall;
  UmountProc(argument: _iws_UmountProcRequest, callback: grpc.requestCallback<_iws_UmountProcResponse__Output>): grpc.ClientUnaryCall;
  /**
   * UmountProc unmounts a masked proc from the container's rootfs.
   * The PID must be in the PID namespace of the workspace container.
   * The path is relative to the mount namespace of the PID.
   */
  umountProc(argument: _iws_UmountProcRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_iws_UmountProcResponse__Output>): grpc.ClientUnaryCall;
  umountProc(argument: _iws_UmountProcRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_iws_UmountProcResponse__Output>): grpc.ClientUnaryCall;
  umountProc(argument: _iws_UmountProcRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_iws_UmountProcResponse__Output>): grpc.ClientUnaryCall;
  umountProc(argument: _iws_UmountProcRequest, callback: grpc.requestCallback<_iws_UmountProcResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * UmountSysfs unmounts a masked sysfs from the container's rootfs.
   * The PID must be in the PID namespace of the workspace container.
   * The path is relative to the mount namespace of the PID.
   */
  UmountSysfs(argument: _iws_UmountProcRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_iws_UmountProcResponse__Output>): grpc.ClientUnaryCall;
  UmountSysfs(argument: _iws_UmountProcRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_iws_UmountProcResponse__Output>): grpc.ClientUnaryCall;
  UmountSysfs(argument: _iws_UmountProcRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_iws_UmountProcResponse__Output>): grpc.ClientUnaryCall;
  UmountSysfs(argument: _iws_UmountProcRequest, callback: grpc.requestCallback<_iws_UmountProcResponse__Output>): grpc.ClientUnaryCall;
  /**
   * UmountSysfs unmounts a masked sysfs from the container's rootfs.
   * The PID must be in the PID namespace of the workspace container.
   * The path is relative to the mount namespace of the PID.
   */
  umountSysfs(argument: _iws_UmountProcRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_iws_UmountProcResponse__Output>): grpc.ClientUnaryCall;
  umountSysfs(argument: _iws_UmountProcRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_iws_UmountProcResponse__Output>): grpc.ClientUnaryCall;
  umountSysfs(argument: _iws_UmountProcRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_iws_UmountProcResponse__Output>): grpc.ClientUnaryCall;
  umountSysfs(argument: _iws_UmountProcRequest, callback: grpc.requestCallback<_iws_UmountProcResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * WriteIDMapping writes a new user/group ID mapping to /proc/<pid>/uid_map (gid_map respectively). This is used
   * for user namespaces and is available four times every 10 seconds.
   */
  WriteIDMapping(argument: _iws_WriteIDMappingRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_iws_WriteIDMappingResponse__Output>): grpc.ClientUnaryCall;
  WriteIDMapping(argument: _iws_WriteIDMappingRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_iws_WriteIDMappingResponse__Output>): grpc.ClientUnaryCall;
  WriteIDMapping(argument: _iws_WriteIDMappingRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_iws_WriteIDMappingResponse__Output>): grpc.ClientUnaryCall;
  WriteIDMapping(argument: _iws_WriteIDMappingRequest, callback: grpc.requestCallback<_iws_WriteIDMappingResponse__Output>): grpc.ClientUnaryCall;
  /**
   * WriteIDMapping writes a new user/group ID mapping to /proc/<pid>/uid_map (gid_map respectively). This is used
   * for user namespaces and is available four times every 10 seconds.
   */
  writeIdMapping(argument: _iws_WriteIDMappingRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_iws_WriteIDMappingResponse__Output>): grpc.ClientUnaryCall;
  writeIdMapping(argument: _iws_WriteIDMappingRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_iws_WriteIDMappingResponse__Output>): grpc.ClientUnaryCall;
  writeIdMapping(argument: _iws_WriteIDMappingRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_iws_WriteIDMappingResponse__Output>): grpc.ClientUnaryCall;
  writeIdMapping(argument: _iws_WriteIDMappingRequest, callback: grpc.requestCallback<_iws_WriteIDMappingResponse__Output>): grpc.ClientUnaryCall;
  
}

export interface InWorkspaceServiceHandlers extends grpc.UntypedServiceImplementation {
  /**
   * MountProc mounts a masked proc in the container's rootfs.
   * The PID must be in the PID namespace of the workspace container.
   * The path is relative to the mount namespace of the PID.
   */
  MountProc: grpc.handleUnaryCall<_iws_MountProcRequest__Output, _iws_MountProcResponse>;
  
  /**
   * MountSysfs mounts a masked sysfs in the container's rootfs.
   * The PID must be in the PID namespace of the workspace container.
   * The path is relative to the mount namespace of the PID.
   */
  MountSysfs: grpc.handleUnaryCall<_iws_MountProcRequest__Output, _iws_MountProcResponse>;
  
  /**
   * PrepareForUserNS prepares a workspace container for wrapping it in a user namespace.
   * A container that called this function MUST call Teardown.
   * 
   * This call will make the workspace container's rootfs shared, and mount the workspace
   * container's rootfs as a shiftfs mark under `/.workspace/mark` if the workspace has
   * the daemon hostPath mount. Can only be used once per workspace.
   */
  PrepareForUserNS: grpc.handleUnaryCall<_iws_PrepareForUserNSRequest__Output, _iws_PrepareForUserNSResponse>;
  
  /**
   * Teardown prepares workspace content backups and unmounts shiftfs mounts. The canary is supposed to be triggered
   * when the workspace is about to shut down, e.g. using the PreStop hook of a Kubernetes container.
   */
  Teardown: grpc.handleUnaryCall<_iws_TeardownRequest__Output, _iws_TeardownResponse>;
  
  /**
   * UmountProc unmounts a masked proc from the container's rootfs.
   * The PID must be in the PID namespace of the workspace container.
   * The path is relative to the mount namespace of the PID.
   */
  UmountProc: grpc.handleUnaryCall<_iws_UmountProcRequest__Output, _iws_UmountProcResponse>;
  
  /**
   * UmountSysfs unmounts a masked sysfs from the container's rootfs.
   * The PID must be in the PID namespace of the workspace container.
   * The path is relative to the mount namespace of the PID.
   */
  UmountSysfs: grpc.handleUnaryCall<_iws_UmountProcRequest__Output, _iws_UmountProcResponse>;
  
  /**
   * WriteIDMapping writes a new user/group ID mapping to /proc/<pid>/uid_map (gid_map respectively). This is used
   * for user namespaces and is available four times every 10 seconds.
   */
  WriteIDMapping: grpc.handleUnaryCall<_iws_WriteIDMappingRequest__Output, _iws_WriteIDMappingResponse>;
  
}

export interface InWorkspaceServiceDefinition extends grpc.ServiceDefinition {
  MountProc: MethodDefinition<_iws_MountProcRequest, _iws_MountProcResponse, _iws_MountProcRequest__Output, _iws_MountProcResponse__Output>
  MountSysfs: MethodDefinition<_iws_MountProcRequest, _iws_MountProcResponse, _iws_MountProcRequest__Output, _iws_MountProcResponse__Output>
  PrepareForUserNS: MethodDefinition<_iws_PrepareForUserNSRequest, _iws_PrepareForUserNSResponse, _iws_PrepareForUserNSRequest__Output, _iws_PrepareForUserNSResponse__Output>
  Teardown: MethodDefinition<_iws_TeardownRequest, _iws_TeardownResponse, _iws_TeardownRequest__Output, _iws_TeardownResponse__Output>
  UmountProc: MethodDefinition<_iws_UmountProcRequest, _iws_UmountProcResponse, _iws_UmountProcRequest__Output, _iws_UmountProcResponse__Output>
  UmountSysfs: MethodDefinition<_iws_UmountProcRequest, _iws_UmountProcResponse, _iws_UmountProcRequest__Output, _iws_UmountProcResponse__Output>
  WriteIDMapping: MethodDefinition<_iws_WriteIDMappingRequest, _iws_WriteIDMappingResponse, _iws_WriteIDMappingRequest__Output, _iws_WriteIDMappingResponse__Output>
}
