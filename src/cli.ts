/**
 * `iwsd`: the daemon (`serve`) and its admin commands (`workspace ...`).
 */
import { release } from 'node:os';

import * as grpc from '@grpc/grpc-js';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';

import { addWorkspaceRequest, adminTarget, call, connectAdmin } from './adminClient.js';
import { grpcStatusName } from './clientError.js';
import { LOG_LEVELS, loadConfig, type Config } from './config.js';
import { Daemon, RELOADABLE } from './daemon.js';
import { MOUNT_STRATEGIES, parseIdMapping, parseIdRange, PID_STRATEGIES, sdNotify, type IdMapping, type IdRange } from './native.js';
import { IwsError, toIwsError } from './errors.js';
import { createLogger, type Logger } from './log.js';
import { daemonNodeFlags, missingNodeFlags } from './nodeFlags.js';
import { actionFor, ANNOTATIONS, ON_DAEMON_DOWN, parseState, type OnDaemonDown } from './ociHook.js';
import { doctor, formatReport } from './doctor.js';
import { fsShiftAcceptMetadata } from './fsShift.js';
import { workspaceProto } from './proto.js';
import { VERSION } from './version.js';
import type { Workspace as WorkspaceMsg } from './gen/iwsd/admin/v1/Workspace.js';


const RPCS = ['WriteIDMapping', 'MountProc', 'UmountProc', 'MountSysfs', 'UmountSysfs', 'PrepareForUserNS', 'Teardown', 'WipingTeardown', 'EvacuateCGroup', 'SetupPairVeths', 'MountNfs', 'UmountNfs', 'WorkspaceInfo'] as const;

/** A commander argument parser from a core parser: its message says what is wrong. */
function argument<T>(parse: (s: string) => T): (value: string) => T {
  return (value) => {
    try {
      return parse(value);
    } catch (err) {
      throw new InvalidArgumentError(toIwsError(err).message);
    }
  };
}

const parseRange = argument(parseIdRange);

function collectRange(value: string, prev: IdRange[] = []): IdRange[] {
  return [...prev, parseRange(value)];
}

function collectMapping(value: string, prev: IdMapping[] = []): IdMapping[] {
  return [...prev, argument(parseIdMapping)(value)];
}

function parsePid(value: string): number {
  if (!/^\d{1,10}$/.test(value) || Number(value) < 1 || Number(value) > 2147483647) {
    throw new InvalidArgumentError(`${JSON.stringify(value)} is not a PID (a positive integer)`);
  }
  return Number(value);
}

function parseTarget(value: string): string {
  if (!value.startsWith('/')) throw new InvalidArgumentError(`${JSON.stringify(value)} is not an absolute path`);
  return value;
}

function parseTimeout(value: string): number {
  if (!/^\d{1,10}$/.test(value) || Number(value) < 1 || Number(value) > 2147483647) {
    throw new InvalidArgumentError(`${JSON.stringify(value)} is not a timeout in milliseconds (an integer from 1 to 2147483647)`);
  }
  return Number(value);
}

/** `iwsd call`'s exit code for flag and argument errors (nothing was sent). */
export const CALL_USAGE_EXIT = 2;

/**
 * `iwsd call`'s exit codes, one per class of outcome (in `iwsd call --help`
 * and the README): statuses that need different handling by a script get
 * different codes.
 */
export const CALL_EXIT_CODES: readonly { exit: number; statuses: readonly string[]; meaning: string }[] = [
  { exit: 0, statuses: ['OK'], meaning: 'done; the response is on stdout' },
  { exit: 1, statuses: ['INTERNAL', 'UNKNOWN', 'DATA_LOSS', 'other'], meaning: 'a failure inside iwsd (details in its log) or in this client' },
  { exit: CALL_USAGE_EXIT, statuses: ['usage'], meaning: 'a bad or missing flag, an unknown RPC; nothing was sent' },
  { exit: 3, statuses: ['INVALID_ARGUMENT', 'OUT_OF_RANGE'], meaning: "the request is invalid or outside the workspace's policy" },
  { exit: 4, statuses: ['PERMISSION_DENIED', 'UNAUTHENTICATED'], meaning: 'the caller may not do this (e.g. a mount namespace that is not the workspace\'s)' },
  { exit: 5, statuses: ['NOT_FOUND'], meaning: 'no such process in the workspace, nothing mounted there' },
  { exit: 6, statuses: ['FAILED_PRECONDITION', 'ALREADY_EXISTS', 'ABORTED'], meaning: 'wrong state, or the kernel lacks or refused something' },
  { exit: 7, statuses: ['RESOURCE_EXHAUSTED'], meaning: 'a rate limit or a limit; retry later' },
  { exit: 8, statuses: ['UNAVAILABLE', 'DEADLINE_EXCEEDED', 'CANCELLED'], meaning: 'no daemon on the socket, no answer in time, or a transient failure; retry' },
  { exit: 9, statuses: ['UNIMPLEMENTED'], meaning: 'the socket does not serve this RPC (e.g. the admin socket)' },
  { exit: 10, statuses: ['refused'], meaning: 'the daemon refused the connection: the caller is not inside the workspace' },
];

function formatCallExitCodes(): string {
  return CALL_EXIT_CODES.map((c) => `  ${String(c.exit).padStart(2)}  ${c.statuses.join(', ').padEnd(44)} ${c.meaning}`).join('\n');
}

/** The status a failed call prints: the gRPC status name (refused connections say so). */
function callStatus(e: IwsError): string {
  const name = grpcStatusName(e) ?? e.code;
  return e.reason === 'ConnectionRefused' ? `${name} (connection refused)` : name;
}

function callExitCode(e: IwsError): number {
  if (e.reason === 'ConnectionRefused') return 10;
  const name = grpcStatusName(e) ?? e.code;
  return CALL_EXIT_CODES.find((c) => c.exit !== 0 && c.statuses.includes(name))?.exit ?? 1;
}

interface CommonOpts {
  stateDir?: string;
  config?: string;
  logLevel?: string;
  pidStrategy?: string;
  mountStrategy?: string;
}

function configFor(opts: CommonOpts): Config {
  return loadConfig({
    file: opts.config,
    env: process.env,
    flags: { stateDir: opts.stateDir, logLevel: opts.logLevel, pidStrategy: opts.pidStrategy, mountStrategy: opts.mountStrategy },
  });
}

const stateDirOption = () =>
  new Option('--state-dir <dir>', 'daemon state directory holding admin.sock and workspaces/ (default /run/iwsd; env IWSD_STATE_DIR)');
const configOption = () => new Option('--config <file>', 'JSON configuration file (see README "Configuration")');

function fmtRange(r: { start?: number; size?: number } | null | undefined): string {
  return r ? `${r.start ?? 0}:${r.size ?? 0}` : '-';
}

type Notify = (state: string) => void;

/** systemd readiness (Type=notify): a no-op without $NOTIFY_SOCKET. */
function systemdNotifier(log: Logger): Notify {
  const notifySocket = process.env.NOTIFY_SOCKET || undefined;
  return (state: string) => {
    if (!notifySocket) return;
    try {
      sdNotify(notifySocket, state);
      log.debug({ notifySocket, state }, `sd_notify ${state.split('\n')[0]}`);
    } catch (err) {
      log.warn({ notifySocket, error: (err as Error).message }, `sd_notify failed: ${(err as Error).message}`);
    }
  };
}

/** SIGHUP's work: the configuration read again and applied to `d`; a failed read leaves the running one. */
function reloadConfig(d: Daemon, opts: CommonOpts, log: Logger, notify: Notify): void {
  notify(`RELOADING=1\nMONOTONIC_USEC=${process.hrtime.bigint() / 1000n}`);
  try {
    const r = d.reload(configFor(opts));
    log.info(
      { applied: r.applied, needsRestart: r.needsRestart, reloadable: RELOADABLE },
      r.applied.length || r.needsRestart.length ? `configuration reloaded; applied: ${r.applied.join(', ') || 'nothing'}` : 'configuration reloaded; nothing changed',
    );
    if (r.needsRestart.length) {
      log.warn({ needsRestart: r.needsRestart }, `changed configuration that needs a restart to take effect: ${r.needsRestart.join(', ')}`);
    }
  } catch (err) {
    const e = toIwsError(err);
    log.error({ error: e.message }, `configuration reload failed, the running configuration stays: ${e.message}`);
  }
  notify('READY=1');
}

interface ServeSignals {
  /** Resolves on the first SIGTERM or SIGINT. */
  stopped: Promise<void>;
  /** The daemon serves: a SIGHUP that came during start-up is acted on now, later ones at once. */
  started(d: Daemon): void;
  /** Removes the handlers. */
  off(): void;
}

/**
 * The daemon's signal handlers, installed before anything starts, so a
 * SIGTERM during start-up still shuts down gracefully (once start-up is done)
 * and a SIGHUP never kills the daemon.
 */
function serveSignals(log: Logger, reload: (d: Daemon) => void): ServeSignals {
  let signalled: NodeJS.Signals | undefined;
  let wake: () => void = () => undefined;
  const stopped = new Promise<void>((resolve) => (wake = resolve));
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) return;
    signalled = signal;
    log.info({ signal }, `received ${signal}, shutting down`);
    wake();
  };
  let daemon: Daemon | undefined;
  let reloadPending = false;
  const onHup = () => {
    log.info({ signal: 'SIGHUP' }, 'received SIGHUP, reloading the configuration');
    if (signalled) return;
    if (daemon) reload(daemon);
    else reloadPending = true;
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('SIGHUP', onHup);
  return {
    stopped,
    started(d: Daemon) {
      daemon = d;
      if (reloadPending && !signalled) reload(d);
    },
    off() {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      process.off('SIGHUP', onHup);
    },
  };
}

async function serve(opts: CommonOpts): Promise<void> {
  const config = configFor(opts);
  const log = createLogger(config.logLevel);
  const notify = systemdNotifier(log);
  const signals = serveSignals(log, (d) => reloadConfig(d, opts, log, notify));
  log.info({ version: VERSION, node: process.version, nodeFlags: process.execArgv, pid: process.pid }, `iwsd ${VERSION} starting`);
  // The command's node flags (bin/iwsd.js's first line); a program embedding
  // the daemon (startDaemon) runs node as it likes and is not told.
  const missing = missingNodeFlags(daemonNodeFlags());
  if (missing.length)
    log.warn(
      { nodeFlagsMissing: missing },
      `node runs without the daemon's flags ${missing.join(' ')} (bin/iwsd.js's first line): V8 keeps more memory after bursts of calls; start the daemon as bin/iwsd.js (or the iwsd command), or pass them to node`,
    );
  let daemon: Daemon;
  try {
    daemon = await Daemon.start(config, log);
  } catch (err) {
    const e = toIwsError(err);
    log.fatal({ error: e.message, detail: e.detail }, `iwsd failed to start: ${e.message}`);
    log.flush();
    signals.off();
    // Daemon.start closed everything it opened; should a handle leak all
    // the same, never linger as a half-started daemon.
    setTimeout(() => process.exit(1), 5000).unref();
    throw e;
  }
  notify(`READY=1\nMAINPID=${process.pid}\nSTATUS=serving ${daemon.adminSocket}`);
  signals.started(daemon);
  await signals.stopped;
  notify('STOPPING=1');
  try {
    await daemon.close();
  } catch (err) {
    log.error({ err }, 'error during shutdown');
  }
  signals.off();
  log.flush();
}

/** `iwsd serve`: the daemon. */
function serveCommand(program: Command): void {
  program
    .command('serve')
    .description('run the daemon: serve <state-dir>/admin.sock and one socket per registered workspace')
    .addOption(stateDirOption())
    .addOption(configOption())
    .addOption(new Option('--log-level <level>', 'log level (env IWSD_LOG_LEVEL)').choices(LOG_LEVELS))
    .addOption(new Option('--pid-strategy <strategy>', 'PID translation: ioctl (Linux 6.11+), scan (fallback), or auto (env IWSD_PID_STRATEGY)').choices(PID_STRATEGIES))
    .addOption(
      new Option('--mount-strategy <strategy>', 'proc/sysfs assembly: detached (recent kernels), fallback (older kernels), or auto (env IWSD_MOUNT_STRATEGY)').choices(MOUNT_STRATEGIES),
    )
    .addHelpText(
      'after',
      `\nConfiguration precedence: built-in defaults < --config file < IWSD_* environment < flags.\nStops gracefully on SIGTERM or SIGINT. SIGHUP reloads the configuration: ${RELOADABLE.join(', ')} take effect at once,\nother changes are logged as needing a restart. With $NOTIFY_SOCKET set (systemd Type=notify) it sends READY=1\nonce every socket serves. One daemon per state dir (<state-dir>/iwsd.lock). Logs are JSON lines on stdout.`,
    )
    .action(serve);
}

/** `iwsd workspace add|rm|ls`: registrations of a running daemon (admin.sock). */
/** `iwsd workspace add`. */
function workspaceAdd(ws: Command): void {
  ws.command('add')
    .description('register a running container as a workspace and print its socket path')
    .requiredOption('--id <id>', 'workspace id: letters, digits, ".", "_", "-"; at most 64 characters')
    .requiredOption('--pid <hostpid>', "host PID of the container's init process", parsePid)
    .option('--root-range <start:size>', 'host ids container id 0 may map to (default from config: 33333:1)', parseRange)
    .option('--user-range <start:size>', 'host ids other container ids may map to; repeatable (default 100000:70000)', collectRange)
    .option('--shift-map <c:h:s>', 'the ID shift of the PrepareForUserNS mark, as CONTAINER:HOST:SIZE; repeatable (default 0:<root start>:1 and 1:<user start>:65534)', collectMapping)
    .option('--mark-path <path>', 'where PrepareForUserNS mounts the mark inside the container (default /.workspace/mark)')
    .option('--full-workspace-backup', 'report full_workspace_backup=true from PrepareForUserNS')
    .option('--persistent-volume-claim', 'report persistent_volume_claim=true from PrepareForUserNS')
    .option('--json', 'print the registered workspace as JSON')
    .addOption(stateDirOption())
    .addOption(configOption())
    .action(async (opts: {
      id: string;
      pid: number;
      rootRange?: IdRange;
      userRange?: IdRange[];
      shiftMap?: IdMapping[];
      markPath?: string;
      fullWorkspaceBackup?: boolean;
      persistentVolumeClaim?: boolean;
      json?: boolean;
      stateDir?: string;
      config?: string;
    }) => {
      const client = connectAdmin(configFor(opts).stateDir);
      try {
        const req = addWorkspaceRequest({
          id: opts.id,
          pid: opts.pid,
          rootRange: opts.rootRange,
          userRanges: opts.userRange,
          shiftMapping: opts.shiftMap,
          markPath: opts.markPath,
          fullWorkspaceBackup: opts.fullWorkspaceBackup ? true : undefined,
          persistentVolumeClaim: opts.persistentVolumeClaim ? true : undefined,
        });
        const w = await call<WorkspaceMsg>((o, cb) => client.AddWorkspace(req, o, cb));
        process.stdout.write(opts.json ? `${JSON.stringify(w)}\n` : `${w.socketPath}\n`);
      } finally {
        client.close();
      }
    });
}

/** `iwsd workspace rm`. */
function workspaceRm(ws: Command): void {
  ws.command('rm')
    .description('remove a workspace: stop its socket and forget it')
    .requiredOption('--id <id>', 'workspace id')
    .addOption(stateDirOption())
    .addOption(configOption())
    .action(async (opts: { id: string; stateDir?: string; config?: string }) => {
      const client = connectAdmin(configFor(opts).stateDir);
      try {
        await call((o, cb) => client.RemoveWorkspace({ id: opts.id }, o, cb));
      } finally {
        client.close();
      }
    });
}

/** `iwsd workspace ls`. */
function workspaceLs(ws: Command): void {
  ws.command('ls')
    .description('list registered workspaces')
    .option('--json', 'print JSON')
    .addOption(stateDirOption())
    .addOption(configOption())
    .action(async (opts: { json?: boolean; stateDir?: string; config?: string }) => {
      const client = connectAdmin(configFor(opts).stateDir);
      try {
        const res = await call<{ workspaces?: WorkspaceMsg[] }>((o, cb) => client.ListWorkspaces({}, o, cb));
        const list = res.workspaces ?? [];
        if (opts.json) {
          process.stdout.write(`${JSON.stringify(list)}\n`);
          return;
        }
        const rows = [['ID', 'PID', 'ALIVE', 'ROOT', 'USER', 'SOCKET']];
        for (const w of list) {
          rows.push([w.id ?? '', String(w.pid ?? ''), w.alive ? 'yes' : 'no', fmtRange(w.rootRange), (w.userRanges ?? []).map(fmtRange).join(','), w.socketPath ?? '']);
        }
        const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
        for (const r of rows) process.stdout.write(`${r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()}\n`);
      } finally {
        client.close();
      }
    });
}

function workspaceCommands(program: Command): void {
  const ws = program.command('workspace').description('register, remove and list workspaces of a running daemon (talks to admin.sock)');
  workspaceAdd(ws);
  workspaceRm(ws);
  workspaceLs(ws);
}

/** `iwsd doctor`: the kernel features and strategies. */
function doctorCommand(program: Command): void {
  program
    .command('doctor')
    .description('report the kernel features iwsd uses and the strategy every operation will take')
    .option('--json', 'print JSON')
    .addOption(stateDirOption())
    .addOption(configOption())
    .action(async (opts: CommonOpts & { json?: boolean }) => {
      const r = await doctor(configFor(opts), release());
      process.stdout.write(opts.json ? `${JSON.stringify(r, null, 2)}\n` : formatReport(r));
      if (r.problems.length) process.exitCode = 1;
    });
}

/** `iwsd call`: one InWorkspaceService RPC on a workspace socket. */
/** The action of `iwsd call`: checks the flags for the RPC, calls it, prints the response or the status and sets the exit code. */
async function runCall(rpc: string, opts: { socket: string; pid?: number; target?: string; source?: string; args?: string; gid?: boolean; map?: IdMapping[]; timeout: number }): Promise<void> {
    const name = RPCS.find((r) => r.toLowerCase() === rpc.toLowerCase());
    const usage = (msg: string) => {
      process.stderr.write(`iwsd: ${msg}\n(run iwsd call --help for usage)\n`);
      process.exitCode = CALL_USAGE_EXIT;
    };
    if (!name) return usage(`unknown RPC ${JSON.stringify(rpc)}; use one of ${RPCS.join(', ')}`);
    const mount = name.includes('ount');
    const needs: Record<string, boolean> = {
      '--pid': name === 'WriteIDMapping' || name === 'SetupPairVeths' || mount,
      '--target': mount,
      '--source': name === 'MountNfs',
      '--args': name === 'MountNfs',
      '--map': name === 'WriteIDMapping',
      '--gid': name === 'WriteIDMapping',
    };
    const given: Record<string, boolean> = { '--pid': opts.pid !== undefined, '--target': opts.target !== undefined, '--source': opts.source !== undefined, '--args': opts.args !== undefined, '--map': Boolean(opts.map?.length), '--gid': Boolean(opts.gid) };
    for (const flag of Object.keys(needs)) {
      if (given[flag] && !needs[flag]) return usage(`${flag} does not apply to ${name}`);
      if (!given[flag] && needs[flag] && flag !== '--gid' && flag !== '--args') return usage(`${name} needs ${flag}`);
    }
    const request: Record<string, unknown> =
      name === 'WriteIDMapping'
        ? { pid: opts.pid, gid: Boolean(opts.gid), mapping: opts.map }
        : name === 'MountNfs'
          ? { pid: opts.pid, target: opts.target, source: opts.source, args: opts.args ?? '' }
          : mount
            ? { pid: opts.pid, target: opts.target }
            : name === 'SetupPairVeths'
              ? { pid: opts.pid }
              : {};
    const Client = workspaceProto().iws.InWorkspaceService;
    const client = new Client(`unix:${opts.socket}`, grpc.credentials.createInsecure());
    try {
      const res = await call<unknown>(
        // PrepareForUserNS: this client knows IDMAPPED, so it shows the true method.
        (o, cb) => (client as unknown as Record<string, (...a: unknown[]) => unknown>)[name]!(request, name === 'PrepareForUserNS' ? fsShiftAcceptMetadata() : new grpc.Metadata(), o, cb),
        opts.timeout,
        { socket: opts.socket, kind: 'workspace' },
      );
      process.stdout.write(`${JSON.stringify(res)}\n`);
    } catch (err) {
      const e = toIwsError(err);
      const status = callStatus(e);
      process.stderr.write(`iwsd: ${status}: ${e.code === 'INTERNAL' && !grpcStatusName(e) ? (e.detail ?? e.message) : e.message}\n`);
      process.exitCode = callExitCode(e);
    } finally {
      client.close();
    }
}

function callCommand(program: Command): void {
  program
    .command('call')
    .description('call an InWorkspaceService RPC on a workspace socket (run it inside the workspace: other callers are refused)')
    .argument('<rpc>', `one of ${RPCS.join(', ')} (any case)`)
    .requiredOption('--socket <path>', 'the workspace socket, e.g. /.workspace/daemon.sock inside the container')
    .option('--pid <pid>', 'PID (as seen inside the workspace); required by WriteIDMapping, SetupPairVeths and the mount RPCs', parsePid)
    .option('--target <path>', 'absolute path; required by the mount RPCs', parseTarget)
    .option('--source <server:/path>', 'MountNfs (required): the NFS share, e.g. 10.0.5.1:/export')
    .option('--args <options>', 'MountNfs: NFS options, comma-separated (e.g. vers=4.2,hard); see README "MountNfs"')
    .option('--gid', 'WriteIDMapping: write gid_map instead of uid_map')
    .option('--map <c:h:s>', 'WriteIDMapping: a line CONTAINER:HOST:SIZE; repeatable, at least one', collectMapping)
    .option('--timeout <ms>', 'deadline in milliseconds (1 to 2147483647)', parseTimeout, 10_000)
    .addHelpText('after', `\nPrints the response as JSON on stdout. A failure prints "iwsd: <STATUS>: <message>" on stderr\nand exits with the code of its class:\n${formatCallExitCodes()}`)
    // Usage errors (a bad flag, a missing one) exit 2, not commander's 1.
    .exitOverride((err) => {
      throw err.exitCode === 0 ? err : new CommanderError(CALL_USAGE_EXIT, err.code, err.message);
    })
    .action(runCall);
}

/** `iwsd oci-hook`: (un)registers the container of an OCI runtime hook. */
/** The action of `iwsd oci-hook`: registers or unregisters the container whose OCI state is on stdin. */
async function runOciHook(opts: { event?: string; onDaemonDown: OnDaemonDown; stateDir?: string; config?: string }): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    const state = parseState(Buffer.concat(chunks).toString('utf8'));
    const act = actionFor(state, opts.event);
    const stateDir = configFor(opts).stateDir;
    const target = adminTarget(stateDir);
    const say = (msg: string) => process.stderr.write(`iwsd oci-hook: ${msg}\n`);
    // The daemon is down: no admin socket, nobody listening, no answer.
    const down = (err: unknown) =>
      err instanceof IwsError && err.code === 'UNAVAILABLE' && ['NoSocket', 'NotListening', 'ConnectionRefused', 'DeadlineExceeded'].includes(err.reason ?? '');
    let client: ReturnType<typeof connectAdmin> | undefined;
    try {
      client = connectAdmin(stateDir);
      if (act.action === 'add') {
        const req = addWorkspaceRequest({ ...act, pid: act.pid ?? 0 });
        await call((o, cb) => client!.AddWorkspace(req, o, cb), 10_000, target);
      } else {
        // Usually the daemon tore it down already when the container
        // exited: not an error (older daemons answer NOT_FOUND).
        await call((o, cb) => client!.RemoveWorkspace({ id: act.id, ifPresent: true }, o, cb), 10_000, target).catch((err: unknown) => {
          if (!(err instanceof IwsError && err.code === 'NOT_FOUND')) throw err;
        });
      }
    } catch (err) {
      const e = toIwsError(err);
      if (act.action === 'rm') {
        // Unregistering needs no running daemon: a daemon that starts
        // later cleans up after containers that died meanwhile.
        if (down(e)) {
          say(`the iwsd daemon is not running (${e.message}); workspace ${act.id} will be cleaned up when it starts`);
          return;
        }
        say(`could not unregister workspace ${act.id} (container ${state.id}): ${e.message}`);
        process.exitCode = 1;
        return;
      }
      if (!down(e)) {
        say(`could not register container ${state.id} as workspace ${act.id}: ${e.code}: ${e.message}`);
        process.exitCode = 1;
        return;
      }
      const policy = act.onDaemonDown ?? opts.onDaemonDown;
      const source = act.onDaemonDown ? `annotation ${ANNOTATIONS.onDaemonDown}=${policy}` : `--on-daemon-down ${policy}`;
      const why = `the iwsd daemon is not running for state dir ${stateDir} (${e.message})`;
      const todo = 'start it (systemctl start iwsd; see journalctl -u iwsd for why it stopped), or give the hook the --state-dir the daemon serves';
      if (policy === 'start') {
        say(`${why}: container ${state.id} starts WITHOUT its workspace socket (${source}); ${todo}, then restart the container`);
        return;
      }
      say(
        `${why}: refusing to start container ${state.id} (workspace ${act.id}) without its workspace socket; ${todo}, then start the container again. ` +
          `To let containers start without iwsd instead, set annotation ${ANNOTATIONS.onDaemonDown}=start or pass --on-daemon-down start to the hook.`,
      );
      process.exitCode = 1;
    } finally {
      client?.close();
    }
}

function ociHookCommand(program: Command): void {
  program
    .command('oci-hook')
    .description('register/unregister the container whose OCI state is on stdin (use as a runc/crun createRuntime, poststart or poststop hook, or from a CRI-O/podman hooks.d entry)')
    .option('--event <name>', 'the hook this runs as (createRuntime, poststart, poststop); default: decided by the state\'s status')
    .addOption(
      new Option('--on-daemon-down <what>', `when the daemon is down at registration: fail the container's start, or let it start without its workspace socket (annotation ${ANNOTATIONS.onDaemonDown} overrides)`)
        .choices([...ON_DAEMON_DOWN])
        .default('fail'),
    )
    .addOption(stateDirOption())
    .addOption(configOption())
    .addHelpText(
      'after',
      `\nWorkspace id: annotation ${ANNOTATIONS.workspaceId}, else the container id.\nPolicy overrides: ${ANNOTATIONS.rootRange}=START:SIZE, ${ANNOTATIONS.userRanges}=START:SIZE[,...],\n${ANNOTATIONS.shiftMapping}=C:H:S[,...], ${ANNOTATIONS.markPath}=PATH, ${ANNOTATIONS.fullWorkspaceBackup}=true, ${ANNOTATIONS.persistentVolumeClaim}=true.\n${ANNOTATIONS.onDaemonDown}=fail|start: as --on-daemon-down, for this container.\nA workspace directory the runtime made (the bind-mount source of /.workspace) is emptied at teardown, never removed.\nUnregistering (poststop) a workspace the daemon already tore down, or with the daemon down, is no error.\nExamples: contrib/hooks.d/iwsd.json, contrib/runc-config-snippet.json.`,
    )
    .action(runOciHook);
}

export function buildProgram(): Command {
  const program = new Command('iwsd')
    .description(
      'iwsd: per-node daemon serving iws.InWorkspaceService to workspace containers.\n' +
        'It writes uid/gid maps, mounts masked /proc and /sys, and provides ID-shifted\n' +
        'rootfs views for user-namespaced "rings" inside unprivileged containers, on\n' +
        'their behalf and only within policy. Run `iwsd serve` as root, then register\n' +
        'containers with `iwsd workspace add`.',
    )
    .version(VERSION)
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ outputError: (str, write) => write(`iwsd: ${str.replace(/^error: /, '')}`) });

  serveCommand(program);
  workspaceCommands(program);
  doctorCommand(program);
  callCommand(program);
  ociHookCommand(program);
  return program;
}

/** Entry point: runs the CLI and sets the exit code from the outcome. */
export async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    // Commander has printed it (a command with exitOverride threw it).
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode;
      return;
    }
    const e = err instanceof IwsError ? err : toIwsError(err);
    process.stderr.write(`iwsd: ${e.code === 'INTERNAL' ? (e.detail ?? e.message) : e.message}\n`);
    process.exitCode = 1;
  }
}
