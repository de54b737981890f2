/**
 * A gRPC client (agent.mjs) started by an argv that makes its identity
 * (nsenter into a container, setpriv to a uid, unshare for a ring), driven
 * over its stdin/stdout line protocol: for tests whose callers must be real
 * processes of a given uid and namespaces (authz-attacks, workspacekit).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import type { ExecutionContext } from 'ava';

import { AgentChannel } from './agentProtocol.js';
import { children, waitFor, type CallResult } from './container.js';

const AGENT = fileURLToPath(new URL('./agent.mjs', import.meta.url));

/** The first descendant of `root` (host PIDs, breadth first) whose command line passes `pred`. */
export function descendant(root: number, pred: (cmd: string, pid: number) => boolean): number | undefined {
  const queue = [root];
  while (queue.length) {
    const p = queue.shift()!;
    let cmd: string;
    try {
      cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    if (p !== root && pred(cmd, p)) return p;
    queue.push(...children(p));
  }
  return undefined;
}

export interface AgentCallOptions {
  /** Deadline of the call in milliseconds (agent.mjs' default otherwise). */
  deadlineMs?: number;
  /** Request metadata; none unless given (as Gitpod's clients call). */
  metadata?: Record<string, string>;
}

export class Agent {
  #proc: ChildProcess;
  #agent: AgentChannel;
  #exited: Promise<void>;
  /** Its host PID and its PID in its own PID namespace. */
  host = 0;
  pid = 0;

  private constructor(argv: string[]) {
    // The host's extra CA file is not inside a container (node would warn).
    const { NODE_EXTRA_CA_CERTS: _, ...env } = process.env;
    this.#proc = spawn(argv[0]!, [...argv.slice(1), process.execPath, AGENT], { stdio: ['pipe', 'pipe', 'inherit'], env });
    this.#exited = new Promise((r) => this.#proc.once('exit', () => r()));
    this.#agent = new AgentChannel(this.#proc, `agent ${argv.join(' ')}`);
  }

  /** Starts the agent under `argv`; it ends with the test. */
  static async start(t: ExecutionContext, argv: string[]): Promise<Agent> {
    const a = new Agent(argv);
    t.teardown(() => a.exit());
    await a.#agent.ready;
    a.host = await waitFor('agent host pid', () => descendant(a.#proc.pid!, (c) => c.includes(AGENT)));
    a.pid = (await a.#send({ op: 'whoami' })).pid as number;
    return a;
  }

  #send(cmd: Record<string, unknown>): Promise<Record<string, unknown>> {
    return this.#agent.send(cmd);
  }

  /** A unary call over a fresh connection. */
  async call(socket: string, rpc: string, request: Record<string, unknown>, opts: AgentCallOptions = {}): Promise<CallResult> {
    return (await this.#send({ op: 'call', socket, rpc, request, ...opts })) as unknown as CallResult;
  }

  /** A call over the one connection this agent keeps open. */
  async callHeld(socket: string, rpc: string, request: Record<string, unknown>): Promise<CallResult> {
    return (await this.#send({ op: 'callHeld', socket, rpc, request })) as unknown as CallResult;
  }

  async seteuid(euid: number): Promise<void> {
    await this.#send({ op: 'seteuid', euid });
  }

  /** Runs `argv` as a child (in this agent's namespaces, with its credentials) and waits for it. */
  async run(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    return (await this.#send({ op: 'run', argv })) as unknown as { code: number; stdout: string; stderr: string };
  }

  /**
   * Starts `argv` as a child, left running (killed when the agent exits);
   * with `marker`, returns its host PID once a `sleep` descendant carrying
   * the marker runs.
   */
  async spawn(argv: string[]): Promise<void>;
  async spawn(argv: string[], marker: string): Promise<number>;
  async spawn(argv: string[], marker?: string): Promise<number | void> {
    await this.#send({ op: 'spawn', argv });
    if (marker === undefined) return;
    return waitFor('spawned process', () => descendant(this.host, (c) => c.includes(marker) && c.startsWith('sleep')));
  }

  /** Ends the agent (it kills its children first) and waits until it is gone. */
  async exit(): Promise<void> {
    if (this.#proc.exitCode === null && this.#proc.signalCode === null) this.#proc.stdin!.end();
    const timer = setTimeout(() => this.#proc.kill('SIGKILL'), 5000);
    await this.#exited;
    clearTimeout(timer);
  }
}
