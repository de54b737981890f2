/**
 * The one error boundary of both servers (admin and workspace): a unary
 * handler that resolves the call's context, runs the work, writes one audit
 * record and answers the result or the gRPC status of the error's code.
 * INTERNAL errors carry a generic message; their detail goes to the log
 * only. Failed calls are logged at warn (INTERNAL at error); a flood of
 * refusals of one kind is logged in a bounded number of lines (the rest are
 * counted in the next line), so a workspace cannot turn calls into log volume.
 */
import * as grpc from '@grpc/grpc-js';

import { IwsError, toIwsError } from './errors.js';
import type { Logger } from './log.js';
import type { Metrics } from './observability.js';

/** What a call runs against: resolved per call, or an error to answer. */
export interface CallScope<C> {
  context: C;
  log: Logger;
  /** Fields every audit record of the call carries (e.g. the verified peer). */
  audit: Record<string, unknown>;
  /** Key of the refusal-log budget (e.g. the workspace); undefined: every line is written. */
  budgetKey?: string | undefined;
}

export interface UnaryOptions<C> {
  /** `admin` records name the RPC under `admin`, workspace ones under `rpc`. */
  server: 'workspace' | 'admin';
  scope: (call: grpc.ServerUnaryCall<unknown, unknown>) => CallScope<C> | IwsError;
  /** Level of a successful call's record (the workspace audit log: info). */
  okLevel: 'info' | 'debug';
  metrics?: Metrics | undefined;
}

/** Refusals of these codes share a log budget per key (the flood kinds). */
const BUDGETED = new Set(['RESOURCE_EXHAUSTED', 'UNIMPLEMENTED', 'UNAVAILABLE']);
const BUDGET_LINES = 20;
const BUDGET_WINDOW_MS = 10_000;

class LogBudget {
  #windows = new Map<string, { start: number; lines: number; suppressed: number }>();

  /** undefined: drop this line; else the number of lines dropped before it. */
  take(key: string): number | undefined {
    const now = Date.now();
    let w = this.#windows.get(key);
    if (!w || now - w.start >= BUDGET_WINDOW_MS) {
      const carried = w?.suppressed ?? 0;
      w = { start: now, lines: 0, suppressed: 0 };
      this.#windows.set(key, w);
      if (this.#windows.size > 10_000) this.#windows.clear();
      w.lines++;
      return carried;
    }
    if (w.lines >= BUDGET_LINES) {
      w.suppressed++;
      return undefined;
    }
    w.lines++;
    const s = w.suppressed;
    w.suppressed = 0;
    return s;
  }
}

/** Fields (and a message tail) a handler adds to its call's audit record. */
const NOTES = new WeakMap<object, { fields: Record<string, unknown>; text?: string | undefined }>();

/**
 * Adds `fields` (and `text`, appended to the message) to the audit record of
 * `call`: the one log line of a successful call, e.g. what PrepareForUserNS
 * made and what it answered.
 */
export function annotateCall(call: object, fields: Record<string, unknown>, text?: string): void {
  const prev = NOTES.get(call);
  NOTES.set(call, { fields: { ...prev?.fields, ...fields }, text: text ?? prev?.text });
}

/** The grpc-js deadline of a call as epoch ms, or undefined when it has none. */
export function deadlineOf(call: { getDeadline(): grpc.Deadline }): number | undefined {
  const d = call.getDeadline();
  const ms = d instanceof Date ? d.getTime() : d;
  return Number.isFinite(ms) ? ms : undefined;
}

export class Boundary<C> {
  readonly #budget = new LogBudget();

  constructor(private readonly opts: UnaryOptions<C>) {}

  /**
   * The handler of `rpc` through this boundary. `metric`: its label in the
   * metrics (default `rpc`); a method the server does not know is counted
   * under one label, so a client's made-up names add no series.
   */
  unary<Req, Res>(
    rpc: string,
    fn: (context: C, req: Req, call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res>,
    metric: string = rpc,
  ): grpc.handleUnaryCall<Req, Res> {
    const { server, okLevel, metrics } = this.opts;
    const field = server === 'admin' ? 'admin' : 'rpc';
    const label = server === 'admin' ? `admin ${rpc}` : rpc;
    return (call, callback) => {
      const started = process.hrtime.bigint();
      const req = call.request;
      const ms = () => Number(process.hrtime.bigint() - started) / 1e6;
      const scope = this.opts.scope(call);
      // Each outcome is answered first, then logged and counted: the audit
      // record (pino's serialisation and its write) is off the caller's
      // latency; its durationMs is the call's until the answer.
      const fail = (thrown: unknown, log: Logger | undefined, audit: Record<string, unknown>, budgetKey: string | undefined) => {
        const err = toIwsError(thrown);
        const durationMs = ms();
        callback({ code: err.grpcStatus, details: err.message }, null);
        if (server === 'workspace') metrics?.observe(metric, err.code, durationMs / 1000);
        if (!log) return;
        // Built only for a line that is written (a flood's refusals mostly are not).
        const rec = () => ({ [field]: rpc, ...audit, request: req, result: err.code, reason: err.reason, error: err.message, detail: err.detail, durationMs });
        if (err.code === 'INTERNAL') log.error({ ...rec(), cause: err.cause }, `${label} failed: ${err.detail ?? err.message}`);
        else {
          const suppressed = budgetKey !== undefined && BUDGETED.has(err.code) ? this.#budget.take(`${budgetKey}\0${err.code}`) : 0;
          if (suppressed !== undefined) log.warn(suppressed ? { ...rec(), suppressedBefore: suppressed } : rec(), `${label} refused: ${err.code}: ${err.message}${suppressed ? ` (${suppressed} similar refusals not logged before this one)` : ''}`);
        }
      };
      if (scope instanceof IwsError) {
        fail(scope, undefined, {}, undefined);
        return;
      }
      const { context, log, audit, budgetKey } = scope;
      if (log.isLevelEnabled('debug')) log.debug({ [field]: rpc, ...audit, request: req }, `${label} started`);
      let p: Promise<Res>;
      try {
        p = fn(context, req, call);
      } catch (err) {
        fail(err, log, audit, budgetKey);
        return;
      }
      p.then(
        (res) => {
          const durationMs = ms();
          callback(null, res);
          if (server === 'workspace') metrics?.observe(metric, 'OK', durationMs / 1000);
          const note = NOTES.get(call);
          log[okLevel]({ [field]: rpc, ...audit, request: req, ...note?.fields, result: 'OK', durationMs }, `${label} ok${note?.text ? `: ${note.text}` : ''}`);
        },
        (thrown: unknown) => fail(thrown, log, audit, budgetKey),
      );
    };
  }
}

/**
 * Makes `server` answer every method it does not implement through
 * `handler` (a unary handler taking the raw request bytes) instead of
 * grpc-js's silent default, so unknown RPCs are audited like known ones.
 * grpc-js has no public hook for this: it wraps the server's handler lookup
 * (`_retrieveHandler`, grpc-js 1.14, pinned); __test__/guard.test.ts fails if
 * a grpc-js update removes it.
 */
export function auditUnimplemented(server: grpc.Server, handler: (path: string) => grpc.handleUnaryCall<Buffer, Buffer>): void {
  const s = server as unknown as { _retrieveHandler?: (path: string) => unknown };
  const original = s._retrieveHandler;
  if (typeof original !== 'function') throw new Error('grpc-js Server has no _retrieveHandler: auditUnimplemented needs updating for this grpc-js');
  const cache = new Map<string, unknown>();
  s._retrieveHandler = function (path: string) {
    const known = original.call(this, path);
    if (known) return known;
    // Any path: only the first 256 characters name it in the log.
    const name = String(path).slice(0, 256);
    let h = cache.get(name);
    if (!h) {
      h = { func: handler(name), serialize: (b: Buffer) => b, deserialize: (b: Buffer) => b, type: 'unary', path: name };
      if (cache.size < 1000) cache.set(name, h);
    }
    return h;
  };
}
