/**
 * The one client of agent.mjs' line protocol: a JSON object a line on its
 * stdin (`op`, arguments and an `id`), answered by a line with that `id` on
 * its stdout (an `error` field makes the call fail); `{"ready":true}` first.
 * Used by TestContainer (helpers/container.ts) and Agent (helpers/agentClient.ts).
 */
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

export class AgentChannel {
  #proc: ChildProcess;
  #next = 1;
  #waiting = new Map<number, (msg: Record<string, unknown>) => void>();
  /** Resolves on the agent's ready line; rejects when it fails to start or exits before. */
  readonly ready: Promise<void>;

  /** `proc` runs agent.mjs with its stdin and stdout piped; `what` names it in errors. */
  constructor(proc: ChildProcess, what: string) {
    this.#proc = proc;
    const rl = createInterface({ input: proc.stdout! });
    this.ready = new Promise((resolve, reject) => {
      proc.once('error', reject);
      proc.once('exit', (code) => reject(new Error(`${what} exited early (${code})`)));
      rl.on('line', (line) => {
        const msg = JSON.parse(line) as Record<string, unknown>;
        if (msg.ready) return resolve();
        const cb = this.#waiting.get(msg.id as number);
        this.#waiting.delete(msg.id as number);
        cb?.(msg);
      });
    });
  }

  send(cmd: Record<string, unknown>): Promise<Record<string, unknown>> {
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#waiting.set(id, (msg) => (msg.error ? reject(new Error(typeof msg.error === 'string' ? msg.error : JSON.stringify(msg.error))) : resolve(msg)));
      this.#proc.stdin!.write(`${JSON.stringify({ ...cmd, id })}\n`);
    });
  }
}
