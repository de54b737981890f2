/**
 * WorkspaceInfo's answer from a container's raw cgroup figures, in Gitpod's
 * units: CPU in millicores (used: the rate over the time since the previous
 * sample; limit: quota/period, or every online CPU when unlimited), memory
 * in bytes (used: without inactive file cache; limit: the cgroup's, capped at
 * the node's memory). No call ever waits for a second sample: the previous
 * call's sample is kept per workspace (see README "WorkspaceInfo").
 */
import type { CgroupResources } from './native.js';
import type { WorkspaceInfoResponse } from './gen/iws/WorkspaceInfoResponse.js';

/** Shortest window a CPU rate is taken over; calls closer together get the previous rate. */
export const MIN_CPU_WINDOW_NS = 250e6;

export interface CpuSample {
  usageNs: number;
  atNs: number;
  /** The rate answered for the window ending at `atNs`, millicores. */
  used: number;
}

/** The CPU rate for `r` and the sample to keep for the next call. */
export function cpuUsed(r: Pick<CgroupResources, 'cpuUsageNs' | 'atNs' | 'startedNs'>, prev: CpuSample | undefined): CpuSample {
  const rate = (usage: number, window: number) => (window > 0 ? Math.max(0, Math.round((usage / window) * 1000)) : 0);
  // The first call, or the counter went back (the init is in another cgroup
  // now): the average since the container's init started.
  if (!prev || r.cpuUsageNs < prev.usageNs || r.atNs <= prev.atNs) {
    return { usageNs: r.cpuUsageNs, atNs: r.atNs, used: rate(r.cpuUsageNs, r.atNs - r.startedNs) };
  }
  if (r.atNs - prev.atNs < MIN_CPU_WINDOW_NS) return prev;
  return { usageNs: r.cpuUsageNs, atNs: r.atNs, used: rate(r.cpuUsageNs - prev.usageNs, r.atNs - prev.atNs) };
}

export function cpuLimit(r: Pick<CgroupResources, 'cpuQuotaUs' | 'cpuPeriodUs' | 'cpus'>): number {
  if (r.cpuQuotaUs != null && r.cpuPeriodUs) return Math.round((r.cpuQuotaUs * 1000) / r.cpuPeriodUs);
  return r.cpus * 1000;
}

export function memoryLimit(r: Pick<CgroupResources, 'memoryLimit' | 'memTotal'>): number {
  return r.memoryLimit == null ? r.memTotal : Math.min(r.memoryLimit, r.memTotal);
}

/** The answer, and the CPU sample to keep. */
export function workspaceInfo(r: CgroupResources, prev: CpuSample | undefined): { response: WorkspaceInfoResponse; sample: CpuSample } {
  const sample = cpuUsed(r, prev);
  return {
    response: {
      resources: {
        cpu: { used: sample.used, limit: cpuLimit(r) },
        memory: { used: r.memoryUsed, limit: memoryLimit(r) },
      },
    },
    sample,
  };
}
