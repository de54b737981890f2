/**
 * What PrepareForUserNS answers in `fs_shift`, apart from which mark it made.
 *
 * The original contract knows SHIFTFS (0) and FUSE (1); iwsd added IDMAPPED
 * (2). A client that knows only the original two (Gitpod's workspacekit)
 * refuses any other value ("unknown FS shift method"), yet an idmapped mark is
 * used exactly like a FUSE one: bind the mark (recursively) as the ring's root.
 * So an idmapped mark is answered as FUSE unless the client says it knows
 * IDMAPPED (request metadata `iwsd-fs-shift-accept: idmapped`) or the daemon
 * is configured to report it as such (`shift.idmappedAnswer: idmapped`).
 *
 * Only the label changes: the mark (method, mount, helper) is chosen by the
 * daemon from its configuration and the kernel before the answer is made,
 * and nothing a client sends reaches that choice.
 */
import * as grpc from '@grpc/grpc-js';

import type { FSShiftMethod } from './gen/iws/FSShiftMethod.js';
import type { ShiftMethod } from './native.js';

/** Request metadata by which a client lists the FSShiftMethod values it knows beyond SHIFTFS and FUSE (comma-separated, any case). */
export const FS_SHIFT_ACCEPT_HEADER = 'iwsd-fs-shift-accept';

/** The values a client that knows IDMAPPED sends in {@link FS_SHIFT_ACCEPT_HEADER}. */
export const FS_SHIFT_ACCEPT_ALL = 'idmapped';

/** A mark's method: the binding's type. */
export type MarkMethod = ShiftMethod;

/** What an idmapped mark is reported as to a client that did not say it knows IDMAPPED (config `shift.idmappedAnswer`). */
export const IDMAPPED_ANSWERS = ['fuse', 'idmapped'] as const satisfies readonly MarkMethod[];
export type IdmappedAnswer = (typeof IDMAPPED_ANSWERS)[number];

/** Of the metadata's values, at most this many characters are read (the rest is ignored). */
const MAX_HEADER_CHARS = 256;

/** The FSShiftMethod names (lower case) a call's metadata says its client knows beyond SHIFTFS and FUSE. */
export function acceptedShiftMethods(metadata: Pick<grpc.Metadata, 'get'> | undefined): Set<string> {
  const out = new Set<string>();
  let budget = MAX_HEADER_CHARS;
  for (const v of metadata?.get(FS_SHIFT_ACCEPT_HEADER) ?? []) {
    if (budget <= 0) break;
    const s = (typeof v === 'string' ? v : v.toString('latin1')).slice(0, budget);
    budget -= s.length;
    for (const part of s.split(',')) {
      const name = part.trim().toLowerCase();
      if (name) out.add(name);
    }
  }
  return out;
}

const LABELS: Record<MarkMethod, FSShiftMethod> = { idmapped: 'IDMAPPED', fuse: 'FUSE', shiftfs: 'SHIFTFS' };

/**
 * The `fs_shift` to answer for a mark made with `mark`: its own label, except
 * an idmapped mark for a client that does not know IDMAPPED (FUSE: the same
 * steps for the client, "bind the mark"), unless `idmappedAnswer` is
 * `idmapped`. `why` says which rule decided, for the log.
 */
export function shiftAnswer(mark: MarkMethod, accepts: ReadonlySet<string>, idmappedAnswer: IdmappedAnswer): { answered: FSShiftMethod; why: string } {
  if (mark !== 'idmapped') return { answered: LABELS[mark], why: 'the mark’s own method' };
  if (accepts.has('idmapped')) return { answered: 'IDMAPPED', why: `the client accepts IDMAPPED (${FS_SHIFT_ACCEPT_HEADER})` };
  if (idmappedAnswer === 'idmapped') return { answered: 'IDMAPPED', why: 'shift.idmappedAnswer is idmapped' };
  return { answered: 'FUSE', why: `the client did not say it knows IDMAPPED (no ${FS_SHIFT_ACCEPT_HEADER}: idmapped); FUSE means the same to it: bind the mark` };
}

/**
 * The metadata by which a PrepareForUserNS caller says it knows IDMAPPED
 * (without it an idmapped mark is answered as FUSE). iwsd's own client and
 * `iwsd call` send it.
 */
export function fsShiftAcceptMetadata(): grpc.Metadata {
  const m = new grpc.Metadata();
  m.set(FS_SHIFT_ACCEPT_HEADER, FS_SHIFT_ACCEPT_ALL);
  return m;
}
