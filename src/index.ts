/**
 * `iwsd`: the daemon, embeddable. `startDaemon(config)` runs the same daemon
 * as `iwsd serve` inside the calling Node process.
 *
 * @packageDocumentation
 */
import { parseConfig, type Config, type ConfigInput } from './config.js';
import { Daemon, type AddWorkspaceOptions, type WorkspaceInfo } from './daemon.js';
import { createLogger, type Logger } from './log.js';

export { ERROR_CODES, IwsError, type ErrorCode } from './errors.js';
export type { AddWorkspaceOptions, Config, ConfigInput, WorkspaceInfo };

export interface DaemonHandle {
  /** The effective configuration. */
  readonly config: Config;
  /** `<stateDir>/admin.sock`. */
  readonly adminSocket: string;
  /** Registers a running container (host PID of its init) and serves its socket. */
  addWorkspace(options: AddWorkspaceOptions): Promise<WorkspaceInfo>;
  /** Stops a workspace's socket and cleans up after it. */
  removeWorkspace(id: string): Promise<void>;
  listWorkspaces(): WorkspaceInfo[];
  /** Stops every socket and releases every handle. Idempotent. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

export interface StartOptions {
  /** A pino logger to use instead of JSON lines on stdout at `config.logLevel`. */
  logger?: Logger;
}

/**
 * Starts the daemon with `config` (validated; defaults as in `iwsd serve`).
 * Must run as root on Linux.
 */
export async function startDaemon(config: ConfigInput = {}, options: StartOptions = {}): Promise<DaemonHandle> {
  const cfg = parseConfig(config, 'startDaemon config');
  const log = options.logger ?? createLogger(cfg.logLevel);
  const d = await Daemon.start(cfg, log);
  let closing: Promise<void> | undefined;
  const close = () => (closing ??= d.close());
  return {
    config: cfg,
    adminSocket: d.adminSocket,
    addWorkspace: (o) => d.addWorkspace(o),
    removeWorkspace: (id) => d.removeWorkspace(id).then(() => undefined),
    listWorkspaces: () => d.list(),
    close,
    [Symbol.asyncDispose]: close,
  };
}
