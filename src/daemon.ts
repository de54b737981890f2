/**
 * The daemon: an admin socket, a registry of workspaces, and one gRPC server
 * per workspace socket. Holds no kernel logic; every privileged step is a
 * call into the native library.
 */
import { chmod, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';

import * as grpc from '@grpc/grpc-js';
import type { RateLimiterMemory } from 'rate-limiter-flexible';

import { checkWorkspaceId, type Config } from './config.js';
import { IwsError } from './errors.js';
import type { Logger } from './log.js';
import * as native from './native.js';
import { adminHandlers } from './admin.js';
import { adminProto, workspaceProto } from './proto.js';
import { GuardedSocket } from './guardedSocket.js';
import { createWriteIdMappingLimiter, handlersFor, WorkspaceService, type PeerOf } from './service.js';
import { bindUnix, shutdown, unlinkQuiet } from './sockets.js';
import { StateStore, type WorkspaceState } from './state.js';
import { defaultShift, workspaceDir, workspaceSocket, type Workspace } from './workspace.js';

export interface AddWorkspaceOptions {
  id: string;
  hostPid: number;
  rootRange?: native.IdRange | undefined;
  userRanges?: native.IdRange[] | undefined;
  shiftMapping?: native.IdMapping[] | undefined;
  markPath?: string | undefined;
  fullWorkspaceBackup?: boolean | undefined;
}

export interface WorkspaceInfo {
  id: string;
  hostPid: number;
  socketPath: string;
  rootRange: native.IdRange;
  userRanges: native.IdRange[];
  alive: boolean;
  shiftMapping: native.IdMapping[];
  markPath: string;
  fullWorkspaceBackup: boolean;
  prepared: boolean;
  tornDown: boolean;
}

/**
 * Workspace sockets face hostile clients: the largest valid request (a
 * 340-line map) is about 12 KiB, so anything far larger is refused by grpc-js
 * before it is parsed.
 */
export const WORKSPACE_SERVER_OPTIONS: grpc.ServerOptions = {
  'grpc.max_receive_message_length': 64 * 1024,
  'grpc.max_concurrent_streams': 16,
};

interface Entry {
  workspace: Workspace;
  server: grpc.Server;
  socket: GuardedSocket;
}

export class Daemon {
  readonly adminSocket: string;
  #workspaces = new Map<string, Entry>();
  #pending = new Set<string>();
  #admin: grpc.Server | undefined;
  #limiter: RateLimiterMemory;
  #store: StateStore;
  #closed = false;

  private constructor(
    readonly config: Config,
    readonly log: Logger,
    readonly pidStrategy: 'ioctl' | 'scan',
    readonly mountStrategy: 'detached' | 'fallback',
  ) {
    this.adminSocket = join(config.stateDir, 'admin.sock');
    const rl = config.rateLimits.writeIdMapping;
    this.#limiter = createWriteIdMappingLimiter(rl.points, rl.durationSeconds);
    this.#store = new StateStore(config.stateDir);
  }

  /** A workspace's FUSE dirs: host-only, never inside the bind-mounted workspace dir. */
  fuseOptions(id: string): native.FuseOptions {
    const d = join(this.config.stateDir, 'fuse', id);
    return { binary: this.config.shift.fuseOverlayfs, upper: join(d, 'upper'), work: join(d, 'work'), staging: join(d, 'mnt') };
  }

  /**
   * The persisted state of a workspace if it belongs to this very container
   * (same init PID and start time, e.g. after a daemon restart), else fresh.
   * A corrupt state file is quarantined and reported.
   */
  async #stateFor(id: string, container: native.Container): Promise<WorkspaceState> {
    const identity = { hostPid: container.hostPid ?? 0, startTime: container.startTime ?? 0 };
    let stored: WorkspaceState | undefined;
    try {
      stored = await this.#store.load(id);
    } catch (err) {
      const q = await this.#store.quarantine(id);
      this.log.error({ workspace: id, error: (err as Error).message, quarantined: q }, `corrupt state of workspace ${id} moved to ${q}`);
    }
    if (stored && stored.container.hostPid === identity.hostPid && stored.container.startTime === identity.startTime) {
      return stored;
    }
    return { version: 1, id, container: identity, prepared: false, tornDown: false, mark: null };
  }

  /** Creates the state dir, probes the kernel and serves the admin socket. */
  static async start(config: Config, log: Logger): Promise<Daemon> {
    if (process.getuid?.() !== 0) {
      log.warn('iwsd is not running as root: registering workspaces and writing id maps will fail');
    }
    native.validateIdPolicy(config.idPolicy);
    const strategy = await native.resolvePidStrategy(config.pidStrategy);
    const mountStrategy = await native.resolveMountStrategy(config.mountStrategy);
    const d = new Daemon(config, log, strategy, mountStrategy);
    await mkdir(join(config.stateDir, 'workspaces'), { recursive: true, mode: 0o700 });
    await chmod(config.stateDir, 0o700);
    const server = new grpc.Server();
    server.addService(adminProto().iwsd.admin.v1.Admin.service, adminHandlers(d));
    await bindUnix(server, d.adminSocket, 0o600);
    d.#admin = server;
    const features = await native.probeKernel();
    log.info(
      { stateDir: config.stateDir, adminSocket: d.adminSocket, pidStrategy: strategy, mountStrategy, kernel: features },
      `iwsd serving admin socket ${d.adminSocket}`,
    );
    return d;
  }

  /** Registers a running container and starts its workspace socket. */
  async addWorkspace(opts: AddWorkspaceOptions): Promise<WorkspaceInfo> {
    if (this.#closed) throw new IwsError('UNAVAILABLE', 'iwsd is shutting down');
    const id = checkWorkspaceId(opts.id);
    if (this.#workspaces.has(id) || this.#pending.has(id)) {
      throw new IwsError('FAILED_PRECONDITION', `workspace ${id} is already registered; remove it first (iwsd workspace rm --id ${id})`);
    }
    const policy: native.IdPolicy = {
      rootRange: opts.rootRange ?? this.config.idPolicy.rootRange,
      userRanges: opts.userRanges?.length ? opts.userRanges : this.config.idPolicy.userRanges,
      allowHostRoot: this.config.idPolicy.allowHostRoot,
    };
    native.validateIdPolicy(policy);
    this.#pending.add(id);
    const dir = workspaceDir(this.config.stateDir, id);
    let container: native.Container | undefined;
    let server: grpc.Server | undefined;
    let guard: GuardedSocket | undefined;
    try {
      container = await native.openContainer(opts.hostPid);
      await mkdir(dir, { recursive: true, mode: 0o755 });
      const state = await this.#stateFor(id, container);
      await this.#store.save(state);
      const workspace: Workspace = {
        id,
        hostPid: opts.hostPid,
        container,
        policy,
        dir,
        socketPath: workspaceSocket(this.config.stateDir, id),
        mounts: new Map(),
        shift: opts.shiftMapping?.length ? opts.shiftMapping : defaultShift(policy),
        markPath: opts.markPath || this.config.shift.markPath,
        fullWorkspaceBackup: opts.fullWorkspaceBackup ?? this.config.shift.fullWorkspaceBackup,
        state,
      };
      const log = this.log.child({ workspace: id });
      const service = new WorkspaceService(workspace, {
        log,
        store: this.#store,
        shiftMethod: this.config.shift.method,
        fuseOptions: (wid) => this.fuseOptions(wid),
        pidStrategy: this.pidStrategy,
        mountStrategy: this.mountStrategy,
        writeIdMappingLimiter: this.#limiter,
        proc: this.config.proc,
        sysfs: { readOnly: this.config.sysfs.readOnly, masks: { masked: this.config.sysfs.masked, readOnly: [] } },
        mountsPerWorkspace: this.config.limits.mountsPerWorkspace,
      });
      server = new grpc.Server(WORKSPACE_SERVER_OPTIONS);
      const peerOf: PeerOf = (call) => guard?.peerOf(call);
      server.addService(workspaceProto().iws.InWorkspaceService.service, handlersFor(service, log, peerOf));
      // The workspace's own users must be able to connect from inside the
      // container: who may call is decided per connection (the peer must be
      // inside the workspace), not by file mode.
      const c = container;
      guard = await GuardedSocket.listen({
        path: workspace.socketPath,
        mode: 0o666,
        server,
        check: (fd) => native.checkPeer(c, fd),
        log,
      });
      this.#workspaces.set(id, { workspace, server, socket: guard });
      log.info({ hostPid: opts.hostPid, socket: workspace.socketPath, policy }, `workspace ${id} registered`);
      return this.#info(workspace);
    } catch (err) {
      await guard?.close();
      container?.close();
      if (server) server.forceShutdown();
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
      throw err;
    } finally {
      this.#pending.delete(id);
    }
  }

  /** Stops a workspace's socket, releases its handles and removes its dir. */
  async removeWorkspace(id: string): Promise<void> {
    checkWorkspaceId(id);
    const entry = this.#workspaces.get(id);
    if (!entry) throw new IwsError('NOT_FOUND', `no workspace ${id} is registered (see iwsd workspace ls)`);
    this.#workspaces.delete(id);
    await entry.socket.close();
    await shutdown(entry.server);
    entry.workspace.container.close();
    await rm(entry.workspace.dir, { recursive: true, force: true });
    await rm(join(this.config.stateDir, 'fuse', id), { recursive: true, force: true });
    await this.#store.remove(id);
    await this.#limiter.delete(id);
    this.log.info({ workspace: id }, `workspace ${id} removed`);
  }

  list(): WorkspaceInfo[] {
    return [...this.#workspaces.values()].map((e) => this.#info(e.workspace));
  }

  #info(w: Workspace): WorkspaceInfo {
    return {
      id: w.id,
      hostPid: w.hostPid,
      socketPath: w.socketPath,
      rootRange: w.policy.rootRange,
      userRanges: w.policy.userRanges,
      alive: w.container.isAlive(),
      shiftMapping: w.shift,
      markPath: w.markPath,
      fullWorkspaceBackup: w.fullWorkspaceBackup,
      prepared: w.state.prepared,
      tornDown: w.state.tornDown,
    };
  }

  /** Graceful shutdown: stops every socket and releases every handle. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const entries = [...this.#workspaces.values()];
    this.#workspaces.clear();
    await Promise.all(
      entries.map(async ({ workspace, server, socket }) => {
        await socket.close();
        await shutdown(server);
        workspace.container.close();
      }),
    );
    if (this.#admin) {
      await shutdown(this.#admin);
      await unlinkQuiet(this.adminSocket);
    }
    this.log.info('iwsd stopped');
  }
}
