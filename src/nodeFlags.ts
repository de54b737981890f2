/**
 * The node flags the daemon runs with: those on the first line of
 * bin/iwsd.js (`#!/usr/bin/env -S node FLAGS`), the one place they are
 * written. Launches that name node themselves (the image's entrypoint, the
 * tests' and the bench's daemons) pass these; a daemon started without them
 * says so at start (README, "Performance": what they save).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** bin/iwsd.js of this installation (dist/ and bin/ sit side by side in the package). */
export const IWSD_BIN = fileURLToPath(new URL('../bin/iwsd.js', import.meta.url));

/** The flags on the first line of `bin` (throws if it is not `#!/usr/bin/env -S node [--flag ...]`). */
export function daemonNodeFlags(bin: string = IWSD_BIN): string[] {
  const first = readFileSync(bin, 'utf8').split('\n', 1)[0] ?? '';
  const m = /^#!\/usr\/bin\/env -S node((?: --[a-z0-9-]+(?:=\S+)?)*)$/.exec(first);
  if (!m) throw new Error(`${bin}: the first line is not "#!/usr/bin/env -S node [--flag ...]": ${first}`);
  return (m[1] ?? '').split(' ').filter(Boolean);
}

/** Of `flags`, those this process was not started with (neither on its command line nor in NODE_OPTIONS). */
export function missingNodeFlags(flags: string[], execArgv: string[] = process.execArgv, nodeOptions: string = process.env.NODE_OPTIONS ?? ''): string[] {
  const given = new Set([...execArgv, ...nodeOptions.split(/\s+/)]);
  return flags.filter((f) => !given.has(f));
}
