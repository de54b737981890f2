/**
 * Per-workspace state that must survive daemon restarts (one-shot usage,
 * the mark that was mounted). One JSON file per workspace under
 * `<state-dir>/state/`, which is never bind-mounted into a container, written
 * atomically: temp file, rename (see `save` on durability).
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
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
  }),
  /** proc/sysfs mounts iwsd made (by unique mount id), so they stay unmountable. */
  mounts: z.array(z.object({ mountId: z.string(), kind: z.enum(['proc', 'sysfs']), target: z.string(), pid: z.number().int() })),
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

export class StateStore {
  readonly dir: string;
  #dirMade = false;

  constructor(stateDir: string) {
    this.dir = join(stateDir, 'state');
  }

  #path(id: string): string {
    return join(this.dir, `${id}.json`);
  }

  /** The stored state, undefined if none. Corrupt files are an error naming the file. */
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
    return r.data;
  }

  /**
   * Writes the state atomically: temp file, then rename over the old one, so
   * the file is always one whole state, the last one saved. Synchronous (a
   * few hundred bytes; an RPC waits for its record anyway, and the event
   * loop stalls less than the thread-pool hops of an async write would
   * cost), and not fsync'ed on purpose: a daemon crash keeps the page cache,
   * and a power loss or kernel crash ends every container (and mount) the
   * state describes, so after a reboot none of it can match again (state is
   * tied to an init PID and its start time).
   */
  save(state: WorkspaceState): void {
    if (!this.#dirMade) {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      this.#dirMade = true;
    }
    const path = this.#path(state.id);
    const tmp = `${path}.tmp-${process.pid}`;
    writeFileSync(tmp, `${JSON.stringify(state)}\n`, { mode: 0o600 });
    renameSync(tmp, path);
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

  /** Moves a finished workspace's state to `<state-dir>/archive/`. */
  async archive(id: string): Promise<string | undefined> {
    const archive = join(this.dir, '..', 'archive');
    await mkdir(archive, { recursive: true, mode: 0o700 });
    const to = join(archive, `${id}.${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    try {
      await rename(this.#path(id), to);
      return to;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  /** Moves a (corrupt) state file aside; returns where it went. */
  async quarantine(id: string): Promise<string> {
    const to = `${this.#path(id)}.corrupt-${Date.now()}`;
    await rename(this.#path(id), to);
    return to;
  }

  async remove(id: string): Promise<void> {
    await rm(this.#path(id), { force: true });
  }
}
