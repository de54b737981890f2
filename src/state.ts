/**
 * Per-workspace state that must survive daemon restarts (one-shot usage,
 * the mark that was mounted). One JSON file per workspace under
 * `<state-dir>/state/`, which is never bind-mounted into a container, written
 * atomically: temp file, rename (see `save` on durability).
 */
import { closeSync, ftruncateSync, fstatSync, mkdirSync, openSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { z } from 'zod';

import { IwsError } from './errors.js';

const MappingSchema = z.object({ containerId: z.number().int(), hostId: z.number().int(), size: z.number().int() });
const RangeSchema = z.object({ start: z.number().int(), size: z.number().int() });

export const WorkspaceStateSchema = z.object({
  version: z.literal(1),
  id: z.string(),
  /** Identity of the container: its init's host PID and start time. */
  container: z.object({ hostPid: z.number().int(), startTime: z.number().int() }),
  /** How it was registered: enough to serve it again after a restart. */
  registration: z.object({
    rootRange: RangeSchema,
    userRanges: z.array(RangeSchema),
    shift: z.array(MappingSchema),
    markPath: z.string(),
    fullWorkspaceBackup: z.boolean(),
    /** Absent in older state: false. */
    persistentVolumeClaim: z.boolean().optional(),
  }),
  /**
   * The workspace directory existed before the registration: the runtime
   * made it (the bind-mount source of /.workspace), so teardown empties it
   * and leaves it for the workspace's next container. Absent in older state:
   * kept too.
   */
  runtimeDir: z.boolean().optional(),
  /** proc/sysfs/nfs mounts iwsd made (by unique mount id), so they stay unmountable. */
  mounts: z.array(
    z.object({
      mountId: z.string(),
      kind: z.enum(['proc', 'sysfs', 'nfs']),
      target: z.string(),
      pid: z.number().int(),
      /** Who it was made for (kernel euid, user namespace "DEV:INO"); absent in older records: then only container root may unmount it. */
      madeFor: z.object({ euid: z.number().int(), userns: z.string() }).optional(),
    }),
  ),
  prepared: z.boolean(),
  tornDown: z.boolean(),
  /** The mark PrepareForUserNS mounted, until Teardown removes it. */
  mark: z
    .object({
      method: z.enum(['idmapped', 'fuse', 'shiftfs']),
      mountId: z.string(),
      fusePid: z.number().int().nullable(),
      markPath: z.string(),
      shift: z.array(MappingSchema),
    })
    .nullable(),
});

export type WorkspaceState = z.infer<typeof WorkspaceStateSchema>;

type MountRecord = WorkspaceState['mounts'][number];

/** One change to the mounts of a workspace. */
export type MountEvent = { add: MountRecord } | { del: string };

/** One change to a workspace's state: a line of its journal. */
export type StateEvent = MountEvent | { set: Partial<Pick<WorkspaceState, 'prepared' | 'tornDown' | 'mark'>> };

const StateEventSchema = z.union([
  z.object({ add: WorkspaceStateSchema.shape.mounts.element }).strict(),
  z.object({ del: z.string() }).strict(),
  z.object({ set: WorkspaceStateSchema.pick({ prepared: true, tornDown: true, mark: true }).partial().strict() }).strict(),
]);

/**
 * A failed write of the state store as the caller sees it: UNAVAILABLE (a
 * daemon-wide condition that retrying later may clear, never INTERNAL), with
 * a message saying the store is full when it is. `what` says what was not
 * recorded and what was done about it.
 */
export function storeWriteFailed(err: unknown, what: string): IwsError {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const full = code === 'ENOSPC' || code === 'EDQUOT';
  const why = full ? "the daemon's state store is full" : `the daemon could not write its state store (${code ?? 'error'})`;
  return new IwsError('UNAVAILABLE', `${why}; ${what}; retry later`, {
    detail: (err as Error | undefined)?.message,
    reason: full ? 'Limit' : undefined,
    cause: err,
  });
}

/** Journal lines after which the next change writes a new snapshot instead. */
const JOURNAL_LIMIT = 512;

/**
 * Where a workspace's state lives: a snapshot `<id>.json` (written on
 * registration and every JOURNAL_LIMIT changes) and a journal
 * `<id>.mounts.jsonl` of the changes since (mounts made and removed,
 * one-shot use, the mark), one appended line each. A change then costs an
 * open/append/close (~18 µs here), not a rewrite of the snapshot (temp file
 * and a rename over the old one, which on ext4 starts writeback: ~0.1-0.3
 * ms). The journal is not kept open between changes (~15 µs more per change
 * here, but the daemon's descriptors stay what it serves).
 *
 * Durability, on purpose: written before the RPC that changed it answers,
 * synchronously (a few hundred bytes; cheaper than the thread-pool hops of an
 * async write), never fsync'ed. A daemon crash (kill -9 included) keeps the
 * page cache, and a line is one write(2), whole or not at all; a power loss
 * or kernel crash ends every container and mount the state describes, and
 * state is tied to a container init's PID and start time, so nothing can
 * match it after a reboot. A failed or short write (ENOSPC) is cut off
 * again, so the journal never holds a torn line before a later one.
 */
export class StateStore {
  readonly dir: string;
  #dirMade = false;
  /** Journal lines written per workspace since its last snapshot. */
  #journalLines = new Map<string, number>();

  constructor(
    stateDir: string,
    /** Retention of archive/: the newest `keep` files, none older than `maxAgeDays`. */
    readonly retention: { keep: number; maxAgeDays: number } = { keep: 1000, maxAgeDays: 30 },
  ) {
    this.dir = join(stateDir, 'state');
  }

  /** Applies the retention to archive/: removes files beyond `keep` (oldest first) and older than `maxAgeDays`. Returns the names removed. */
  async pruneArchive(now = Date.now()): Promise<string[]> {
    const archive = join(this.dir, '..', 'archive');
    let names: string[];
    try {
      names = (await readdir(archive)).filter((n) => n.endsWith('.json'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const files = await Promise.all(names.map(async (name) => ({ name, mtime: (await stat(join(archive, name)).catch(() => undefined))?.mtimeMs })));
    const dated = files.filter((f): f is { name: string; mtime: number } => f.mtime !== undefined).sort((a, b) => b.mtime - a.mtime || (a.name < b.name ? 1 : -1));
    const oldest = now - this.retention.maxAgeDays * 86_400_000;
    const doomed = dated.filter((f, i) => i >= this.retention.keep || f.mtime < oldest).map((f) => f.name);
    for (const n of doomed) await rm(join(archive, n), { force: true });
    return doomed;
  }

  #path(id: string): string {
    return join(this.dir, `${id}.json`);
  }

  #journal(id: string): string {
    return join(this.dir, `${id}.mounts.jsonl`);
  }

  #mkdir(): void {
    if (!this.#dirMade) {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      this.#dirMade = true;
    }
  }

  /**
   * The stored state (snapshot plus journal), undefined if none. Corrupt
   * files are an error naming the file. A torn last journal line (a crash in
   * the middle of an append) is ignored: its RPC never answered (and the
   * registration that follows a load writes a fresh snapshot).
   */
  async load(id: string): Promise<WorkspaceState | undefined> {
    let text: string;
    try {
      text = await readFile(this.#path(id), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new IwsError('INTERNAL', `state file ${this.#path(id)} is not valid JSON`);
    }
    const r = WorkspaceStateSchema.safeParse(parsed);
    if (!r.success) throw new IwsError('INTERNAL', `state file ${this.#path(id)} is invalid: ${r.error.issues[0]?.message}`);
    const state = r.data;
    let journal = '';
    try {
      journal = await readFile(this.#journal(id), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const lines = journal.split('\n');
    const complete = lines.slice(0, -1); // the part after the last newline is torn or empty
    if (complete.length === 0) return state;
    const mounts = new Map(state.mounts.map((m) => [m.mountId, m]));
    let folded: WorkspaceState = state;
    complete.forEach((line, i) => {
      let ev: StateEvent;
      try {
        ev = StateEventSchema.parse(JSON.parse(line));
      } catch {
        throw new IwsError('INTERNAL', `state journal ${this.#journal(id)} line ${i + 1} is invalid`);
      }
      if ('add' in ev) mounts.set(ev.add.mountId, ev.add);
      else if ('del' in ev) mounts.delete(ev.del);
      else folded = { ...folded, ...ev.set };
    });
    this.#journalLines.set(id, complete.length);
    return { ...folded, mounts: [...mounts.values()] };
  }

  /**
   * Writes a snapshot of the whole state atomically (temp file, rename over
   * the old one), then empties the journal. A crash in between replays the
   * journal over the new snapshot, which changes nothing: its changes are
   * already in it.
   */
  save(state: WorkspaceState): void {
    this.#mkdir();
    const path = this.#path(state.id);
    const tmp = `${path}.tmp-${process.pid}`;
    writeFileSync(tmp, `${JSON.stringify(state)}\n`, { mode: 0o600 });
    renameSync(tmp, path);
    if (this.#journalLines.get(state.id) !== 0) {
      rmSync(this.#journal(state.id), { force: true });
      this.#journalLines.set(state.id, 0);
    }
  }

  /**
   * Records one change (a mount made or removed, a one-shot used, the mark
   * mounted or removed). `state` already includes it; it becomes the next
   * snapshot when the journal is full. Throws (nothing recorded) when the
   * line cannot be written whole.
   */
  record(state: WorkspaceState, event: StateEvent): void {
    const n = this.#journalLines.get(state.id) ?? 0;
    if (n >= JOURNAL_LIMIT) {
      this.save(state);
      return;
    }
    this.#append(state.id, `${JSON.stringify(event)}\n`);
    this.#journalLines.set(state.id, n + 1);
  }

  /** Appends `line` to a journal, whole or not at all. */
  #append(id: string, line: string): void {
    this.#mkdir();
    const fd = openSync(this.#journal(id), 'a', 0o600);
    try {
      const size = fstatSync(fd).size;
      const buf = Buffer.from(line);
      try {
        const written = writeSync(fd, buf);
        if (written !== buf.length) throw Object.assign(new Error(`short write to ${this.#journal(id)} (${written} of ${buf.length} bytes)`), { code: 'ENOSPC' });
      } catch (err) {
        // Cut a partial line off again (a torn line before a later one would make the journal unreadable).
        ftruncateSync(fd, size);
        throw err;
      }
    } finally {
      closeSync(fd);
    }
  }

  /** Ids with a state file (leftover temp files from a crash are removed). */
  async ids(): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    for (const n of names.filter((n) => n.includes('.json.tmp-'))) await rm(join(this.dir, n), { force: true });
    return names.filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -'.json'.length));
  }

  /** Moves a finished workspace's state (journal folded in) to `<state-dir>/archive/`, then applies the retention (pruneArchive). */
  async archive(id: string): Promise<string | undefined> {
    const archive = join(this.dir, '..', 'archive');
    await mkdir(archive, { recursive: true, mode: 0o700 });
    const to = join(archive, `${id}.${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    const state = await this.load(id).catch(() => undefined);
    try {
      if (state) {
        await writeFile(to, `${JSON.stringify(state)}\n`, { mode: 0o600 });
        await rm(this.#path(id), { force: true });
      } else {
        await rename(this.#path(id), to);
      }
      await this.pruneArchive();
      return to;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    } finally {
      await rm(this.#journal(id), { force: true });
      this.#journalLines.delete(id);
    }
  }

  /** Moves a (corrupt) state file and its journal aside; returns where the state went. */
  async quarantine(id: string): Promise<string> {
    const stamp = Date.now();
    const to = `${this.#path(id)}.corrupt-${stamp}`;
    await rename(this.#path(id), to);
    await rename(this.#journal(id), `${this.#journal(id)}.corrupt-${stamp}`).catch(() => undefined);
    this.#journalLines.delete(id);
    return to;
  }
}
