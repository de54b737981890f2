/**
 * iwsd as an NRI plugin: connects to the runtime's NRI socket, registers,
 * and for containers of workspace pods (see workspaces.ts)
 *
 * - CreateContainer: prepares (creates, seals) `<state>/workspaces/<id>` and
 *   answers with a read-only bind mount of it at `/.workspace`;
 * - StartContainer (StateChange START on NRI < 0.12): registers the
 *   container by its init pid;
 * - StopContainer / RemoveContainer (or StateChange REMOVE): tears it down;
 * - Synchronize (every (re)connect): registers running workspace containers
 *   not yet registered, adopts those restored from disk, drops those gone.
 *
 * Any other pod or container is answered at once and never touched.
 * Reconnects with backoff whenever the connection goes (runtime restart).
 * Every answer comes within the runtime's request timeout: slow work goes
 * on in the background.
 */
import type { Logger } from '../log.js';
import type { AddWorkspaceOptions, WorkspaceInfo } from '../daemon.js';
import { toIwsError } from '../errors.js';
import { NriConnection, type RequestContext } from './connection.js';
import { EVENT, eventMask, NRI_VERSION } from './proto.js';
import { CODE, StatusError } from './ttrpc.js';
import { logFields, workspaceOf, type NriContainer, type NriPod, type WorkspaceSpec } from './workspaces.js';

/** What the plugin needs of the daemon. */
export interface WorkspaceHost {
  /** Creates and seals the workspace directory (before the container exists); returns its path. */
  prepareWorkspace(id: string, markPath?: string): Promise<string>;
  /** Removes a prepared directory no registered workspace uses. */
  discardWorkspace(id: string): Promise<void>;
  addWorkspace(opts: AddWorkspaceOptions): Promise<WorkspaceInfo>;
  /** Tears a registered workspace down; with ifPresent, one that is not registered is no error. */
  removeWorkspace(id: string, opts?: { ifPresent?: boolean }): Promise<unknown>;
  list(): Pick<WorkspaceInfo, 'id' | 'hostPid'>[];
}

export interface NriOptions {
  socket: string;
  pluginName: string;
  pluginIndex: string;
  /** Backoff between connection attempts (ms). */
  backoff?: { initialMs: number; maxMs: number };
  /** Called when the connection comes or goes. */
  onStatus?: (s: NriStatus) => void;
}

export interface NriMetrics {
  event(name: string, result: 'ok' | 'error' | 'ignored'): void;
  error(kind: string): void;
  connected(up: boolean): void;
}

export interface NriStatus {
  socket: string;
  plugin: string;
  connected: boolean;
  runtime?: string;
  nriVersion?: string;
  since?: string;
  lastError?: string;
  reconnects: number;
}

const MOUNT_OPTIONS = ['rbind', 'ro', 'nosuid', 'nodev', 'noexec'];
const STATE_RUNNING = 'CONTAINER_RUNNING';
const STATE_CREATED = 'CONTAINER_CREATED';

function deadline<T>(p: Promise<T>, ms: number): Promise<{ done: true; value: T } | { done: false }> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.then((value) => ({ done: true as const, value })),
    new Promise<{ done: false }>((r) => {
      timer = setTimeout(() => r({ done: false }), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

export class NriPlugin {
  #conn: NriConnection | undefined;
  #closed = false;
  #wake: (() => void) | undefined;
  #loop: Promise<void> | undefined;
  /** Request timeout the runtime announced in Configure (ms). */
  #requestTimeout = 2000;
  /** container id → workspace id, for containers this plugin registered or adopted. */
  #owned = new Map<string, string>();
  /** Per-workspace queue: create, start, stop and sync for one id never overlap. */
  #queues = new Map<string, Promise<unknown>>();
  #sync: { pods: NriPod[]; containers: NriContainer[] } = { pods: [], containers: [] };
  #status: NriStatus;
  /** Background work still running (tests and close wait for it). */
  #background = new Set<Promise<unknown>>();

  constructor(
    readonly host: WorkspaceHost,
    readonly opts: NriOptions,
    readonly log: Logger,
    readonly metrics?: NriMetrics,
  ) {
    this.#status = { socket: opts.socket, plugin: `${opts.pluginIndex}-${opts.pluginName}`, connected: false, reconnects: 0 };
  }

  status(): NriStatus {
    return { ...this.#status };
  }

  /** Starts connecting (and reconnecting) in the background. */
  start(): void {
    this.#loop ??= this.#run();
  }

  async #run(): Promise<void> {
    const { initialMs, maxMs } = this.opts.backoff ?? { initialMs: 500, maxMs: 30_000 };
    let delay = initialMs;
    let failures = 0;
    while (!this.#closed) {
      let conn: NriConnection | undefined;
      try {
        conn = await NriConnection.connect(this.opts.socket, (m, r, ctx) => this.#handle(m, r, ctx));
        this.#conn = conn;
        const closed = new Promise<Error | undefined>((r) => conn!.once('close', r));
        conn.on('protocolWarning', (msg) => {
          this.metrics?.error('protocol');
          this.log.warn({ nriSocket: this.opts.socket }, `NRI: ${msg}`);
        });
        await conn.call('RegisterPlugin', { pluginName: this.opts.pluginName, pluginIdx: this.opts.pluginIndex, NRIVersion: NRI_VERSION });
        this.#status = { ...this.#status, connected: true, since: new Date().toISOString() };
        this.metrics?.connected(true);
        this.opts.onStatus?.(this.status());
        this.log.info({ nriSocket: this.opts.socket, plugin: this.#status.plugin, runtime: this.#status.runtime }, `NRI: registered as plugin ${this.#status.plugin} with ${this.#status.runtime ?? 'the runtime'}`);
        delay = initialMs;
        failures = 0;
        const why = await closed;
        if (this.#closed) break;
        this.#lost(why);
      } catch (err) {
        conn?.close();
        if (this.#closed) break;
        failures++;
        this.#lost(err as Error, failures);
      }
      this.#conn = undefined;
      this.#status.reconnects++;
      await new Promise<void>((r) => {
        const t = setTimeout(r, delay * (0.75 + Math.random() * 0.5));
        this.#wake = () => {
          clearTimeout(t);
          r();
        };
      });
      this.#wake = undefined;
      delay = Math.min(delay * 2, maxMs);
    }
  }

  #lost(err: Error | undefined, failures = 0): void {
    const was = this.#status.connected;
    this.#status = { ...this.#status, connected: false, lastError: err?.message ?? 'closed' };
    this.metrics?.connected(false);
    if (was || failures === 1) this.opts.onStatus?.(this.status());
    this.metrics?.error(was ? 'disconnected' : 'connect');
    const fields = { nriSocket: this.opts.socket, error: err?.message };
    // Loud once per outage; quiet while the runtime stays away.
    if (was) this.log.warn(fields, `NRI: connection to ${this.opts.socket} lost (${err?.message ?? 'closed'}); reconnecting with backoff`);
    else if (failures === 1 || failures % 20 === 0) this.log.warn({ ...fields, attempts: failures }, `NRI: cannot connect to ${this.opts.socket} (${err?.message}); retrying with backoff`);
    else this.log.debug({ ...fields, attempts: failures }, 'NRI: connect attempt failed');
  }

  /** Runs `fn` after every earlier task for workspace `id`. */
  #queue<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.#queues.get(id) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.#queues.set(id, tail);
    void tail.then(() => {
      if (this.#queues.get(id) === tail) this.#queues.delete(id);
    });
    return next;
  }

  #bg(p: Promise<unknown>): void {
    const q = p.catch(() => undefined);
    this.#background.add(q);
    void q.then(() => this.#background.delete(q));
  }

  /** Resolves when no background work is left (for tests). */
  async idle(): Promise<void> {
    while (this.#background.size || this.#queues.size) await Promise.all([...this.#background, ...this.#queues.values()]);
  }

  async #handle(method: string, req: Record<string, unknown>, ctx: RequestContext): Promise<Record<string, unknown> | undefined> {
    const pod = req.pod as NriPod | undefined;
    const container = req.container as NriContainer | undefined;
    switch (method) {
      case 'Configure':
        return this.#configure(req);
      case 'Synchronize':
        return this.#synchronize(req);
      case 'Shutdown':
        this.log.info({ nriSocket: this.opts.socket }, 'NRI: the runtime asked the plugin to shut down; will reconnect');
        return {};
      case 'CreateContainer':
        return this.#event('CreateContainer', pod, container!, ctx, (ws) => this.#create(ws, pod, container!));
      case 'StartContainer':
        return this.#event('StartContainer', pod, container!, ctx, (ws) => this.#start(ws, pod, container!));
      case 'StopContainer':
        return this.#event('StopContainer', pod, container!, ctx, (ws) => this.#stop(ws, pod, container!, 'stopped'));
      case 'RemoveContainer':
        return this.#event('RemoveContainer', pod, container!, ctx, (ws) => this.#stop(ws, pod, container!, 'removed'));
      case 'StateChange': {
        // NRI < 0.12 (containerd 2.0-2.2) reports start and remove only here.
        const ev = req.event as string | undefined;
        if (ev === 'START_CONTAINER') await this.#event('StateChange', pod, container!, ctx, (ws) => this.#start(ws, pod, container!)).catch(() => undefined);
        else if (ev === 'REMOVE_CONTAINER') await this.#event('StateChange', pod, container!, ctx, (ws) => this.#stop(ws, pod, container!, 'removed')).catch(() => undefined);
        return {};
      }
      default:
        // UNIMPLEMENTED: NRI 0.12 falls back to StateChange for pod and post-* events.
        return undefined;
    }
  }

  #configure(req: Record<string, unknown>): Record<string, unknown> {
    const timeout = Number(req.requestTimeout ?? 0);
    if (timeout > 0) this.#requestTimeout = timeout;
    this.#status = { ...this.#status, runtime: `${typeof req.runtimeName === 'string' ? req.runtimeName : '?'} ${typeof req.runtimeVersion === 'string' ? req.runtimeVersion : ''}`.trim(), nriVersion: (typeof req.NRIVersion === 'string' && req.NRIVersion) || undefined };
    this.log.info({ nriSocket: this.opts.socket, runtime: this.#status.runtime, nriVersion: this.#status.nriVersion, requestTimeoutMs: this.#requestTimeout }, 'NRI: configured by the runtime');
    // The runtime may configure after it answered RegisterPlugin: report the runtime then too.
    if (this.#status.connected) this.opts.onStatus?.(this.status());
    // Within 4..11 so that older runtimes accept the mask.
    return { events: eventMask([EVENT.CREATE_CONTAINER, EVENT.START_CONTAINER, EVENT.STOP_CONTAINER, EVENT.REMOVE_CONTAINER]) };
  }

  /**
   * One container event: not a workspace → answered at once; else `fn`
   * within a budget below the request timeout. `fn` throws StatusError to
   * refuse (fail-closed); on a blown budget CreateContainer is refused and
   * the others answer OK and go on in the background.
   */
  async #event(
    name: string,
    pod: NriPod | undefined,
    container: NriContainer,
    ctx: RequestContext,
    fn: (ws: WorkspaceSpec) => Promise<Record<string, unknown>>,
  ): Promise<Record<string, unknown>> {
    let ws: WorkspaceSpec | undefined;
    const log = this.log.child(logFields(pod, container));
    try {
      ws = workspaceOf(pod, container);
    } catch (err) {
      this.metrics?.event(name, 'error');
      log.error({ error: (err as Error).message }, `NRI ${name}: workspace pod refused: ${(err as Error).message}`);
      throw new StatusError(CODE.INVALID_ARGUMENT, `iwsd: ${(err as Error).message}`);
    }
    if (!ws) {
      this.metrics?.event(name, 'ignored');
      return {};
    }
    const budget = Math.max(100, Math.min(ctx.timeoutMs || this.#requestTimeout, this.#requestTimeout) * 0.6);
    const work = this.#queue(ws.id, () => fn(ws));
    this.#bg(work);
    const r = await deadline(work, budget).catch((err: unknown) => {
      this.metrics?.event(name, 'error');
      throw err;
    });
    if (r.done) {
      this.metrics?.event(name, 'ok');
      return r.value;
    }
    this.metrics?.error('slow');
    if (name === 'CreateContainer') {
      log.error({ workspace: ws.id, budgetMs: budget }, `NRI ${name}: workspace ${ws.id} not ready within ${budget} ms; refusing`);
      throw new StatusError(CODE.UNAVAILABLE, `iwsd: workspace ${ws.id} not ready in time`);
    }
    log.warn({ workspace: ws.id, budgetMs: budget }, `NRI ${name}: workspace ${ws.id} takes longer than ${budget} ms; answered, going on in the background`);
    return {};
  }

  async #create(ws: WorkspaceSpec, pod: NriPod | undefined, c: NriContainer): Promise<Record<string, unknown>> {
    const log = this.log.child({ ...logFields(pod, c), workspace: ws.id });
    let dir: string;
    try {
      dir = await this.host.prepareWorkspace(ws.id, ws.markPath);
    } catch (err) {
      const e = toIwsError(err);
      log.error({ error: e.message, code: e.code }, `NRI CreateContainer: workspace ${ws.id} directory not prepared (${e.message}); refusing the container`);
      throw new StatusError(CODE.FAILED_PRECONDITION, `iwsd: workspace ${ws.id}: ${e.message}`);
    }
    log.info({ dir }, `NRI CreateContainer: workspace ${ws.id}: bind ${dir} read-only at /.workspace`);
    return { adjust: { mounts: [{ destination: '/.workspace', type: 'bind', source: dir, options: MOUNT_OPTIONS }] } };
  }

  async #register(ws: WorkspaceSpec, c: NriContainer, log: Logger): Promise<void> {
    const pid = c.pid ?? 0;
    if (pid < 1) throw new StatusError(CODE.FAILED_PRECONDITION, `iwsd: container ${c.id} of workspace ${ws.id} has no pid`);
    const known = this.host.list().find((w) => w.id === ws.id);
    if (known?.hostPid === pid) {
      this.#owned.set(c.id!, ws.id);
      log.info({ hostPid: pid }, `NRI: workspace ${ws.id} already registered with pid ${pid}; adopted`);
      return;
    }
    if (known) throw new StatusError(CODE.FAILED_PRECONDITION, `iwsd: workspace ${ws.id} is already registered for another container (pid ${known.hostPid})`);
    await this.host.addWorkspace({ ...ws, hostPid: pid });
    this.#owned.set(c.id!, ws.id);
    log.info({ hostPid: pid }, `NRI: workspace ${ws.id} registered (container ${c.name}, pid ${pid})`);
  }

  async #start(ws: WorkspaceSpec, pod: NriPod | undefined, c: NriContainer): Promise<Record<string, unknown>> {
    const log = this.log.child({ ...logFields(pod, c), workspace: ws.id });
    try {
      await this.#register(ws, c, log);
    } catch (err) {
      const e = err instanceof StatusError ? err : new StatusError(CODE.FAILED_PRECONDITION, `iwsd: workspace ${ws.id}: ${toIwsError(err).message}`);
      log.error({ error: e.message }, `NRI StartContainer: workspace ${ws.id} not registered (${e.message}); refusing the start`);
      throw e;
    }
    return {};
  }

  async #stop(ws: WorkspaceSpec, pod: NriPod | undefined, c: NriContainer, what: 'stopped' | 'removed'): Promise<Record<string, unknown>> {
    const log = this.log.child({ ...logFields(pod, c), workspace: ws.id });
    const owner = this.#owned.get(c.id!);
    this.#owned.delete(c.id!);
    const registered = this.host.list().some((w) => w.id === ws.id);
    // Only the registration of this container: another container under the same id stays.
    const mine = owner === ws.id || (registered && ![...this.#owned.values()].includes(ws.id));
    try {
      if (registered && mine) {
        await this.host.removeWorkspace(ws.id, { ifPresent: true });
        log.info(`NRI: container ${what}; workspace ${ws.id} torn down`);
      } else if (!registered && what === 'removed') {
        await this.host.discardWorkspace(ws.id);
        log.debug(`NRI: container removed; unused directory of workspace ${ws.id} removed`);
      }
    } catch (err) {
      this.metrics?.error('teardown');
      log.error({ error: toIwsError(err).message }, `NRI: workspace ${ws.id} not torn down: ${toIwsError(err).message}`);
    }
    return {};
  }

  #synchronize(req: Record<string, unknown>): Record<string, unknown> {
    this.#sync.pods.push(...((req.pods as NriPod[] | undefined) ?? []));
    this.#sync.containers.push(...((req.containers as NriContainer[] | undefined) ?? []));
    if (req.more) return { more: true };
    const { pods, containers } = this.#sync;
    this.#sync = { pods: [], containers: [] };
    this.#bg(this.#reconcile(pods, containers));
    return {};
  }

  /** After Synchronize: the runtime's running workspace containers are the registered ones. */
  async #reconcile(pods: NriPod[], containers: NriContainer[]): Promise<void> {
    const byId = new Map(pods.map((p) => [p.id, p]));
    const seen = new Set<string>();
    let registered = 0;
    let adopted = 0;
    let dropped = 0;
    for (const c of containers) {
      const pod = byId.get(c.podSandboxId);
      let ws: WorkspaceSpec | undefined;
      try {
        ws = workspaceOf(pod, c);
      } catch (err) {
        this.log.error({ ...logFields(pod, c), error: (err as Error).message }, `NRI Synchronize: ${(err as Error).message}`);
        continue;
      }
      this.log.debug({ ...logFields(pod, c), state: c.state, pid: c.pid, workspace: ws?.id }, 'NRI Synchronize: container');
      if (!ws) continue;
      seen.add(c.id!);
      if (c.state !== STATE_RUNNING && c.state !== STATE_CREATED) continue;
      if (!c.pid) continue;
      const log = this.log.child({ ...logFields(pod, c), workspace: ws.id });
      const spec = ws;
      await this.#queue(ws.id, async () => {
        const before = this.host.list().some((w) => w.id === spec.id);
        try {
          await this.#register(spec, c, log);
          if (before) adopted++;
          else registered++;
        } catch (err) {
          this.metrics?.error('synchronize');
          log.error({ error: (err as Error).message }, `NRI Synchronize: workspace ${spec.id} not registered: ${(err as Error).message}`);
        }
      });
    }
    for (const [cid, id] of [...this.#owned]) {
      if (seen.has(cid)) continue;
      this.#owned.delete(cid);
      await this.#queue(id, async () => {
        await this.host.removeWorkspace(id, { ifPresent: true }).catch(() => undefined);
        dropped++;
        this.log.info({ workspace: id, containerId: cid }, `NRI Synchronize: container of workspace ${id} is gone; torn down`);
      });
    }
    this.log.info({ registered, adopted, dropped, containers: containers.length }, `NRI: synchronized (${registered} registered, ${adopted} already known, ${dropped} dropped)`);
  }

  /** Stops (re)connecting and closes the connection. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#wake?.();
    this.#conn?.close();
    await this.#loop;
    await this.idle();
    this.metrics?.connected(false);
  }
}
