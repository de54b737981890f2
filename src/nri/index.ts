/** The NRI plugin, wired to a daemon (see plugin.ts). */
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import type { Registry } from 'prom-client';

import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { nriMetrics } from './metrics.js';
import { NriPlugin, type NriStatus, type WorkspaceHost } from './plugin.js';

export { NriPlugin } from './plugin.js';
export type { NriStatus } from './plugin.js';

/** Where the daemon leaves the NRI connection's state for `iwsd doctor`. */
export const NRI_STATUS_FILE = 'nri-status.json';

export function startNri(host: WorkspaceHost, config: Config['nri'], log: Logger, registry: Registry, stateDir: string): NriPlugin {
  // One write at a time, each whole (temp file + rename): a reader never sees
  // half a file, and a later status never loses to an earlier one.
  const file = join(stateDir, NRI_STATUS_FILE);
  let writing = Promise.resolve();
  const onStatus = (s: NriStatus) => {
    const text = `${JSON.stringify({ ...s, daemonPid: process.pid, at: new Date().toISOString() })}\n`;
    writing = writing.then(() => writeFile(`${file}.tmp`, text, { mode: 0o600 }).then(() => rename(`${file}.tmp`, file))).catch(() => undefined);
  };
  const p = new NriPlugin(host, { socket: config.socket, pluginName: config.pluginName, pluginIndex: config.pluginIndex, onStatus }, log.child({ component: 'nri' }), nriMetrics(registry));
  p.start();
  log.info({ nriSocket: config.socket, plugin: `${config.pluginIndex}-${config.pluginName}` }, `NRI: connecting to ${config.socket} as plugin ${config.pluginIndex}-${config.pluginName}`);
  return p;
}
