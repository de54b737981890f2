/**
 * Starts the real daemon through its CLI (`bin/iwsd.js serve`) in a temp
 * state dir, and runs CLI commands against it.
 */
import { spawn, spawnSync, execFile, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import type { ExecutionContext } from 'ava';

import { daemonNodeFlags } from '../../src/nodeFlags.js';

export const IWSD = fileURLToPath(new URL('../../bin/iwsd.js', import.meta.url));
/** The node flags on bin/iwsd.js's first line: a test's daemon runs as one started through the command. */
export const DAEMON_NODE_FLAGS = daemonNodeFlags(IWSD);

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [IWSD, ...args], { env }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * The map a ring's user namespace gets in these tests, as Gitpod's: container
 * root to 33333 (ring0's uid, the default root range), 1.. to 100000.. (the
 * default user range).
 */
export const GITPOD_SHIFT = [
  { containerId: 0, hostId: 33333, size: 1 },
  { containerId: 1, hostId: 100000, size: 65534 },
];

export class TestDaemon {
  logs: Record<string, unknown>[] = [];
  #exit!: Promise<number | null>;

  private constructor(
    readonly stateDir: string,
    public proc: ChildProcess,
    readonly args: string[],
    readonly command: string = process.execPath,
  ) {
    this.#watch(proc);
  }

  #watch(proc: ChildProcess): void {
    const rl = createInterface({ input: proc.stdout! });
    rl.on('line', (line: string) => {
      try {
        this.logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        this.logs.push({ raw: line });
      }
    });
    this.#exit = new Promise((resolve) => proc.once('exit', (code) => resolve(code)));
  }

  async #ready(): Promise<void> {
    // Generous: on a busy 2-core node a start that restores workspaces can be slow.
    const end = Date.now() + 45_000;
    const seen = this.logs.length;
    while (!this.logs.slice(seen).some((l) => typeof l.msg === 'string' && l.msg.startsWith('iwsd serving'))) {
      if (this.proc.exitCode !== null) throw new Error(`iwsd serve exited with ${this.proc.exitCode}: ${JSON.stringify(this.logs)}`);
      if (Date.now() > end) throw new Error(`iwsd serve did not become ready in 45 s; last log lines: ${JSON.stringify(this.logs.slice(-5))}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** SIGTERM (or `signal`), wait, and start again on the same state dir and config. */
  async restart(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    this.proc.kill(signal);
    await this.#exit;
    this.proc = spawn(this.command, this.args, { stdio: ['ignore', 'pipe', 'inherit'] });
    this.#watch(this.proc);
    await this.#ready();
  }

  /**
   * `stateStoreTmpfs`: tmpfs options (e.g. "size=64k"); the daemon then runs
   * in a private mount namespace of its own with a tmpfs of that size at
   * `<state-dir>/state` (its state store), invisible to the host and gone
   * with the daemon. Fill it through `/proc/<pid>/root`. `env`: the
   * daemon's environment. `wrap`: a command the daemon runs under (e.g.
   * setpriv with the systemd unit's capability bounding set).
   */
  /** [`start`](#start), stopped when test `t` ends (also when it fails). */
  static async startFor(t: ExecutionContext, ...args: Parameters<typeof TestDaemon.start>): Promise<TestDaemon> {
    const d = await TestDaemon.start(...args);
    t.teardown(() => d.stop().then(() => undefined));
    return d;
  }

  static async start(
    config: Record<string, unknown> = {},
    extraArgs: string[] = [],
    opts: { stateStoreTmpfs?: string; env?: NodeJS.ProcessEnv; wrap?: string[]; viaCommand?: boolean } = {},
  ): Promise<TestDaemon> {
    const base = await mkdtemp(join(tmpdir(), 'iwsd-test-'));
    const stateDir = join(base, 'state');
    const cfg = join(base, 'config.json');
    await writeFile(cfg, JSON.stringify(config));
    // viaCommand: bin/iwsd.js executed itself (its first line picks node and its flags), as the systemd unit does.
    let command = opts.viaCommand ? IWSD : process.execPath;
    let args = [...(opts.viaCommand ? [] : [...DAEMON_NODE_FLAGS, IWSD]), 'serve', '--state-dir', stateDir, '--config', cfg, ...extraArgs];
    if (opts.stateStoreTmpfs) {
      const script = 'mkdir -p "$1/state" && mount -t tmpfs -o "mode=0700,$2" iwsd-test-state "$1/state" && shift 2 && exec "$@"';
      args = ['--mount', '--propagation', 'private', '--', 'sh', '-c', script, 'sh', stateDir, opts.stateStoreTmpfs, command, ...args];
      command = 'unshare';
    }
    if (opts.wrap?.length) {
      args = [...opts.wrap.slice(1), command, ...args];
      command = opts.wrap[0]!;
    }
    const proc = spawn(command, args, { stdio: ['ignore', 'pipe', 'inherit'], env: opts.env ?? process.env });
    const d = new TestDaemon(stateDir, proc, args, command);
    try {
      await d.#ready();
    } catch (err) {
      // Leave nothing behind when the daemon does not come up.
      proc.kill('SIGKILL');
      await rm(base, { recursive: true, force: true });
      throw err;
    }
    return d;
  }

  get base(): string {
    return join(this.stateDir, '..');
  }

  cli(args: string[]): Promise<CliResult> {
    return runCli([...args, '--state-dir', this.stateDir]);
  }

  /** Registers a container; returns the workspace socket path. */
  async add(id: string, hostPid: number, extra: string[] = []): Promise<string> {
    const r = await this.cli(['workspace', 'add', '--id', id, '--pid', String(hostPid), ...extra]);
    if (r.code !== 0) throw new Error(`workspace add failed: ${r.stderr}`);
    const socket = r.stdout.trim();
    if (!existsSync(socket)) throw new Error(`socket ${socket} missing`);
    return socket;
  }

  /** Waits until a log record matches, or throws after `ms`. */
  async waitForLog(pred: (l: Record<string, unknown>) => boolean, ms = 5000): Promise<Record<string, unknown>> {
    const end = Date.now() + ms;
    for (;;) {
      const hit = this.logs.find(pred);
      if (hit) return hit;
      if (Date.now() > end) throw new Error('no matching log record');
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** SIGTERM and wait; returns the exit code. */
  async stop(): Promise<number | null> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGTERM');
    const code = await this.#exit;
    removeStateDir(this.base);
    return code;
  }
}

/**
 * Removes a test's temp dir that held a daemon's state: workspace directories
 * left registered are immutable (the daemon seals them), so the flag is
 * cleared first.
 */
export function removeStateDir(dir: string): void {
  spawnSync('chattr', ['-R', '-f', '-i', dir], { stdio: 'ignore' });
  rmSync(dir, { recursive: true, force: true });
}
