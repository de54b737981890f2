/**
 * The daemon: an admin socket, a registry of workspaces, and one gRPC server
 * per workspace socket. Holds no kernel logic; every privileged step is a
 * call into the native library.
 */
import { chmod, lstat, mkdir } from 'node:fs/promises';
import { basename, join } from 'node:path';

import * as grpc from '@grpc/grpc-js';

import { checkWorkspaceId, type Config } from './config.js';
import { IwsError, toIwsError } from './errors.js';
import { setLevel, type Logger } from './log.js';
import * as native from './native.js';
import { adminHandlers, auditAdminUnimplemented } from './admin.js';
import { adminProto, workspaceProto } from './proto.js';
import { ConnectionBudget, ConnectionTable, GuardedSocket } from './guardedSocket.js';
import { addStandardServices, Metrics, serveMetrics } from './observability.js';
import type { Server as HttpServer } from 'node:http';
import { RpcGuard } from './rpcGuard.js';
import { auditWorkspaceUnimplemented, workspaceHandlers, workspaceInfoHandlers, WorkspaceService, type CallContext } from './service.js';
import { bindUnix, shutdown, unlinkQuiet } from './sockets.js';
import { StateStore, type WorkspaceState } from './state.js';
import { defaultShift, workspaceDir, workspaceSocket, type Workspace } from './workspace.js';
import { startNri, type NriPlugin } from './nri/index.js';

/** The lock file in the state dir (see lockStateDir). */
export const LOCK_FILE = 'iwsd.lock';

/** Configuration keys a reload (SIGHUP) applies without a restart. */
export const RELOADABLE = ['logLevel', 'rateLimits', 'limits', 'work', 'shift.idmappedAnswer'] as const;

/** Takes the state dir's lock, or throws naming the daemon that holds it. */
function lockStateDir(stateDir: string): native.StateLock {
  const path = join(stateDir, LOCK_FILE);
  let lock: native.StateLock;
  try {
    lock = native.StateLock.acquire(path);
  } catch (err) {
    throw new IwsError('FAILED_PRECONDITION', (err as Error).message);
  }
  if (!lock.locked) {
    const who = lock.holderPid ? `pid ${lock.holderPid}` : `pid unknown: ${path} holds none yet`;
    throw new IwsError(
      'FAILED_PRECONDITION',
      `another iwsd (${who}) is serving state dir ${stateDir}; stop it first, or give this one its own --state-dir`,
    );
  }
  return lock;
}

/** A configuration as dotted path → JSON value, for comparing two of them. */
function flatten(v: unknown, prefix = '', out = new Map<string, string>()): Map<string, string> {
  if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
    for (const [k, x] of Object.entries(v)) flatten(x, prefix ? `${prefix}.${k}` : k, out);
  } else {
    out.set(prefix, JSON.stringify(v));
  }
  return out;
}

/** A container's identity as a key: its init PID and start time (a reused PID is another container). */
function containerKey(c: WorkspaceState['container']): string {
  return `${c.hostPid}:${c.startTime}`;
}

export interface AddWorkspaceOptions {
  id: string;
  hostPid: number;
  rootRange?: native.IdRange | undefined;
  userRanges?: native.IdRange[] | undefined;
  shiftMapping?: native.IdMapping[] | undefined;
  markPath?: string | undefined;
  fullWorkspaceBackup?: boolean | undefined;
  persistentVolumeClaim?: boolean | undefined;
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
  persistentVolumeClaim: boolean;
  prepared: boolean;
  tornDown: boolean;
}

/**
 * Workspace sockets face hostile clients: the largest valid request (a
 * 340-line map) is about 12 KiB, so anything far larger is refused by grpc-js
 * before it is parsed; streams per connection are bounded, and a connection
 * without calls is closed after `connections.idleTimeoutMs`.
 */
export function workspaceServerOptions(c: Config['connections']): grpc.ServerOptions {
  return {
    'grpc.max_receive_message_length': 64 * 1024,
    'grpc.max_concurrent_streams': c.maxConcurrentStreams,
    'grpc.max_connection_idle_ms': c.idleTimeoutMs,
    // No channelz: nothing serves it, and it costs every call bookkeeping.
    'grpc.enable_channelz': 0,
  };
}

/**
 * The libuv pool's size: libuv reads UV_THREADPOOL_SIZE once, when the pool
 * first starts (at the latest when a daemon starts), so a later change of
 * the variable changes nothing; read once too, by the first daemon.
 */
let uvPoolSize: number | undefined;
const poolSize = (): number => (uvPoolSize ??= Math.max(1, Number(process.env.UV_THREADPOOL_SIZE) || 4));

/** Descriptors kept free of workspace connections (the admin socket, state files, FUSE helpers, the metrics port). */
export const FD_RESERVE = 512;

interface Entry {
  workspace: Workspace;
  service: WorkspaceService;
  socket: GuardedSocket<CallContext>;
  /** The exit watcher's token for this workspace's container. */
  token: number;
}

export class Daemon {
  readonly adminSocket: string;
  #workspaces = new Map<string, Entry>();
  #pending = new Set<string>();
  /** Registered (or being registered) containers, by init PID and start time → workspace id: one registration per container. */
  #containers = new Map<string, string>();
  /** Teardowns in progress: a registration or removal of the same id waits for it. */
  #disposing = new Map<string, Promise<void>>();
  #admin: grpc.Server | undefined;
  /**
   * One gRPC server behind every workspace socket: each socket hands its
   * verified connections to it, and a call finds its workspace by its
   * connection (idle cost per workspace is then a socket, not a server).
   */
  #server: grpc.Server;
  #injector: ReturnType<grpc.Server['createConnectionInjector']>;
  #connections = new ConnectionTable<CallContext>();
  readonly guard: RpcGuard;
  /** Open workspace connections; the total cap is kept below RLIMIT_NOFILE (set in start()). */
  #budget: ConnectionBudget;
  #fdCap = Infinity;
  #warnedLanes = false;
  /** What the guard reads: #guardConfig() of the current configuration (made at start and by reload). */
  #fitted: Pick<Config, 'rateLimits' | 'work' | 'limits'>;
  /** The masks of every workspace's MountProc and MountSysfs (config proc, sysfs). */
  readonly #masks: { proc: native.MaskSet; sysfs: native.MaskSet };
  #store: StateStore;
  #watcher: native.ExitWatcher;
  #tokens = new Map<number, string>();
  #nextToken = 0;
  #closed = false;
  #warnedNotImmutable = false;
  readonly metrics: Metrics;
  #metricsServer: HttpServer | undefined;
  /** The flock on <state>/iwsd.lock: one daemon per state dir. */
  #lock: native.StateLock | undefined;
  /** The NRI plugin connection (config nri.enabled). */
  #nri: NriPlugin | undefined;

  private constructor(
    readonly config: Config,
    readonly log: Logger,
    readonly pidStrategy: native.ResolvedPidStrategy,
    readonly mountStrategy: native.ResolvedMountStrategy,
  ) {
    this.adminSocket = join(config.stateDir, 'admin.sock');
    this.#store = new StateStore(config.stateDir, config.archive);
    this.#watcher = new native.ExitWatcher((token) => this.#onExit(token));
    this.metrics = new Metrics({
      workspaces: () => this.#workspaces.size,
      mounts: () => {
        const m = { proc: 0, sysfs: 0, nfs: 0, marks: 0 };
        for (const { workspace } of this.#workspaces.values()) {
          for (const r of workspace.mounts.values()) m[r.kind]++;
          if (workspace.state.mark) m.marks++;
        }
        return m;
      },
    });
    // Fitted once here and again by every reload (SIGHUP), which replaces
    // the keys the guard reads: a call only reads the cached object.
    this.#fitted = this.#guardConfig();
    // proc and sysfs need a restart to change (not in RELOADABLE): made once.
    this.#masks = { proc: native.maskSet(config.proc), sysfs: native.maskSet({ masked: config.sysfs.masked, readOnly: [] }) };
    this.guard = new RpcGuard(() => this.#fitted, { metrics: this.metrics, log: this.log });
    this.#budget = new ConnectionBudget(() => {
      const c = this.config.connections;
      return { perWorkspace: c.perWorkspace, total: Math.min(c.total, this.#fdCap), prefaceTimeoutMs: c.prefaceTimeoutMs, refusalAnswers: c.refusalAnswers };
    });
    this.#server = new grpc.Server(workspaceServerOptions(config.connections));
    const contextOf = (call: { getPeer(): string }) => this.#connections.of(call);
    this.#server.addService(workspaceProto().iws.InWorkspaceService.service, workspaceHandlers(contextOf, this.metrics));
    this.#server.addService(workspaceProto().iws.WorkspaceInfoService.service, workspaceInfoHandlers(contextOf, this.metrics));
    auditWorkspaceUnimplemented(this.#server, contextOf, this.metrics);
    addStandardServices(this.#server, 'workspace_daemon.proto', 'iws.InWorkspaceService');
    this.#injector = this.#server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  }

  /**
   * Raises RLIMIT_NOFILE's soft limit to the hard one and keeps the
   * workspace connections' total cap FD_RESERVE below it, so the admin
   * socket and the daemon's own files always have descriptors.
   */
  #raiseFdLimit(): void {
    let soft: number;
    try {
      const l = native.raiseNofileLimit();
      soft = l.soft;
      this.log.debug({ before: l.before, soft: l.soft, hard: l.hard }, `RLIMIT_NOFILE soft limit ${l.before} -> ${l.soft}`);
    } catch (err) {
      this.log.warn({ error: (err as Error).message }, 'could not raise RLIMIT_NOFILE');
      return;
    }
    this.#fdCap = Math.max(1, soft - FD_RESERVE);
    if (this.config.connections.total > this.#fdCap) {
      this.log.warn(
        { configured: this.config.connections.total, nofile: soft, effective: this.#fdCap },
        `connections.total ${this.config.connections.total} does not fit RLIMIT_NOFILE ${soft}: at most ${this.#fdCap} workspace connections are served`,
      );
    }
  }

  /**
   * The configuration the guard reads: `work`'s lanes fitted to the libuv
   * pool, which is sized once per process (UV_THREADPOOL_SIZE; bin/iwsd.js
   * sets 8, a process embedding iwsd may have the default 4): together they
   * leave at least one thread for the daemon's own file I/O and peer checks.
   */
  #guardConfig(): Pick<Config, 'rateLimits' | 'work' | 'limits'> {
    const c = this.config;
    const pool = poolSize();
    const room = Math.max(2, pool - 1);
    const long = Math.min(c.work.longLane, Math.max(1, Math.floor(room / 3)));
    const short = Math.min(c.work.shortLane, Math.max(1, room - long));
    if (long === c.work.longLane && short === c.work.shortLane) return c;
    if (!this.#warnedLanes) {
      this.#warnedLanes = true;
      this.log.debug({ uvThreadpoolSize: pool, shortLane: short, longLane: long }, `work lanes fitted to a libuv pool of ${pool} threads: short ${short}, long ${long}`);
    }
    return { rateLimits: c.rateLimits, limits: c.limits, work: { ...c.work, shortLane: short, longLane: long } };
  }

  /** `<state>/tmp`: daemon-only (0700 in the 0700 state dir); sockets are bound and chmod'ed here, then renamed into place. */
  get tmpDir(): string {
    return join(this.config.stateDir, 'tmp');
  }

  get #workspacesDir(): string {
    return join(this.config.stateDir, 'workspaces');
  }

  /**
   * The name of the mark directory inside the workspace directory, when the
   * mark path is `/.workspace/<name>` (where runtimes bind the workspace
   * directory): the daemon creates it beforehand, so the workspace directory
   * can be sealed (immutable) and bound read-only.
   */
  static markDirName(markPath: string): string | undefined {
    const m = /^\/\.workspace\/([^/]+)\/?$/.exec(markPath);
    return m && m[1] !== '.' && m[1] !== '..' && m[1] !== 'daemon.sock' ? m[1] : undefined;
  }

  #sealed(id: string, what: string, r: native.SealResult): void {
    const log = this.log.child({ workspace: id });
    if (!r.immutable && !this.#warnedNotImmutable) {
      this.#warnedNotImmutable = true;
      log.warn(
        { stateDir: this.config.stateDir },
        `the state filesystem does not support the immutable flag: a workspace can create files in its directory unless /.workspace is bound read-only (bind it read-only)`,
      );
    }
    if (r.pruned.length) log.warn({ pruned: r.pruned }, `workspace ${id}: removed ${r.pruned.length} foreign entries from its directory (${what})`);
    if (r.problems.length) log.warn({ problems: r.problems }, `workspace ${id}: its directory is not clean (${what}): ${r.problems.join('; ')}`);
  }

  /** Removes a workspace-reachable tree `parent/name` by file descriptor (see native.removeTree). */
  async #removeTree(id: string, parent: string, name: string): Promise<void> {
    let r: native.RemoveTreeResult;
    try {
      r = await native.removeTree(parent, name);
    } catch (err) {
      const e = toIwsError(err);
      this.log.error({ workspace: id, dir: join(parent, name), error: e.message, detail: e.detail }, `${join(parent, name)} not removed: ${e.message}`);
      return;
    }
    if (!r.removed || r.problems.length) {
      this.log.warn({ workspace: id, dir: join(parent, name), problems: r.problems }, `${join(parent, name)} not fully removed: ${r.problems.join('; ')}`);
    }
  }

  /** Whether the container recorded in `state` (same init PID and start time) still runs. */
  async #stillRuns(state: WorkspaceState): Promise<boolean> {
    let c: native.Container;
    try {
      c = await native.openContainer(state.container.hostPid);
    } catch (err) {
      // Only a container that is gone is taken as gone.
      return toIwsError(err).code !== 'NOT_FOUND';
    }
    try {
      return c.isAlive() && c.startTime === state.container.startTime;
    } finally {
      c.close();
    }
  }

  /** A workspace's FUSE dirs: host-only, never inside the bind-mounted workspace dir. */
  fuseOptions(id: string): native.FuseOptions {
    const d = join(this.config.stateDir, 'fuse', id);
    return {
      binary: this.config.shift.fuseOverlayfs,
      upper: join(d, 'upper'),
      work: join(d, 'work'),
      staging: join(d, 'mnt'),
      upperBytes: this.config.limits.fuseUpperBytes,
    };
  }

  /**
   * The stored state of workspace `id`, or undefined. A corrupt or
   * unreadable file is quarantined and reported, never fatal.
   */
  async #loadState(id: string): Promise<WorkspaceState | undefined> {
    try {
      return await this.#store.load(id);
    } catch (err) {
      const q = await this.#store.quarantine(id).catch(() => undefined);
      this.log.error({ workspace: id, error: (err as Error).message, quarantined: q }, `corrupt state of workspace ${id} quarantined as ${q}`);
      return undefined;
    }
  }

  /**
   * Creates and locks the state dir, probes the kernel and serves the admin
   * socket, the metrics port and every workspace that is still running. A
   * failure at any step closes what was opened (no socket is left bound, the
   * lock is released) and throws.
   */
  static async start(config: Config, log: Logger): Promise<Daemon> {
    if (process.getuid?.() !== 0) {
      log.warn('iwsd is not running as root: registering workspaces and writing id maps will fail');
    }
    native.validateIdPolicy(config.idPolicy);
    await mkdir(join(config.stateDir, 'workspaces'), { recursive: true, mode: 0o700 });
    await chmod(config.stateDir, 0o700);
    const lock = lockStateDir(config.stateDir);
    log.debug({ lock: join(config.stateDir, LOCK_FILE) }, `locked state dir ${config.stateDir}`);
    let d: Daemon | undefined;
    try {
      const strategy = await native.resolvePidStrategy(config.pidStrategy);
      const mountStrategy = await native.resolveMountStrategy(config.mountStrategy);
      d = new Daemon(config, log, strategy, mountStrategy);
      d.#lock = lock;
      d.#raiseFdLimit();
      // Leftovers of a previous process (killed between bind and rename).
      await native.removeTree(config.stateDir, 'tmp');
      await mkdir(d.tmpDir, { mode: 0o700 });
      await chmod(d.tmpDir, 0o700);
      const server = new grpc.Server();
      server.addService(adminProto().iwsd.admin.v1.Admin.service, adminHandlers(d));
      auditAdminUnimplemented(server, d);
      addStandardServices(server, 'admin.proto', 'iwsd.admin.v1.Admin');
      await bindUnix(server, d.adminSocket, 0o600, d.tmpDir).catch((err: unknown) => {
        server.forceShutdown();
        throw err;
      });
      d.#admin = server;
      log.debug({ adminSocket: d.adminSocket }, 'admin socket bound');
      const features = await native.probeKernel();
      if (config.metrics.enabled) {
        const { server: http, port } = await serveMetrics(d.metrics, config.metrics.host, config.metrics.port, log);
        d.#metricsServer = http;
        log.info({ metricsPort: port, metricsHost: config.metrics.host }, `metrics on http://${config.metrics.host}:${port}/metrics`);
      }
      await d.#recover();
      if (config.nri.enabled) d.#nri = startNri(d, config.nri, log, d.metrics.registry, config.stateDir);
      log.info(
        { stateDir: config.stateDir, adminSocket: d.adminSocket, pidStrategy: strategy, mountStrategy, kernel: features, workspaces: d.#workspaces.size },
        `iwsd serving admin socket ${d.adminSocket}`,
      );
      return d;
    } catch (err) {
      if (d) await d.close().catch(() => undefined);
      else lock.release();
      throw err;
    }
  }

  /**
   * Applies a new configuration (SIGHUP) to the running daemon: the keys in
   * RELOADABLE take effect at once; every other changed key is reported and
   * needs a restart. Returns the changed keys (dotted paths) by outcome.
   */
  reload(next: Config): { applied: string[]; needsRestart: string[] } {
    const before = flatten(this.config);
    const after = flatten(next);
    const applied: string[] = [];
    const needsRestart: string[] = [];
    for (const key of new Set([...before.keys(), ...after.keys()])) {
      if (before.get(key) === after.get(key)) continue;
      // A top-level key, or one nested key (shift.idmappedAnswer) where its siblings need a restart.
      const reloadable = (RELOADABLE as readonly string[]).includes(key.split('.')[0]!) || (RELOADABLE as readonly string[]).includes(key);
      (reloadable ? applied : needsRestart).push(key);
    }
    const top = new Set(applied.map((k) => k.split('.')[0]));
    if (top.has('logLevel')) {
      this.config.logLevel = next.logLevel;
      setLevel(this.log, next.logLevel);
    }
    if (top.has('rateLimits')) this.config.rateLimits = next.rateLimits;
    if (top.has('limits')) this.config.limits = next.limits;
    if (top.has('work')) this.config.work = next.work;
    if (top.has('rateLimits') || top.has('limits') || top.has('work')) this.#fitted = this.#guardConfig();
    if (top.has('rateLimits')) this.guard.applyRateLimits();
    if (applied.includes('shift.idmappedAnswer')) this.config.shift = { ...this.config.shift, idmappedAnswer: next.shift.idmappedAnswer };
    return { applied, needsRestart };
  }

  /** Registers a running container and starts its workspace socket. */
  async addWorkspace(opts: AddWorkspaceOptions, restore?: WorkspaceState): Promise<WorkspaceInfo> {
    if (this.#closed) throw new IwsError('UNAVAILABLE', 'iwsd is shutting down');
    const id = checkWorkspaceId(opts.id);
    // The previous container's teardown (its directory emptied, its state
    // archived) finishes before the next one of the same id is registered.
    await this.#disposing.get(id);
    if (this.#workspaces.has(id) || this.#pending.has(id)) {
      throw new IwsError('FAILED_PRECONDITION', `workspace ${id} is already registered; remove it first (iwsd workspace rm --id ${id})`);
    }
    const policy = this.#policyFor(opts);
    this.#pending.add(id);
    const dir = workspaceDir(this.config.stateDir, id);
    let container: native.Container | undefined;
    let guard: GuardedSocket<CallContext> | undefined;
    let claimed: string | undefined;
    // Removed on failure only when this call created it: a directory that
    // existed may be bound into a running container.
    const existed = await lstat(dir).then(
      () => true,
      () => false,
    );
    try {
      container = await native.openContainer(opts.hostPid);
      const identity = { hostPid: opts.hostPid, startTime: container.startTime };
      claimed = this.#claim(id, identity);
      const state = await this.#stateFor(id, identity, opts, policy, restore, existed);
      const markDir = Daemon.markDirName(state.registration.markPath);
      this.#sealed(id, 'registration', await native.prepareWorkspaceDir(this.#workspacesDir, id, markDir));
      this.#store.save(state);
      const workspace = this.#workspaceOf(id, state, opts.hostPid, container, policy, dir);
      const log = this.log.child({ workspace: id });
      const service = this.#serviceFor(workspace, log);
      guard = await this.#listen(workspace, service, markDir, log);
      const token = ++this.#nextToken;
      this.#tokens.set(token, id);
      this.#watcher.watch(container, token);
      this.#workspaces.set(id, { workspace, service, socket: guard, token });
      log.info({ hostPid: opts.hostPid, socket: workspace.socketPath, policy, restored: Boolean(restore) }, `workspace ${id} ${restore ? 'restored' : 'registered'}`);
      return this.#info(workspace);
    } catch (err) {
      if (claimed) this.#containers.delete(claimed);
      await guard?.close();
      container?.close();
      if (!existed) await this.#removeTree(id, this.#workspacesDir, id).catch(() => undefined);
      throw err;
    } finally {
      this.#pending.delete(id);
    }
  }

  /** The id policy of a registration: the request's ranges, else the configured ones; validated. */
  #policyFor(opts: AddWorkspaceOptions): native.IdPolicy {
    const policy: native.IdPolicy = {
      rootRange: opts.rootRange ?? this.config.idPolicy.rootRange,
      userRanges: opts.userRanges?.length ? opts.userRanges : this.config.idPolicy.userRanges,
      allowHostRoot: this.config.idPolicy.allowHostRoot,
      allowSetgroups: this.config.idPolicy.allowSetgroups,
    };
    native.validateIdPolicy(policy);
    return policy;
  }

  /** Claims the container for workspace `id` (one registration per container); returns the claim's key. */
  #claim(id: string, identity: WorkspaceState['container']): string {
    const key = containerKey(identity);
    const other = this.#containers.get(key);
    if (other !== undefined) {
      throw new IwsError(
        'FAILED_PRECONDITION',
        `the container with init PID ${identity.hostPid} is already registered as workspace ${other}: one registration per container (remove it first: iwsd workspace rm --id ${other})`,
      );
    }
    this.#containers.set(key, id);
    return key;
  }

  /**
   * The state of this very container (same init PID and start time) carries
   * over, e.g. when it is registered again after a daemon restart; a new
   * container under an old id starts fresh. A restore of a container that is
   * gone fails.
   */
  async #stateFor(
    id: string,
    identity: WorkspaceState['container'],
    opts: AddWorkspaceOptions,
    policy: native.IdPolicy,
    restore: WorkspaceState | undefined,
    runtimeDir: boolean,
  ): Promise<WorkspaceState> {
    const stored = restore ?? (await this.#loadState(id));
    const same = stored && stored.container.hostPid === identity.hostPid && stored.container.startTime === identity.startTime;
    if (restore && !same) throw new IwsError('NOT_FOUND', `the container of workspace ${id} is gone`);
    if (same) return stored;
    return {
      version: 1,
      id,
      container: identity,
      registration: {
        rootRange: policy.rootRange,
        userRanges: policy.userRanges,
        shift: opts.shiftMapping?.length ? opts.shiftMapping : defaultShift(policy),
        markPath: opts.markPath || this.config.shift.markPath,
        fullWorkspaceBackup: opts.fullWorkspaceBackup ?? this.config.shift.fullWorkspaceBackup,
        persistentVolumeClaim: opts.persistentVolumeClaim ?? false,
      },
      prepared: false,
      tornDown: false,
      mark: null,
      mounts: [],
      runtimeDir,
    };
  }

  /** The in-memory workspace of a registration's state. */
  #workspaceOf(id: string, state: WorkspaceState, hostPid: number, container: native.Container, policy: native.IdPolicy, dir: string): Workspace {
    const reg = state.registration;
    return {
      id,
      hostPid,
      container,
      policy: { rootRange: reg.rootRange, userRanges: reg.userRanges, allowHostRoot: policy.allowHostRoot, allowSetgroups: policy.allowSetgroups },
      dir,
      socketPath: workspaceSocket(this.config.stateDir, id),
      mounts: new Map(state.mounts.map((m) => [m.mountId, { kind: m.kind, target: m.target, pid: m.pid, madeFor: m.madeFor }])),
      shift: reg.shift,
      markPath: reg.markPath,
      fullWorkspaceBackup: reg.fullWorkspaceBackup,
      persistentVolumeClaim: reg.persistentVolumeClaim ?? false,
      state,
    };
  }

  /** The workspace's RPC service. */
  #serviceFor(workspace: Workspace, log: Logger): WorkspaceService {
    const authz = () => this.config.authz;
    const shift = () => this.config.shift;
    return new WorkspaceService(workspace, {
      log,
      store: this.#store,
      native,
      guard: this.guard,
      shiftMethod: this.config.shift.method,
      // Read at every call, so that a reload (SIGHUP) reaches running workspaces.
      get idmappedAnswer() {
        return shift().idmappedAnswer;
      },
      fuseOptions: (wid) => this.fuseOptions(wid),
      pidStrategy: this.pidStrategy,
      mountStrategy: this.mountStrategy,
      workspaceCidr: this.config.network.workspaceCidr,
      metrics: this.metrics,
      proc: this.#masks.proc,
      sysfs: { readOnly: this.config.sysfs.readOnly, masks: this.#masks.sysfs },
      devices: this.config.devices.create,
      // Read at every call, so that a reload (SIGHUP) reaches running workspaces.
      get lifecycleRule() {
        return authz().lifecycle;
      },
    });
  }

  /**
   * Binds the workspace socket. The workspace's own users must be able to
   * connect from inside the container: who may call is decided per
   * connection (the peer must be inside the workspace), not by file mode.
   */
  #listen(workspace: Workspace, service: WorkspaceService, markDir: string | undefined, log: Logger): Promise<GuardedSocket<CallContext>> {
    const { id, container } = workspace;
    return GuardedSocket.listen({
      path: workspace.socketPath,
      mode: 0o666,
      tmpDir: this.tmpDir,
      // The rename into the sealed workspace directory is the core's:
      // flag off, rename over whatever is there, flag on, prune.
      place: async (tmp) => this.#sealed(id, 'socket', await native.installSocket(this.tmpDir, basename(tmp), this.#workspacesDir, id, markDir)),
      // The directory is sealed: the socket goes with it (rm) or stays
      // stale until the next start replaces it.
      unlinkOnClose: false,
      injector: this.#injector,
      table: this.#connections,
      context: { service, log },
      check: (fd) => native.checkPeer(container, fd),
      log,
      budget: this.#budget,
      events: {
        onRefused: (kind) => (kind === 'peer' ? this.metrics.refused : this.metrics.overCap).inc(),
        onNoPreface: () => this.metrics.noPreface.inc(),
      },
    });
  }

  /**
   * Removes a workspace on the admin's request (see #dispose), once a
   * teardown already in progress has finished. Not registered: NOT_FOUND, or
   * with `ifPresent` (the OCI hook's poststop, usually after the daemon tore
   * the workspace down when its container exited) false. True when removed.
   */
  async removeWorkspace(id: string, opts: { ifPresent?: boolean } = {}): Promise<boolean> {
    checkWorkspaceId(id);
    await this.#disposing.get(id);
    if (!this.#workspaces.has(id)) {
      if (opts.ifPresent) return false;
      throw new IwsError('NOT_FOUND', `no workspace ${id} is registered (see iwsd workspace ls)`);
    }
    await this.#dispose(id, 'removed');
    return true;
  }

  /**
   * Tears a workspace down: stops its socket, removes a mark that Teardown
   * did not (stopping a FUSE helper, releasing the user namespace), releases
   * its handles, archives its state and removes its directories.
   */
  async #dispose(id: string, reason: 'removed' | 'container exited'): Promise<void> {
    const entry = this.#workspaces.get(id);
    if (!entry) return;
    this.#workspaces.delete(id);
    const done = this.#teardown(id, entry, reason).finally(() => this.#disposing.delete(id));
    this.#disposing.set(id, done);
    await done;
  }

  /**
   * Removes the workspace directory, or, when the runtime made it (see
   * WorkspaceState.runtimeDir) and the container is gone, empties it and
   * leaves it (unsealed) for the workspace's next container. A running
   * container's (admin rm) is removed: emptied and unsealed, its bind would
   * let container root write to the state filesystem.
   */
  async #removeWorkspaceDir(id: string, state: WorkspaceState, containerGone: boolean): Promise<void> {
    if (state.runtimeDir === false || !containerGone) return this.#removeTree(id, this.#workspacesDir, id);
    const dir = join(this.#workspacesDir, id);
    const r = await native.emptyTree(this.#workspacesDir, id).catch((err: unknown) => ({ removed: false, problems: [toIwsError(err).message] }));
    if (!r.removed || r.problems.length) this.log.warn({ workspace: id, dir, problems: r.problems }, `${dir} not fully emptied: ${r.problems.join('; ')}`);
    else this.log.debug({ workspace: id, dir }, `${dir} emptied and kept: the runtime made it and binds it into the workspace's next container`);
  }

  /**
   * The end of every teardown, by admin rm, container exit or a failed
   * restore: removes (or empties) the workspace directory and the FUSE
   * directory and archives the state. Every step runs even if one before it
   * failed (see #step). Returns the archive's path.
   */
  async #cleanUp(id: string, state: WorkspaceState, containerGone: boolean, log: Logger): Promise<string | undefined> {
    await this.#step(id, log, 'removing its workspace directory', () => this.#removeWorkspaceDir(id, state, containerGone));
    await this.#step(id, log, 'removing its FUSE directory', () => this.#removeTree(id, join(this.config.stateDir, 'fuse'), id));
    return this.#step(id, log, 'archiving its state', () => this.#store.archive(id));
  }

  /**
   * One step of a teardown: a failure is logged and the teardown goes on, so
   * no state file, FUSE or workspace directory is left behind because of
   * another step.
   */
  async #step<T>(id: string, log: Logger, what: string, f: () => Promise<T>): Promise<T | undefined> {
    try {
      return await f();
    } catch (err) {
      const message = toIwsError(err).message;
      log.error({ err: message, step: what }, `teardown of workspace ${id}: ${what} failed: ${message}`);
      return undefined;
    }
  }

  async #teardown(id: string, entry: Entry, reason: 'removed' | 'container exited'): Promise<void> {
    this.#tokens.delete(entry.token);
    this.#watcher.unwatch(entry.token);
    const { workspace } = entry;
    this.#containers.delete(containerKey(workspace.state.container));
    const log = this.log.child({ workspace: id });
    await this.#step(id, log, 'closing its socket', () => entry.socket.close());
    const mark = workspace.state.mark;
    const alive = workspace.container.isAlive();
    const r = await entry.service.removeMark().catch((err: unknown) => ({ success: false, problems: [toIwsError(err).message] }));
    if (!r.success) log.warn({ problems: r.problems }, `mark of workspace ${id} not fully removed: ${r.problems.join('; ')}`);
    else if (mark && !alive) {
      log.info({ mark: mark.markPath, method: mark.method }, `the mark of workspace ${id} went with its container's mount namespace${mark.fusePid ? '; its FUSE helper is stopped' : ''}`);
    }
    // Calls of this workspace still in flight keep their own reference to the
    // native handle (close() does not wait for them nor conflict with them).
    workspace.container.close();
    const archived = await this.#cleanUp(id, workspace.state, !alive, log);
    await this.#step(id, log, 'forgetting its limits', () => this.guard.forget(id));
    log.info({ reason, archived }, `workspace ${id} torn down (${reason})`);
  }

  /** The watcher saw a container's init exit. */
  #onExit(token: number): void {
    const id = this.#tokens.get(token);
    if (!id) return;
    this.log.info({ workspace: id }, `container of workspace ${id} exited; tearing the workspace down`);
    this.#dispose(id, 'container exited').catch((err: unknown) => this.log.error({ workspace: id, err }, 'automatic teardown failed'));
  }

  /**
   * After a (re)start: serves every workspace whose container still runs on
   * its old socket path; cleans up after those whose container died
   * meanwhile (FUSE helper stopped, state archived, directories removed).
   */
  async #recover(): Promise<void> {
    for (const id of await this.#store.ids()) {
      const state = await this.#loadState(id);
      if (!state) continue;
      try {
        await this.addWorkspace({ id, hostPid: state.container.hostPid }, state);
      } catch (err) {
        const e = toIwsError(err);
        if (await this.#stillRuns(state)) {
          // Never delete a running container's directory (it is bound into
          // it); its state stays for the next start to try again.
          this.log.error({ workspace: id, reason: e.message, code: e.code }, `workspace ${id} not restored (${e.message}); its container still runs, so its directory and state are kept`);
          continue;
        }
        const log = this.log.child({ workspace: id });
        const fusePid = state.mark?.fusePid;
        if (fusePid) await this.#step(id, log, 'stopping its FUSE helper', () => native.stopFuseHelper(fusePid, this.fuseOptions(id).staging));
        const archived = await this.#cleanUp(id, state, true, log);
        this.log.info({ workspace: id, reason: e.message, archived }, `workspace ${id} not restored (${e.message}); cleaned up`);
      }
    }
  }

  /** The NRI connection's state, undefined when NRI is off. */
  nriStatus(): ReturnType<NriPlugin['status']> | undefined {
    return this.#nri?.status();
  }

  /**
   * Creates and seals a workspace's directory before its container exists
   * (NRI CreateContainer binds it); registration (addWorkspace) follows
   * once the container runs. Returns the directory.
   */
  async prepareWorkspace(id: string, markPath?: string): Promise<string> {
    if (this.#closed) throw new IwsError('UNAVAILABLE', 'iwsd is shutting down');
    checkWorkspaceId(id);
    const markDir = Daemon.markDirName(markPath || this.config.shift.markPath);
    this.#sealed(id, 'preparation', await native.prepareWorkspaceDir(this.#workspacesDir, id, markDir));
    return workspaceDir(this.config.stateDir, id);
  }

  /** Removes a prepared directory that no registered workspace uses (its container was removed unstarted). */
  async discardWorkspace(id: string): Promise<void> {
    checkWorkspaceId(id);
    await this.#disposing.get(id);
    if (this.#workspaces.has(id) || this.#pending.has(id)) return;
    await this.#removeTree(id, this.#workspacesDir, id);
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
      persistentVolumeClaim: w.persistentVolumeClaim,
      prepared: w.state.prepared,
      tornDown: w.state.tornDown,
    };
  }

  /** Graceful shutdown: stops every socket and releases every handle. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#nri?.close();
    const entries = [...this.#workspaces.values()];
    this.#workspaces.clear();
    await Promise.all(
      entries.map(async ({ workspace, socket }) => {
        await socket.close();
        workspace.container.close();
      }),
    );
    this.#injector.destroy();
    this.#server.forceShutdown();
    this.#watcher.close();
    if (this.#metricsServer) await new Promise<void>((r) => this.#metricsServer!.close(() => r()));
    if (this.#admin) {
      await shutdown(this.#admin);
      await unlinkQuiet(this.adminSocket);
    }
    this.#lock?.release();
    this.log.info('iwsd stopped');
  }
}
