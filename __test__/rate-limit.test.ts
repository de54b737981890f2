/** WriteIDMapping's rate limit with the default policy: 4 calls per 10 s per workspace. */
import test from 'ava';

import { TestContainer, readMap } from './helpers/container.js';
import { GITPOD_SHIFT as RING, TestDaemon } from './helpers/daemon.js';
import { rootTest } from './helpers/root.js';


rootTest('the fifth WriteIDMapping within 10 s is RESOURCE_EXHAUSTED with the retry delay', async (t) => {
  const daemon = await TestDaemon.startFor(t);
  const c = await TestContainer.startFor(t);
  const socket = await daemon.add('rate', c.initHostPid);
  const c2 = await TestContainer.startFor(t);
  const other = await daemon.add('rate-other', c2.initHostPid);

  const a = await c.spawnUserns();
  const b = await c.spawnUserns();
  const third = await c.spawnUserns();
  for (const [pid, gid] of [[a, false], [a, true], [b, false], [b, true]] as const) {
    const r = await c.call(socket, 'WriteIDMapping', { pid, gid, mapping: RING });
    t.true(r.ok, JSON.stringify(r));
  }
  const fifth = await c.call(socket, 'WriteIDMapping', { pid: third, gid: false, mapping: RING });
  t.is(fifth.code, 'RESOURCE_EXHAUSTED');
  t.regex(fifth.details ?? '', /4 calls per 10s.*retry in \d+s \(retry-after-ms=\d+\)/);
  t.deepEqual(readMap(c.hostPidOf(third), 'uid_map'), [], 'a limited call writes nothing');
  // The limit is per workspace.
  const theirs = await c2.spawnUserns();
  const elsewhere = await c2.call(other, 'WriteIDMapping', { pid: theirs, gid: false, mapping: RING });
  t.true(elsewhere.ok, JSON.stringify(elsewhere));
});

test('rate limit defaults are 4 per 10 s', async (t) => {
  const { parseConfig } = await import('../src/config.js');
  t.deepEqual(parseConfig({}).rateLimits.writeIdMapping, { points: 4, durationSeconds: 10 });
});
