import type * as grpc from '@grpc/grpc-js';
import type { EnumTypeDefinition, MessageTypeDefinition } from '@grpc/proto-loader';

import type { Cpu as _iws_Cpu, Cpu__Output as _iws_Cpu__Output } from './iws/Cpu.js';
import type { EvacuateCGroupRequest as _iws_EvacuateCGroupRequest, EvacuateCGroupRequest__Output as _iws_EvacuateCGroupRequest__Output } from './iws/EvacuateCGroupRequest.js';
import type { EvacuateCGroupResponse as _iws_EvacuateCGroupResponse, EvacuateCGroupResponse__Output as _iws_EvacuateCGroupResponse__Output } from './iws/EvacuateCGroupResponse.js';
import type { InWorkspaceServiceClient as _iws_InWorkspaceServiceClient, InWorkspaceServiceDefinition as _iws_InWorkspaceServiceDefinition } from './iws/InWorkspaceService.js';
import type { Memory as _iws_Memory, Memory__Output as _iws_Memory__Output } from './iws/Memory.js';
import type { MountNfsRequest as _iws_MountNfsRequest, MountNfsRequest__Output as _iws_MountNfsRequest__Output } from './iws/MountNfsRequest.js';
import type { MountNfsResponse as _iws_MountNfsResponse, MountNfsResponse__Output as _iws_MountNfsResponse__Output } from './iws/MountNfsResponse.js';
import type { MountProcRequest as _iws_MountProcRequest, MountProcRequest__Output as _iws_MountProcRequest__Output } from './iws/MountProcRequest.js';
import type { MountProcResponse as _iws_MountProcResponse, MountProcResponse__Output as _iws_MountProcResponse__Output } from './iws/MountProcResponse.js';
import type { PrepareForUserNSRequest as _iws_PrepareForUserNSRequest, PrepareForUserNSRequest__Output as _iws_PrepareForUserNSRequest__Output } from './iws/PrepareForUserNSRequest.js';
import type { PrepareForUserNSResponse as _iws_PrepareForUserNSResponse, PrepareForUserNSResponse__Output as _iws_PrepareForUserNSResponse__Output } from './iws/PrepareForUserNSResponse.js';
import type { Resources as _iws_Resources, Resources__Output as _iws_Resources__Output } from './iws/Resources.js';
import type { SetupPairVethsRequest as _iws_SetupPairVethsRequest, SetupPairVethsRequest__Output as _iws_SetupPairVethsRequest__Output } from './iws/SetupPairVethsRequest.js';
import type { SetupPairVethsResponse as _iws_SetupPairVethsResponse, SetupPairVethsResponse__Output as _iws_SetupPairVethsResponse__Output } from './iws/SetupPairVethsResponse.js';
import type { TeardownRequest as _iws_TeardownRequest, TeardownRequest__Output as _iws_TeardownRequest__Output } from './iws/TeardownRequest.js';
import type { TeardownResponse as _iws_TeardownResponse, TeardownResponse__Output as _iws_TeardownResponse__Output } from './iws/TeardownResponse.js';
import type { UmountNfsRequest as _iws_UmountNfsRequest, UmountNfsRequest__Output as _iws_UmountNfsRequest__Output } from './iws/UmountNfsRequest.js';
import type { UmountNfsResponse as _iws_UmountNfsResponse, UmountNfsResponse__Output as _iws_UmountNfsResponse__Output } from './iws/UmountNfsResponse.js';
import type { UmountProcRequest as _iws_UmountProcRequest, UmountProcRequest__Output as _iws_UmountProcRequest__Output } from './iws/UmountProcRequest.js';
import type { UmountProcResponse as _iws_UmountProcResponse, UmountProcResponse__Output as _iws_UmountProcResponse__Output } from './iws/UmountProcResponse.js';
import type { WipingTeardownRequest as _iws_WipingTeardownRequest, WipingTeardownRequest__Output as _iws_WipingTeardownRequest__Output } from './iws/WipingTeardownRequest.js';
import type { WipingTeardownResponse as _iws_WipingTeardownResponse, WipingTeardownResponse__Output as _iws_WipingTeardownResponse__Output } from './iws/WipingTeardownResponse.js';
import type { WorkspaceInfoRequest as _iws_WorkspaceInfoRequest, WorkspaceInfoRequest__Output as _iws_WorkspaceInfoRequest__Output } from './iws/WorkspaceInfoRequest.js';
import type { WorkspaceInfoResponse as _iws_WorkspaceInfoResponse, WorkspaceInfoResponse__Output as _iws_WorkspaceInfoResponse__Output } from './iws/WorkspaceInfoResponse.js';
import type { WorkspaceInfoServiceClient as _iws_WorkspaceInfoServiceClient, WorkspaceInfoServiceDefinition as _iws_WorkspaceInfoServiceDefinition } from './iws/WorkspaceInfoService.js';
import type { WriteIDMappingRequest as _iws_WriteIDMappingRequest, WriteIDMappingRequest__Output as _iws_WriteIDMappingRequest__Output } from './iws/WriteIDMappingRequest.js';
import type { WriteIDMappingResponse as _iws_WriteIDMappingResponse, WriteIDMappingResponse__Output as _iws_WriteIDMappingResponse__Output } from './iws/WriteIDMappingResponse.js';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  iws: {
    Cpu: MessageTypeDefinition<_iws_Cpu, _iws_Cpu__Output>
    EvacuateCGroupRequest: MessageTypeDefinition<_iws_EvacuateCGroupRequest, _iws_EvacuateCGroupRequest__Output>
    EvacuateCGroupResponse: MessageTypeDefinition<_iws_EvacuateCGroupResponse, _iws_EvacuateCGroupResponse__Output>
    FSShiftMethod: EnumTypeDefinition
    InWorkspaceService: SubtypeConstructor<typeof grpc.Client, _iws_InWorkspaceServiceClient> & { service: _iws_InWorkspaceServiceDefinition }
    Memory: MessageTypeDefinition<_iws_Memory, _iws_Memory__Output>
    MountNfsRequest: MessageTypeDefinition<_iws_MountNfsRequest, _iws_MountNfsRequest__Output>
    MountNfsResponse: MessageTypeDefinition<_iws_MountNfsResponse, _iws_MountNfsResponse__Output>
    MountProcRequest: MessageTypeDefinition<_iws_MountProcRequest, _iws_MountProcRequest__Output>
    MountProcResponse: MessageTypeDefinition<_iws_MountProcResponse, _iws_MountProcResponse__Output>
    PrepareForUserNSRequest: MessageTypeDefinition<_iws_PrepareForUserNSRequest, _iws_PrepareForUserNSRequest__Output>
    PrepareForUserNSResponse: MessageTypeDefinition<_iws_PrepareForUserNSResponse, _iws_PrepareForUserNSResponse__Output>
    Resources: MessageTypeDefinition<_iws_Resources, _iws_Resources__Output>
    SetupPairVethsRequest: MessageTypeDefinition<_iws_SetupPairVethsRequest, _iws_SetupPairVethsRequest__Output>
    SetupPairVethsResponse: MessageTypeDefinition<_iws_SetupPairVethsResponse, _iws_SetupPairVethsResponse__Output>
    TeardownRequest: MessageTypeDefinition<_iws_TeardownRequest, _iws_TeardownRequest__Output>
    TeardownResponse: MessageTypeDefinition<_iws_TeardownResponse, _iws_TeardownResponse__Output>
    UmountNfsRequest: MessageTypeDefinition<_iws_UmountNfsRequest, _iws_UmountNfsRequest__Output>
    UmountNfsResponse: MessageTypeDefinition<_iws_UmountNfsResponse, _iws_UmountNfsResponse__Output>
    UmountProcRequest: MessageTypeDefinition<_iws_UmountProcRequest, _iws_UmountProcRequest__Output>
    UmountProcResponse: MessageTypeDefinition<_iws_UmountProcResponse, _iws_UmountProcResponse__Output>
    WipingTeardownRequest: MessageTypeDefinition<_iws_WipingTeardownRequest, _iws_WipingTeardownRequest__Output>
    WipingTeardownResponse: MessageTypeDefinition<_iws_WipingTeardownResponse, _iws_WipingTeardownResponse__Output>
    WorkspaceInfoRequest: MessageTypeDefinition<_iws_WorkspaceInfoRequest, _iws_WorkspaceInfoRequest__Output>
    WorkspaceInfoResponse: MessageTypeDefinition<_iws_WorkspaceInfoResponse, _iws_WorkspaceInfoResponse__Output>
    /**
     * WorkspaceInfoService serves WorkspaceInfo alone (Gitpod's supervisor calls it
     * on the same socket). Added by Gitpod after the original contract.
     */
    WorkspaceInfoService: SubtypeConstructor<typeof grpc.Client, _iws_WorkspaceInfoServiceClient> & { service: _iws_WorkspaceInfoServiceDefinition }
    WriteIDMappingRequest: MessageTypeDefinition<_iws_WriteIDMappingRequest, _iws_WriteIDMappingRequest__Output>
    WriteIDMappingResponse: MessageTypeDefinition<_iws_WriteIDMappingResponse, _iws_WriteIDMappingResponse__Output>
  }
}

