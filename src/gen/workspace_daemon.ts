import type * as grpc from '@grpc/grpc-js';
import type { EnumTypeDefinition, MessageTypeDefinition } from '@grpc/proto-loader';

import type { InWorkspaceServiceClient as _iws_InWorkspaceServiceClient, InWorkspaceServiceDefinition as _iws_InWorkspaceServiceDefinition } from './iws/InWorkspaceService.js';
import type { MountProcRequest as _iws_MountProcRequest, MountProcRequest__Output as _iws_MountProcRequest__Output } from './iws/MountProcRequest.js';
import type { MountProcResponse as _iws_MountProcResponse, MountProcResponse__Output as _iws_MountProcResponse__Output } from './iws/MountProcResponse.js';
import type { PrepareForUserNSRequest as _iws_PrepareForUserNSRequest, PrepareForUserNSRequest__Output as _iws_PrepareForUserNSRequest__Output } from './iws/PrepareForUserNSRequest.js';
import type { PrepareForUserNSResponse as _iws_PrepareForUserNSResponse, PrepareForUserNSResponse__Output as _iws_PrepareForUserNSResponse__Output } from './iws/PrepareForUserNSResponse.js';
import type { TeardownRequest as _iws_TeardownRequest, TeardownRequest__Output as _iws_TeardownRequest__Output } from './iws/TeardownRequest.js';
import type { TeardownResponse as _iws_TeardownResponse, TeardownResponse__Output as _iws_TeardownResponse__Output } from './iws/TeardownResponse.js';
import type { UmountProcRequest as _iws_UmountProcRequest, UmountProcRequest__Output as _iws_UmountProcRequest__Output } from './iws/UmountProcRequest.js';
import type { UmountProcResponse as _iws_UmountProcResponse, UmountProcResponse__Output as _iws_UmountProcResponse__Output } from './iws/UmountProcResponse.js';
import type { WriteIDMappingRequest as _iws_WriteIDMappingRequest, WriteIDMappingRequest__Output as _iws_WriteIDMappingRequest__Output } from './iws/WriteIDMappingRequest.js';
import type { WriteIDMappingResponse as _iws_WriteIDMappingResponse, WriteIDMappingResponse__Output as _iws_WriteIDMappingResponse__Output } from './iws/WriteIDMappingResponse.js';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  iws: {
    FSShiftMethod: EnumTypeDefinition
    InWorkspaceService: SubtypeConstructor<typeof grpc.Client, _iws_InWorkspaceServiceClient> & { service: _iws_InWorkspaceServiceDefinition }
    MountProcRequest: MessageTypeDefinition<_iws_MountProcRequest, _iws_MountProcRequest__Output>
    MountProcResponse: MessageTypeDefinition<_iws_MountProcResponse, _iws_MountProcResponse__Output>
    PrepareForUserNSRequest: MessageTypeDefinition<_iws_PrepareForUserNSRequest, _iws_PrepareForUserNSRequest__Output>
    PrepareForUserNSResponse: MessageTypeDefinition<_iws_PrepareForUserNSResponse, _iws_PrepareForUserNSResponse__Output>
    TeardownRequest: MessageTypeDefinition<_iws_TeardownRequest, _iws_TeardownRequest__Output>
    TeardownResponse: MessageTypeDefinition<_iws_TeardownResponse, _iws_TeardownResponse__Output>
    UmountProcRequest: MessageTypeDefinition<_iws_UmountProcRequest, _iws_UmountProcRequest__Output>
    UmountProcResponse: MessageTypeDefinition<_iws_UmountProcResponse, _iws_UmountProcResponse__Output>
    WriteIDMappingRequest: MessageTypeDefinition<_iws_WriteIDMappingRequest, _iws_WriteIDMappingRequest__Output>
    WriteIDMappingResponse: MessageTypeDefinition<_iws_WriteIDMappingResponse, _iws_WriteIDMappingResponse__Output>
  }
}

