/** Prometheus metrics of the NRI plugin, on the daemon's registry. */
import { Counter, Gauge, type Registry } from 'prom-client';

import type { NriMetrics } from './plugin.js';

export function nriMetrics(registry: Registry): NriMetrics {
  const events = new Counter({
    name: 'iwsd_nri_events_total',
    help: 'NRI requests from the container runtime, by event and result (ignored: not a workspace)',
    labelNames: ['event', 'result'] as const,
    registers: [registry],
  });
  const errors = new Counter({
    name: 'iwsd_nri_errors_total',
    help: 'NRI errors by kind (connect, disconnected, protocol, slow, synchronize, teardown)',
    labelNames: ['kind'] as const,
    registers: [registry],
  });
  const connected = new Gauge({
    name: 'iwsd_nri_connected',
    help: '1 while registered with the container runtime over NRI',
    registers: [registry],
  });
  return {
    event: (event, result) => events.inc({ event, result }),
    error: (kind) => errors.inc({ kind }),
    connected: (up) => connected.set(up ? 1 : 0),
  };
}
