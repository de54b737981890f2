// A bare grpc-js server in a process of its own (the bench's reference for
// what gRPC alone costs): InWorkspaceService with a no-op WriteIDMapping,
// the daemon's proto definition (dist/proto.js), on unix socket argv[2].
// Prints "ready" once bound; exits on SIGTERM.
import * as grpc from '@grpc/grpc-js';

import { workspaceProto } from '../dist/proto.js';

const server = new grpc.Server();
server.addService(workspaceProto().iws.InWorkspaceService.service, {
  WriteIDMapping: (_call, cb) => cb(null, { message: '', errorCode: 0 }),
});
server.bindAsync(`unix:${process.argv[2]}`, grpc.ServerCredentials.createInsecure(), (err) => {
  if (err) {
    process.stderr.write(`bare server: ${err.message}\n`);
    process.exit(1);
  }
  process.stdout.write('ready\n');
});
process.on('SIGTERM', () => {
  server.forceShutdown();
  process.exit(0);
});
