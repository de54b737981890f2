/**
 * Test-file hooks around TestDaemon (kept out of daemon.ts, which the bench
 * imports too: ava refuses to load outside its CLI).
 */
import test from 'ava';

import { TestDaemon } from './daemon.js';
import { isRoot } from './root.js';

/**
 * One daemon per variant (a configuration each) for a test file's tests:
 * started before them when root (root-only tests fail or skip by themselves
 * otherwise), stopped after them; `checkExit` sees each exit code.
 */
export function daemonPerVariant<V>(variants: readonly V[], config: (v: V) => Record<string, unknown>, checkExit?: (code: number | null) => void): Map<V, TestDaemon> {
  const daemons = new Map<V, TestDaemon>();
  test.before(async () => {
    if (!isRoot) return;
    for (const v of variants) daemons.set(v, await TestDaemon.start(config(v)));
  });
  test.after.always(async () => {
    for (const d of daemons.values()) {
      const code = await d.stop();
      checkExit?.(code);
    }
  });
  return daemons;
}
