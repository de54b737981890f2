/** The NRI plugin, wired to a daemon (see plugin.ts). */
import type { Registry } from 'prom-client';

import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { nriMetrics } from './metrics.js';
import { NriPlugin, type WorkspaceHost } from './plugin.js';

export { NriPlugin } from './plugin.js';
export type { NriStatus } from './plugin.js';

export function startNri(host: WorkspaceHost, config: Config['nri'], log: Logger, registry: Registry): NriPlugin {
  const p = new NriPlugin(host, { socket: config.socket, pluginName: config.pluginName, pluginIndex: config.pluginIndex }, log.child({ component: 'nri' }), nriMetrics(registry));
  p.start();
  log.info({ nriSocket: config.socket, plugin: `${config.pluginIndex}-${config.pluginName}` }, `NRI: connecting to ${config.socket} as plugin ${config.pluginIndex}-${config.pluginName}`);
  return p;
}
