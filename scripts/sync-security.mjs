// Copies README.md's "## Security" section into SECURITY.md (below its
// marker), so the attacker model reporters read is the one the code answers
// to. __test__/package.test.ts fails when the two differ: run
// `node scripts/sync-security.mjs` after editing the README's section.
import { readFileSync, writeFileSync } from 'node:fs';

const root = new URL('..', import.meta.url);
const readme = readFileSync(new URL('README.md', root), 'utf8');
const start = readme.indexOf('## Security\n');
const end = readme.indexOf('\n## ', start + 1);
const section = readme.slice(start, end).split('\n').slice(1).join('\n').trim();
const path = new URL('SECURITY.md', root);
const security = readFileSync(path, 'utf8');
const marker = 'stay the same. -->\n';
const at = security.indexOf(marker);
if (start < 0 || at < 0) throw new Error('README.md "## Security" or the SECURITY.md marker is missing');
writeFileSync(path, `${security.slice(0, at + marker.length)}\n${section}\n`);
