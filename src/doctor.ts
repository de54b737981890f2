/** `iwsd doctor`: which kernel features are here and which strategy each operation takes. */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

import type { Config } from './config.js';
import { toIwsError } from './errors.js';
import * as native from './native.js';
import { VERSION } from './version.js';

export interface DoctorReport {
  /** iwsd's version (package.json's). */
  version: string;
  kernel: string;
  features: { name: string; available: boolean; usedFor: string; detail?: string }[];
  strategies: Record<string, string>;
  problems: string[];
  /** The NRI plugin connection (config nri), when enabled. */
  nri?: { socket: string; plugin: string; socketPresent: boolean; daemon?: Record<string, unknown> };
}

/** The NRI configuration and what the running daemon last reported (<state>/nri-status.json). */
function nriReport(config: Config): DoctorReport['nri'] {
  if (!config.nri.enabled) return undefined;
  let socketPresent = false;
  try {
    socketPresent = statSync(config.nri.socket).isSocket();
  } catch {
    /* absent */
  }
  let daemon: Record<string, unknown> | undefined;
  try {
    daemon = JSON.parse(readFileSync(join(config.stateDir, 'nri-status.json'), 'utf8')) as Record<string, unknown>;
  } catch {
    /* no daemon has reported */
  }
  return { socket: config.nri.socket, plugin: `${config.nri.pluginIndex}-${config.nri.pluginName}`, socketPresent, ...(daemon ? { daemon } : {}) };
}

async function resolved<T extends string>(f: () => Promise<T>): Promise<string> {
  try {
    return await f();
  } catch (err) {
    return `unavailable: ${toIwsError(err).message}`;
  }
}

export async function doctor(config: Config, kernelRelease: string): Promise<DoctorReport> {
  const f = await native.probeKernel();
  const fuseBinary = existsSync(config.shift.fuseOverlayfs);
  const features: DoctorReport['features'] = [
    { name: 'pidfd_open (5.3+)', available: f.pidfd, usedFor: 'pinning every target process (required)' },
    { name: 'NS_GET_TGID_FROM_PIDNS (6.11+)', available: f.pidnsIoctl, usedFor: 'PID translation (pidStrategy ioctl)' },
    {
      name: 'detached masked proc (proc pidns option, mounts onto detached trees)',
      available: f.detachedProc,
      usedFor: 'MountProc/MountSysfs (mountStrategy detached)',
      ...(f.detachedProcError ? { detail: f.detachedProcError } : {}),
    },
    { name: 'STATX_MNT_ID_UNIQUE (6.8+)', available: f.mntIdUnique, usedFor: 'tracking mounts by never-reused id' },
    { name: 'SO_PEERPIDFD (6.5+)', available: f.peerPidfd, usedFor: 'peer-credential check by pidfd (else SO_PEERCRED)' },
    { name: '/dev/fuse', available: f.fuse, usedFor: 'fuse shift marks' },
    { name: `fuse-overlayfs at ${config.shift.fuseOverlayfs}`, available: fuseBinary, usedFor: 'fuse shift marks' },
    { name: 'shiftfs', available: f.shiftfs, usedFor: 'shiftfs shift marks' },
  ];
  const strategies = {
    pidTranslation: await resolved(() => native.resolvePidStrategy(config.pidStrategy)),
    mountAssembly: await resolved(() => native.resolveMountStrategy(config.mountStrategy)),
    shiftMark:
      config.shift.method === 'auto'
        ? `auto: idmapped when a real attempt on the container's root succeeds, else fuse${f.fuse && fuseBinary ? '' : ' (fuse unavailable here)'}`
        : config.shift.method,
    peerCheck: f.peerPidfd ? 'SO_PEERPIDFD' : 'SO_PEERCRED',
  };
  const problems: string[] = [];
  if (!f.pidfd) problems.push('pidfd_open is missing: iwsd cannot run on this kernel (needs Linux 5.3+)');
  for (const [k, v] of Object.entries(strategies)) if (v.startsWith('unavailable')) problems.push(`${k}: ${v}`);
  if (config.shift.method === 'fuse' && !(f.fuse && fuseBinary)) problems.push('shift.method is fuse but /dev/fuse or fuse-overlayfs is missing');
  if (config.shift.method === 'shiftfs' && !f.shiftfs) problems.push('shift.method is shiftfs but the kernel has no shiftfs');
  const nri = nriReport(config);
  if (nri && !nri.socketPresent) problems.push(`nri.enabled but no NRI socket at ${nri.socket} (is NRI enabled in the runtime's config?)`);
  return { version: VERSION, kernel: kernelRelease, features, strategies, problems, ...(nri ? { nri } : {}) };
}

export function formatReport(r: DoctorReport): string {
  const lines = [`iwsd ${r.version}`, `kernel ${r.kernel}`, '', 'features:'];
  for (const f of r.features) lines.push(`  [${f.available ? 'x' : ' '}] ${f.name} — ${f.usedFor}${f.detail ? ` (${f.detail})` : ''}`);
  lines.push('', 'strategies:');
  for (const [k, v] of Object.entries(r.strategies)) lines.push(`  ${k}: ${v}`);
  if (r.nri) {
    const d = r.nri.daemon;
    const state = !d ? 'no daemon has reported a connection' : d.connected ? `connected to ${typeof d.runtime === 'string' ? d.runtime : 'the runtime'} since ${String(d.since)}` : `not connected (${typeof d.lastError === 'string' ? d.lastError : '?'}), reconnecting`;
    lines.push('', `nri: plugin ${r.nri.plugin} on ${r.nri.socket} (${r.nri.socketPresent ? 'socket present' : 'socket missing'}); ${state}`);
  }
  lines.push('', r.problems.length ? `problems:\n${r.problems.map((p) => `  - ${p}`).join('\n')}` : 'no problems found');
  return `${lines.join('\n')}\n`;
}
