/**
 * A lane of native work: at most `total` calls in flight daemon-wide, at most
 * `perKey` of them for one key (a workspace). Calls beyond wait in their
 * key's queue (bounded by `maxQueued`; beyond, RESOURCE_EXHAUSTED), and a
 * freed slot goes to the keys in turn (round robin), so a workspace with a
 * thousand waiting calls delays another workspace's call by at most one call
 * per other busy workspace, not by its whole queue: the next slot goes to
 * the waiting key served least recently.
 */
import { IwsError } from './errors.js';

export interface LaneLimits {
  perKey: number;
  total: number;
  maxQueued: number;
}

interface Waiter {
  grant: (release: () => void) => void;
  timer: NodeJS.Timeout | undefined;
}

export class FairLane {
  #running = 0;
  #perKey = new Map<string, number>();
  /** Keys with waiters. */
  #queues = new Map<string, Waiter[]>();
  /** When each busy key was last given a slot (a logical clock). */
  #served = new Map<string, number>();
  #clock = 0;

  constructor(
    readonly name: string,
    private readonly limits: () => LaneLimits,
  ) {}

  get running(): number {
    return this.#running;
  }

  /** Calls waiting, in all keys. */
  get queued(): number {
    let n = 0;
    for (const q of this.#queues.values()) n += q.length;
    return n;
  }

  runningOf(key: string): number {
    return this.#perKey.get(key) ?? 0;
  }

  queuedOf(key: string): number {
    return this.#queues.get(key)?.length ?? 0;
  }

  /**
   * A slot for `key`: resolves with its release function (idempotent), or
   * rejects with RESOURCE_EXHAUSTED (the key's queue is full) or
   * `onTimeout()`'s error once `deadline` (epoch ms) passes while waiting.
   */
  acquire(key: string, deadline: number, onTimeout: () => IwsError): Promise<() => void> {
    const lim = this.limits();
    if (this.#running < lim.total && this.runningOf(key) < lim.perKey && !this.#queues.has(key)) {
      return Promise.resolve(this.#take(key));
    }
    const q = this.#queues.get(key) ?? [];
    if (q.length >= lim.maxQueued) {
      return Promise.reject(
        new IwsError(
          'RESOURCE_EXHAUSTED',
          `this workspace has ${this.runningOf(key)} ${this.name} native calls in flight and ${q.length} waiting (limit ${lim.perKey} in flight, ${lim.maxQueued} waiting); retry later`,
        ),
      );
    }
    return new Promise((resolve, reject) => {
      const w: Waiter = { grant: resolve, timer: undefined };
      const ms = deadline - Date.now();
      w.timer = setTimeout(
        () => {
          const list = this.#queues.get(key);
          const i = list?.indexOf(w) ?? -1;
          if (i < 0) return;
          list!.splice(i, 1);
          if (!list!.length) {
            this.#queues.delete(key);
            if (!this.runningOf(key)) this.#served.delete(key);
          }
          reject(onTimeout());
        },
        Math.max(0, ms),
      );
      q.push(w);
      if (!this.#queues.has(key)) this.#queues.set(key, q);
    });
  }

  #take(key: string): () => void {
    this.#running++;
    this.#perKey.set(key, this.runningOf(key) + 1);
    this.#served.set(key, ++this.#clock);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#running--;
      const n = this.runningOf(key) - 1;
      if (n > 0) this.#perKey.set(key, n);
      else {
        this.#perKey.delete(key);
        if (!this.#queues.has(key)) this.#served.delete(key);
      }
      this.#dispatch();
    };
  }

  #dispatch(): void {
    const lim = this.limits();
    while (this.#running < lim.total) {
      // The waiting key (with room under its own cap) served least recently.
      let next: string | undefined;
      let best = Infinity;
      for (const key of this.#queues.keys()) {
        if (this.runningOf(key) >= lim.perKey) continue;
        const at = this.#served.get(key) ?? 0;
        if (at < best) {
          best = at;
          next = key;
        }
      }
      if (next === undefined) return;
      const q = this.#queues.get(next)!;
      const w = q.shift()!;
      if (!q.length) this.#queues.delete(next);
      clearTimeout(w.timer);
      w.grant(this.#take(next));
    }
  }
}
