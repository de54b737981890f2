/**
 * Per-workspace state that must survive daemon restarts (one-shot usage,
 * the mark that was mounted). One JSON file per workspace under
 * `<state-dir>/state/`, which is never bind-mounted into a container, written
 * atomically: temp file, fsync, rename, fsync of the directory.
 */
import { open, readFile, rename, rm, mkdir } from 'node:fs/promises';
import { join } from 'node:path';

import { z } from 'zod';

import { IwsError } from './errors.js';

const MappingSchema = z.object({ containerId: z.number().int(), hostId: z.number().int(), size: z.number().int() });

export const WorkspaceStateSchema = z.object({
  version: z.literal(1),
  id: z.string(),
  /** Identity of the container: its init's host PID and start time. */
  container: z.object({ hostPid: z.number().int(), startTime: z.number().int() }),
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

  /** Writes the state atomically and durably. */
  async save(state: WorkspaceState): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const path = this.#path(state.id);
    const tmp = `${path}.tmp-${process.pid}`;
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(`${JSON.stringify(state, null, 2)}\n`);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
    const dir = await open(this.dir, 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
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
