/**
 * Configuration: embedded defaults < config file (JSON) < environment
 * (IWSD_*) < command-line flags. Validated with zod; errors name the field.
 */
import { readFileSync } from 'node:fs';

import { z } from 'zod';

import { IwsError, toIwsError } from './errors.js';
import { IDMAPPED_ANSWERS } from './fsShift.js';
import { checkMaskEntry, ID_POLICY_DEFAULTS, LIFECYCLE_RULES, MASK_DEFAULTS, MOUNT_STRATEGIES, parseIdRange, PID_STRATEGIES, SHIFT_METHOD_CHOICES, validateWorkspaceCidr } from './native.js';
import { LOOPBACK } from './observability.js';

/**
 * A string checked (and converted) by the core's own parser or rule (through
 * the binding): the issue is the core's message, which names the value, what
 * it must be and an example.
 */
function coreChecked<T>(parse: (s: string) => T) {
  return z.string().transform((s, ctx) => {
    try {
      return parse(s);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: toIwsError(err).message });
      return z.NEVER;
    }
  });
}

/** "START:SIZE" → { start, size }, both u32 (the core's parser). */
export const IdRangeSchema = coreChecked(parseIdRange);

/** A path inside proc/sysfs: relative, bounded, without '.' or '..' parts (the core's rule). */
const MaskEntry = coreChecked((s) => {
  checkMaskEntry(s);
  return s;
});

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** A token bucket per workspace: `points` calls per `durationSeconds`. */
function rateLimit(points: number, durationSeconds: number) {
  return z
    .object({
      points: z.number().int().positive().default(points),
      durationSeconds: z.number().int().positive().default(durationSeconds),
    })
    .strict()
    .prefault({});
}

export const ConfigSchema = z
  .object({
    stateDir: z.string().min(1).default('/run/iwsd'),
    logLevel: z.enum(LOG_LEVELS).default('info'),
    pidStrategy: z.enum(PID_STRATEGIES).default('auto'),
    mountStrategy: z.enum(MOUNT_STRATEGIES).default('auto'),
    idPolicy: z
      .object({
        // Defaults: the core's (crates/iws-core/src/idmap.rs), never restated here.
        rootRange: IdRangeSchema.default(() => ({ ...ID_POLICY_DEFAULTS.rootRange })),
        userRanges: z
          .array(IdRangeSchema)
          .max(ID_POLICY_DEFAULTS.maxUserRanges)
          .default(() => ID_POLICY_DEFAULTS.userRanges.map((r) => ({ ...r }))),
        allowHostRoot: z.boolean().default(ID_POLICY_DEFAULTS.allowHostRoot),
        /** Rings keep setgroups(2); by default `deny` is written before every gid map. */
        allowSetgroups: z.boolean().default(ID_POLICY_DEFAULTS.allowSetgroups),
      })
      .strict()
      .prefault({}),
    /** Default masks: the core's (crates/iws-core), never restated here. */
    proc: z
      .object({
        masked: z.array(MaskEntry).max(64).default(() => [...MASK_DEFAULTS.proc.masked]),
        readOnly: z.array(MaskEntry).max(64).default(() => [...MASK_DEFAULTS.proc.readOnly]),
      })
      .strict()
      .prefault({}),
    sysfs: z
      .object({
        readOnly: z.boolean().default(true),
        masked: z.array(MaskEntry).max(64).default(() => [...MASK_DEFAULTS.sysfs.masked]),
      })
      .strict()
      .prefault({}),
    shift: z
      .object({
        /** auto: idmapped when the kernel and the container root's filesystem allow it (tried for real), else fuse. */
        method: z.enum(SHIFT_METHOD_CHOICES).default('auto'),
        markPath: z.string().regex(/^\//, 'must be an absolute path').default('/.workspace/mark'),
        fuseOverlayfs: z.string().regex(/^\//, 'must be an absolute path').default('/usr/bin/fuse-overlayfs'),
        fullWorkspaceBackup: z.boolean().default(false),
        /**
         * What PrepareForUserNS answers for an idmapped mark to a client that
         * does not send `iwsd-fs-shift-accept: idmapped`: FUSE (what clients
         * of the original contract, e.g. Gitpod's workspacekit, can act on:
         * bind the mark) or IDMAPPED. Only the label; never the mark.
         */
        idmappedAnswer: z.enum(IDMAPPED_ANSWERS).default('fuse'),
      })
      .strict()
      .prefault({}),
    /** SetupPairVeths (README "Gitpod's RPCs"). */
    network: z
      .object({
        /** IPv4 network of a workspace's veth pair: .1 on veth0 (container), .2 on eth0 (the target's). Gitpod's default. */
        workspaceCidr: coreChecked((s) => {
          validateWorkspaceCidr(s);
          return s;
        }).default('10.0.5.0/30'),
      })
      .strict()
      .prefault({}),
    /** Device nodes made in a container at PrepareForUserNS (README "Gitpod's RPCs"). */
    devices: z
      .object({
        /** /dev/fuse (c 10:229) and /dev/net/tun (c 10:200), mode 0666, as Gitpod's ws-daemon made them. */
        create: z.boolean().default(true),
      })
      .strict()
      .prefault({}),
    /**
     * Authorization per call (README "Who may call: per call", docs/DESIGN.md "Authorization per call"). Only stricter than the
     * kernel-modelled defaults, never looser.
     */
    authz: z
      .object({
        /** Who may call PrepareForUserNS and Teardown: container root or its init's uid (Gitpod's ring0), or container root only. */
        lifecycle: z.enum(LIFECYCLE_RULES).default('root-or-init-uid'),
      })
      .strict()
      .prefault({}),
    metrics: z
      .object({
        enabled: z.boolean().default(false),
        host: z
          .string()
          .regex(LOOPBACK, 'must be a loopback address (127.0.0.0/8, ::1 or localhost)')
          .default('127.0.0.1'),
        port: z.number().int().min(0).max(65535).default(9464),
      })
      .strict()
      .prefault({}),
    limits: z
      .object({
        mountsPerWorkspace: z.number().int().positive().max(100_000).default(256),
        /**
         * Bytes of the private tmpfs that holds a FUSE mark's copy-ups (its
         * upper and work dirs), per workspace; a full one is ENOSPC for that
         * workspace's writers only.
         */
        fuseUpperBytes: z
          .number()
          .int()
          .min(1 << 20, 'must be at least 1048576 (1 MiB)')
          .max(Number.MAX_SAFE_INTEGER)
          .default(1 << 30),
      })
      .strict()
      .prefault({}),
    /**
     * Connections to workspace sockets. A connection over a cap is refused
     * before its peer is checked (the check is native work); it is answered
     * with a gRPC status naming the cap when a refusal slot is free.
     */
    connections: z
      .object({
        /** Connections one workspace may hold open at once (checked, pending or served). */
        perWorkspace: z.number().int().positive().max(100_000).default(32),
        /** Connections all workspaces may hold open at once; kept well below RLIMIT_NOFILE (the admin socket and the daemon keep theirs). */
        total: z.number().int().positive().max(1_000_000).default(4096),
        /** A connection whose client sends no HTTP/2 preface within this time is closed. */
        prefaceTimeoutMs: z.number().int().positive().max(600_000).default(2000),
        /** A connection without calls for this long is closed (grpc.max_connection_idle_ms). */
        idleTimeoutMs: z.number().int().positive().max(86_400_000).default(300_000),
        /** Concurrent streams (calls) per connection (grpc.max_concurrent_streams). */
        maxConcurrentStreams: z.number().int().positive().max(1000).default(16),
        /** Refused connections being answered a status at once; beyond, a refused connection is just closed. */
        refusalAnswers: z.number().int().min(0).max(10_000).default(64),
      })
      .strict()
      .prefault({}),
    /**
     * Native work. Short calls (id maps, mounts) and long ones (a mark: a
     * FUSE helper's start or stop can block for seconds) run in separate
     * lanes of the libuv pool, each bounded daemon-wide and shared fairly
     * (round robin) between workspaces.
     */
    work: z
      .object({
        /** Native calls of one workspace in flight at once; the rest wait in its queue. */
        inFlightPerWorkspace: z.number().int().positive().max(64).default(2),
        /** Calls of one workspace waiting for a slot; beyond, RESOURCE_EXHAUSTED. */
        queuePerWorkspace: z.number().int().min(0).max(10_000).default(64),
        /** Short native calls in flight daemon-wide (libuv pool threads they may take). */
        shortLane: z.number().int().positive().max(64).default(4),
        /** Long native calls (PrepareForUserNS, Teardown) in flight daemon-wide. */
        longLane: z.number().int().positive().max(64).default(2),
        /** How long a call may wait for a slot before it is refused (UNAVAILABLE); also bounded by the call's own deadline. */
        queueTimeoutMs: z.number().int().positive().max(600_000).default(10_000),
        /** Deadline of a long native call, waiting included: the caller gets UNAVAILABLE after it (the operation itself is bounded by the core). */
        longDeadlineMs: z.number().int().positive().max(600_000).default(30_000),
      })
      .strict()
      .prefault({}),
    /** Retention of <stateDir>/archive/ (the state of finished workspaces), applied at every archiving. */
    archive: z
      .object({
        /** At most this many files are kept (the newest). */
        keep: z.number().int().min(0).max(1_000_000).default(1000),
        /** Files older than this are removed. */
        maxAgeDays: z.number().positive().max(36_500).default(30),
      })
      .strict()
      .prefault({}),
    nri: z
      .object({
        /** Connect to the container runtime's NRI socket as a plugin (containerd 2, CRI-O). */
        enabled: z.boolean().default(false),
        socket: z.string().regex(/^\//, 'must be an absolute path').default('/var/run/nri/nri.sock'),
        pluginName: z.string().regex(/^[a-zA-Z0-9_.+-]+$/, 'may contain only letters, digits and "_.+-"').default('iwsd'),
        /** Two digits: plugins are called in ascending order. */
        pluginIndex: z.string().regex(/^\d\d$/, 'must be two digits, 00..99').default('50'),
      })
      .strict()
      .prefault({}),
    rateLimits: z
      .object({
        writeIdMapping: rateLimit(4, 10),
        prepareForUserNS: rateLimit(4, 10),
        teardown: rateLimit(4, 10),
        mountProc: rateLimit(200, 10),
        umountProc: rateLimit(200, 10),
        mountSysfs: rateLimit(200, 10),
        umountSysfs: rateLimit(200, 10),
        wipingTeardown: rateLimit(4, 10),
        evacuateCGroup: rateLimit(4, 10),
        setupPairVeths: rateLimit(4, 10),
        mountNfs: rateLimit(20, 10),
        umountNfs: rateLimit(20, 10),
        // Gitpod's supervisor polls it for its resource display.
        workspaceInfo: rateLimit(50, 10),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export type Config = z.output<typeof ConfigSchema>;
export type ConfigInput = z.input<typeof ConfigSchema>;

function formatIssues(err: z.ZodError, source: string): string {
  const lines = err.issues.map((i) => `  ${i.path.length ? i.path.join('.') : '(top level)'}: ${i.message}`);
  return `invalid configuration (${source}):\n${lines.join('\n')}`;
}

/** Parses a full configuration object, throwing a readable IwsError. */
export function parseConfig(input: unknown, source = 'config'): Config {
  const r = ConfigSchema.safeParse(input);
  if (!r.success) throw new IwsError('INVALID_ARGUMENT', formatIssues(r.error, source));
  return r.data;
}

/** Reads a JSON config file. */
export function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new IwsError('INVALID_ARGUMENT', `cannot read config file ${path}: ${(err as Error).message}`);
  }
  try {
    const v: unknown = JSON.parse(text);
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('top level must be an object');
    return v as Record<string, unknown>;
  } catch (err) {
    throw new IwsError('INVALID_ARGUMENT', `config file ${path} is not valid JSON: ${(err as Error).message}`);
  }
}

/** The IWSD_* environment variables that set configuration. */
export const ENV_VARS = {
  IWSD_STATE_DIR: 'stateDir',
  IWSD_LOG_LEVEL: 'logLevel',
  IWSD_PID_STRATEGY: 'pidStrategy',
  IWSD_MOUNT_STRATEGY: 'mountStrategy',
} as const;

export function configFromEnv(env: NodeJS.ProcessEnv): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, key] of Object.entries(ENV_VARS)) {
    const v = env[name];
    if (v !== undefined && v !== '') out[key] = v;
  }
  return out;
}

/**
 * Merges the layers (later wins, shallowly per top-level key; nested objects
 * merged one level deep) and validates the result.
 */
export function loadConfig(layers: { file?: string | undefined; env?: NodeJS.ProcessEnv; flags?: Record<string, unknown> }): Config {
  const fromFile = layers.file ? readConfigFile(layers.file) : {};
  const merged: Record<string, unknown> = {};
  for (const layer of [fromFile, configFromEnv(layers.env ?? {}), layers.flags ?? {}]) {
    for (const [k, v] of Object.entries(layer)) {
      if (v === undefined) continue;
      const prev = merged[k];
      merged[k] =
        isPlainObject(prev) && isPlainObject(v) ? { ...prev, ...v } : v;
    }
  }
  return parseConfig(merged, layers.file ? `file ${layers.file}, environment and flags` : 'environment and flags');
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A workspace id becomes a directory name: keep it boring. */
export const WorkspaceIdSchema = z
  .string()
  .min(1, 'must not be empty')
  .max(64, 'must be at most 64 characters')
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'may contain only letters, digits, ".", "_" and "-", and must start with a letter or digit');

export function checkWorkspaceId(id: string): string {
  const r = WorkspaceIdSchema.safeParse(id);
  if (!r.success) throw new IwsError('INVALID_ARGUMENT', `workspace id ${JSON.stringify(id)} ${r.error.issues[0]?.message ?? 'is invalid'}`);
  return r.data;
}
