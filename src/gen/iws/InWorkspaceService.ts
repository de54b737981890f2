// Original file: proto/workspace_daemon.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { EvacuateCGroupRequest as _iws_EvacuateCGroupRequest, EvacuateCGroupRequest__Output as _iws_EvacuateCGroupRequest__Output } from '../iws/EvacuateCGroupRequest.js';
import type { EvacuateCGroupResponse as _iws_EvacuateCGroupResponse, EvacuateCGroupResponse__Output as _iws_EvacuateCGroupResponse__Output } from '../iws/EvacuateCGroupResponse.js';
import type { MountNfsRequest as _iws_MountNfsRequest, MountNfsRequest__Output as _iws_MountNfsRequest__Output } from '../iws/MountNfsRequest.js';
import type { MountNfsResponse as _iws_MountNfsResponse, MountNfsResponse__Output as _iws_MountNfsResponse__Output } from '../iws/MountNfsResponse.js';
import type { MountProcRequest as _iws_MountProcRequest, MountProcRequest__Output as _iws_MountProcRequest__Output } from '../iws/MountProcRequest.js';
import type { MountProcResponse as _iws_MountProcResponse, MountProcResponse__Output as _iws_MountProcResponse__Output } from '../iws/MountProcResponse.js';
import type { PrepareForUserNSRequest as _iws_PrepareForUserNSRequest, PrepareForUserNSRequest__Output as _iws_PrepareForUserNSRequest__Output } from '../iws/PrepareForUserNSRequest.js';
import type { PrepareForUserNSResponse as _iws_PrepareForUserNSResponse, PrepareForUserNSResponse__Output as _iws_PrepareForUserNSResponse__Output } from '../iws/PrepareForUserNSResponse.js';
import type { SetupPairVethsRequest as _iws_SetupPairVethsRequest, SetupPairVethsRequest__Output as _iws_SetupPairVethsRequest__Output } from '../iws/SetupPairVethsRequest.js';
import type { SetupPairVethsResponse as _iws_SetupPairVethsResponse, SetupPairVethsResponse__Output as _iws_SetupPairVethsResponse__Output } from '../iws/SetupPairVethsResponse.js';
import type { TeardownRequest as _iws_TeardownRequest, TeardownRequest__Output as _iws_TeardownRequest__Output } from '../iws/TeardownRequest.js';
import type { TeardownResponse as _iws_TeardownResponse, TeardownResponse__Output as _iws_TeardownResponse__Output } from '../iws/TeardownResponse.js';
import type { UmountNfsRequest as _iws_UmountNfsRequest, UmountNfsRequest__Output as _iws_UmountNfsRequest__Output } from '../iws/UmountNfsRequest.js';
import type { UmountNfsResponse as _iws_UmountNfsResponse, UmountNfsResponse__Output as _iws_UmountNfsResponse__Output } from '../iws/UmountNfsResponse.js';
import type { UmountProcRequest as _iws_UmountProcRequest, UmountProcRequest__Output as _iws_UmountProcRequest__Output } from '../iws/UmountProcRequest.js';
import type { UmountProcResponse as _iws_UmountProcResponse, UmountProcResponse__Output as _iws_UmountProcResponse__Output } from '../iws/UmountProcResponse.js';
import type { WipingTeardownRequest as _iws_WipingTeardownRequest, WipingTeardownRequest__Output as _iws_WipingTeardownRequest__Output } from '../iws/WipingTeardownRequest.js';
import type { WipingTeardownResponse as _iws_WipingTeardownResponse, WipingTeardownResponse__Output as _iws_WipingTeardownResponse__Output } from '../iws/WipingTeardownResponse.js';
import type { WorkspaceInfoRequest as _iws_WorkspaceInfoRequest, WorkspaceInfoRequest__Output as _iws_WorkspaceInfoRequest__Output } from '../iws/WorkspaceInfoRequest.js';
import type { WorkspaceInfoResponse as _iws_WorkspaceInfoResponse, WorkspaceInfoResponse__Output as _iws_WorkspaceInfoResponse__Output } from '../iws/WorkspaceInfoResponse.js';
import type { WriteIDMappingRequest as _iws_WriteIDMappingRequest, WriteIDMappingRequest__Output as _iws_WriteIDMappingRequest__Output } from '../iws/WriteIDMappingRequest.js';
import type { WriteIDMappingResponse as _iws_WriteIDMappingResponse, WriteIDMappingResponse__Output as _iws_WriteIDMappingResponse__Output } from '../iws/WriteIDMappingResponse.js';

export interface InWorkspaceServiceClient extends grpc.Client {
  /**
   * EvacuateCGroup empties the workspace pod cgroup and produces a new substructure.
   * In combination with introducing a new cgroup namespace, we can create a situation
   * where the subcontrollers are enabled and the ring2-visible cgroup is of type "domain".
   * Added by Gitpod after the original contract; same name and messages as Gitpod's.
   */
  EvacuateCGroup(argument: _iws_EvacuateCGroupRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_iws_EvacuateCGroupResponse__Output>): grpc.ClientUnaryCall;
  EvacuateCGroup(argument: _iws_EvacuateCGroupRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_iws_EvacuateCGroupResponse__Output>): grpc.ClientUnaryCall;
  EvacuateCGroup(argument: _iws_EvacuateCGroupRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_iws_EvacuateCGroupResponse__Output>): grpc.ClientUnaryCall;
  EvacuateCGroup(argument: _iws_EvacuateCGroupRequest, callback: grpc.requestCallback<_iws_EvacuateCGroupResponse__Output>): grpc.ClientUnaryCall;
  /**
   * EvacuateCGroup empties the workspace pod cgroup and produces a new substructure.
   * In combination with introducing a new cgroup namespace, we can create a situation
   * where the subcontrollers are enabled and the ring2-visible cgroup is of type "domain".
   * Added by Gitpod after the original contract; same name and messages as Gitpod's.
   */
  evacuateCGroup(argument: _iws_EvacuateCGroupRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_iws_EvacuateCGroupResponse__Output>): grpc.ClientUnaryCall;
  evacuateCGroup(argument: _iws_EvacuateCGroupRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_iws_EvacuateCGroupResponse__Output>): grpc.ClientUnaryCall;
  evacuateCGroup(argument: _iws_EvacuateCGroupRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_iws_EvacuateCGroupResponse__Output>): grpc.ClientUnaryCall;
  evacuateCGroup(argument: _iws_EvacuateCGroupRequest, callback: grpc.requestCallback<_iws_EvacuateCGroupResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * MountNfs mounts a nfs share into the container's rootfs.
   * The PID must be in the PID namespace of the workspace container.
   * The path is relative to the mount namespace of the PID.
   * Added by Gitpod after the original contract.
   */
  MountNfs(argument: _iws_MountNfsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_iws_MountNfsResponse__Output>): grpc.ClientUnaryCall;
  MountNfs(argument: _iws_MountNfsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_iws_MountNfsResponse__Output>): grpc.ClientUnaryCall;
  MountNfs(argument: _iws_MountNfsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_iws_MountNfsResponse__Output>): grpc.ClientUnaryCall;
  MountNfs(argument: _iws_MountNfsRequest, callback: grpc.requestCallback<_iws_MountNfsResponse__Output>): grpc.ClientUnaryCall;
  /**
   * MountNfs mounts a nfs share into the container's rootfs.
   * The PID must be in the PID namespace of the workspace container.
   * The path is relative to the mount namespace of the PID.
   * Added by Gitpod after the original contract.
   */
  mountNfs(argument: _iws_MountNfsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_iws_MountNfsResponse__Output>): grpc.ClientUnaryCall;
  mountNfs(argument: _iws_MountNfsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_iws_MountNfsResponse__Output>): grpc.ClientUnaryCall;
  mountNfs(argument: _iws_MountNfsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_iws_MountNfsResponse__Output>): grpc.ClientUnaryCall;
  mountNfs(argument: _iws_MountNfsRequest, callback: grpc.requestCallback<_iws_MountNfsResponse__Output>): grpc.ClientUnaryCall;
  
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
   * Set up a pair of veths that interconnect the specified PID and the workspace container's network namespace.
   * Added by Gitpod after the original contract.
   */
  SetupPairVeths(argument: _iws_SetupPairVethsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_iws_SetupPairVethsResponse__Output>): grpc.ClientUnaryCall;
  SetupPairVeths(argument: _iws_SetupPairVethsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_iws_SetupPairVethsResponse__Output>): grpc.ClientUnaryCall;
  SetupPairVeths(argument: _iws_SetupPairVethsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_iws_SetupPairVethsResponse__Output>): grpc.ClientUnaryCall;
  SetupPairVeths(argument: _iws_SetupPairVethsRequest, callback: grpc.requestCallback<_iws_SetupPairVethsResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Set up a pair of veths that interconnect the specified PID and the workspace container's network namespace.
   * Added by Gitpod after the original contract.
   */
  setupPairVeths(argument: _iws_SetupPairVethsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_iws_SetupPairVethsResponse__Output>): grpc.ClientUnaryCall;
  setupPairVeths(argument: _iws_SetupPairVethsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_iws_SetupPairVethsResponse__Output>): grpc.ClientUnaryCall;
  setupPairVeths(argument: _iws_SetupPairVethsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_iws_SetupPairVethsResponse__Output>): grpc.ClientUnaryCall;
  setupPairVeths(argument: _iws_SetupPairVethsRequest, callback: grpc.requestCallback<_iws_SetupPairVethsResponse__Output>): grpc.ClientUnaryCall;
  
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
   * UmountNfs unmounts a nfs share from the container's rootfs.
   * The PID must be in the PID namespace of the workspace container.
   * The path is relative to the mount namespace of the PID.
   * Added by Gitpod after the original contract.
   */
  UmountNfs(argument: _iws_UmountNfsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_iws_UmountNfsResponse__Output>): grpc.ClientUnaryCall;
  UmountNfs(argument: _iws_UmountNfsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_iws_UmountNfsResponse__Output>): grpc.ClientUnaryCall;
  UmountNfs(argument: _iws_UmountNfsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_iws_UmountNfsResponse__Output>): grpc.ClientUnaryCall;
  UmountNfs(argument: _iws_UmountNfsRequest, callback: grpc.requestCallback<_iws_UmountNfsResponse__Output>): grpc.ClientUnaryCall;
  /**
   * UmountNfs unmounts a nfs share from the container's rootfs.
   * The PID must be in the PID namespace of the workspace container.
   * The path is relative to the mount namespace of the PID.
   * Added by Gitpod after the original contract.
   */
  umountNfs(argument: _iws_UmountNfsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_iws_UmountNfsResponse__Output>): grpc.ClientUnaryCall;
  umountNfs(argument: _iws_UmountNfsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_iws_UmountNfsResponse__Output>): grpc.ClientUnaryCall;
  umountNfs(argument: _iws_UmountNfsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_iws_UmountNfsResponse__Output>): grpc.ClientUnaryCall;
  umountNfs(argument: _iws_UmountNfsRequest, callback: grpc.requestCallback<_iws_UmountNfsResponse__Output>): grpc.ClientUnaryCall;
  
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
   * WipingTeardown undoes everything PrepareForUserNS does, especially unmounts shiftfs mounts.
   * Added by Gitpod after the original contract.
   */
  WipingTeardown(argument: _iws_WipingTeardownRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_iws_WipingTeardownResponse__Output>): grpc.ClientUnaryCall;
  WipingTeardown(argument: _iws_WipingTeardownRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_iws_WipingTeardownResponse__Output>): grpc.ClientUnaryCall;
  WipingTeardown(argument: _iws_WipingTeardownRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_iws_WipingTeardownResponse__Output>): grpc.ClientUnaryCall;
  WipingTeardown(argument: _iws_WipingTeardownRequest, callback: grpc.requestCallback<_iws_WipingTeardownResponse__Output>): grpc.ClientUnaryCall;
  /**
   * WipingTeardown undoes everything PrepareForUserNS does, especially unmounts shiftfs mounts.
   * Added by Gitpod after the original contract.
   */
  wipingTeardown(argument: _iws_WipingTeardownRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_iws_WipingTeardownResponse__Output>): grpc.ClientUnaryCall;
  wipingTeardown(argument: _iws_WipingTeardownRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_iws_WipingTeardownResponse__Output>): grpc.ClientUnaryCall;
  wipingTeardown(argument: _iws_WipingTeardownRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_iws_WipingTeardownResponse__Output>): grpc.ClientUnaryCall;
  wipingTeardown(argument: _iws_WipingTeardownRequest, callback: grpc.requestCallback<_iws_WipingTeardownResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Get information about the workspace. Added by Gitpod after the original contract.
   */
  WorkspaceInfo(argument: _iws_WorkspaceInfoRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_iws_WorkspaceInfoResponse__Output>): grpc.ClientUnaryCall;
  WorkspaceInfo(argument: _iws_WorkspaceInfoRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_iws_WorkspaceInfoResponse__Output>): grpc.ClientUnaryCall;
  WorkspaceInfo(argument: _iws_WorkspaceInfoRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_iws_WorkspaceInfoResponse__Output>): grpc.ClientUnaryCall;
  WorkspaceInfo(argument: _iws_WorkspaceInfoRequest, callback: grpc.requestCallback<_iws_WorkspaceInfoResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Get information about the workspace. Added by Gitpod after the original contract.
   */
  workspaceInfo(argument: _iws_WorkspaceInfoRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_iws_WorkspaceInfoResponse__Output>): grpc.ClientUnaryCall;
  workspaceInfo(argument: _iws_WorkspaceInfoRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_iws_WorkspaceInfoResponse__Output>): grpc.ClientUnaryCall;
  workspaceInfo(argument: _iws_WorkspaceInfoRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_iws_WorkspaceInfoResponse__Output>): grpc.ClientUnaryCall;
  workspaceInfo(argument: _iws_WorkspaceInfoRequest, callback: grpc.requestCallback<_iws_WorkspaceInfoResponse__Output>): grpc.ClientUnaryCall;
  
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
   * EvacuateCGroup empties the workspace pod cgroup and produces a new substructure.
   * In combination with introducing a new cgroup namespace, we can create a situation
   * where the subcontrollers are enabled and the ring2-visible cgroup is of type "domain".
   * Added by Gitpod after the original contract; same name and messages as Gitpod's.
   */
  EvacuateCGroup: grpc.handleUnaryCall<_iws_EvacuateCGroupRequest__Output, _iws_EvacuateCGroupResponse>;
  
  /**
   * MountNfs mounts a nfs share into the container's rootfs.
   * The PID must be in the PID namespace of the workspace container.
   * The path is relative to the mount namespace of the PID.
   * Added by Gitpod after the original contract.
   */
  MountNfs: grpc.handleUnaryCall<_iws_MountNfsRequest__Output, _iws_MountNfsResponse>;
  
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
   * Set up a pair of veths that interconnect the specified PID and the workspace container's network namespace.
   * Added by Gitpod after the original contract.
   */
  SetupPairVeths: grpc.handleUnaryCall<_iws_SetupPairVethsRequest__Output, _iws_SetupPairVethsResponse>;
  
  /**
   * Teardown prepares workspace content backups and unmounts shiftfs mounts. The canary is supposed to be triggered
   * when the workspace is about to shut down, e.g. using the PreStop hook of a Kubernetes container.
   */
  Teardown: grpc.handleUnaryCall<_iws_TeardownRequest__Output, _iws_TeardownResponse>;
  
  /**
   * UmountNfs unmounts a nfs share from the container's rootfs.
   * The PID must be in the PID namespace of the workspace container.
   * The path is relative to the mount namespace of the PID.
   * Added by Gitpod after the original contract.
   */
  UmountNfs: grpc.handleUnaryCall<_iws_UmountNfsRequest__Output, _iws_UmountNfsResponse>;
  
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
   * WipingTeardown undoes everything PrepareForUserNS does, especially unmounts shiftfs mounts.
   * Added by Gitpod after the original contract.
   */
  WipingTeardown: grpc.handleUnaryCall<_iws_WipingTeardownRequest__Output, _iws_WipingTeardownResponse>;
  
  /**
   * Get information about the workspace. Added by Gitpod after the original contract.
   */
  WorkspaceInfo: grpc.handleUnaryCall<_iws_WorkspaceInfoRequest__Output, _iws_WorkspaceInfoResponse>;
  
  /**
   * WriteIDMapping writes a new user/group ID mapping to /proc/<pid>/uid_map (gid_map respectively). This is used
   * for user namespaces and is available four times every 10 seconds.
   */
  WriteIDMapping: grpc.handleUnaryCall<_iws_WriteIDMappingRequest__Output, _iws_WriteIDMappingResponse>;
  
}

export interface InWorkspaceServiceDefinition extends grpc.ServiceDefinition {
  EvacuateCGroup: MethodDefinition<_iws_EvacuateCGroupRequest, _iws_EvacuateCGroupResponse, _iws_EvacuateCGroupRequest__Output, _iws_EvacuateCGroupResponse__Output>
  MountNfs: MethodDefinition<_iws_MountNfsRequest, _iws_MountNfsResponse, _iws_MountNfsRequest__Output, _iws_MountNfsResponse__Output>
  MountProc: MethodDefinition<_iws_MountProcRequest, _iws_MountProcResponse, _iws_MountProcRequest__Output, _iws_MountProcResponse__Output>
  MountSysfs: MethodDefinition<_iws_MountProcRequest, _iws_MountProcResponse, _iws_MountProcRequest__Output, _iws_MountProcResponse__Output>
  PrepareForUserNS: MethodDefinition<_iws_PrepareForUserNSRequest, _iws_PrepareForUserNSResponse, _iws_PrepareForUserNSRequest__Output, _iws_PrepareForUserNSResponse__Output>
  SetupPairVeths: MethodDefinition<_iws_SetupPairVethsRequest, _iws_SetupPairVethsResponse, _iws_SetupPairVethsRequest__Output, _iws_SetupPairVethsResponse__Output>
  Teardown: MethodDefinition<_iws_TeardownRequest, _iws_TeardownResponse, _iws_TeardownRequest__Output, _iws_TeardownResponse__Output>
  UmountNfs: MethodDefinition<_iws_UmountNfsRequest, _iws_UmountNfsResponse, _iws_UmountNfsRequest__Output, _iws_UmountNfsResponse__Output>
  UmountProc: MethodDefinition<_iws_UmountProcRequest, _iws_UmountProcResponse, _iws_UmountProcRequest__Output, _iws_UmountProcResponse__Output>
  UmountSysfs: MethodDefinition<_iws_UmountProcRequest, _iws_UmountProcResponse, _iws_UmountProcRequest__Output, _iws_UmountProcResponse__Output>
  WipingTeardown: MethodDefinition<_iws_WipingTeardownRequest, _iws_WipingTeardownResponse, _iws_WipingTeardownRequest__Output, _iws_WipingTeardownResponse__Output>
  WorkspaceInfo: MethodDefinition<_iws_WorkspaceInfoRequest, _iws_WorkspaceInfoResponse, _iws_WorkspaceInfoRequest__Output, _iws_WorkspaceInfoResponse__Output>
  WriteIDMapping: MethodDefinition<_iws_WriteIDMappingRequest, _iws_WriteIDMappingResponse, _iws_WriteIDMappingRequest__Output, _iws_WriteIDMappingResponse__Output>
}
