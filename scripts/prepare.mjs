#!/usr/bin/env node
/**
 * npm's `prepare` and `prepack`. npm runs `prepare` both after `npm ci` /
 * `npm install` in a clone, where everything is built (the native module
 * with cargo, then the TypeScript), and on `npm pack` / `npm publish`, where
 * the package must be made of what was already built: there (and as
 * `prepack`, with --check) this only checks that the artifacts are present
 * and not older than their sources, and says what to run when they are not.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const packing = process.argv.includes('--check') || ['pack', 'publish'].includes(process.env.npm_command ?? '');

function files(dir, ext) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith(ext))
    .map((e) => join(e.parentPath ?? e.path, e.name));
}

function check() {
  const problems = [];
  const native = readdirSync(join(ROOT, 'native'), { withFileTypes: true }).filter((e) => e.name.endsWith('.node'));
  if (!native.length) problems.push('no native/*.node: run `npm run build:native` (needs cargo)');
  for (const f of ['native/index.cjs', 'native/index.d.cts', 'dist/index.js', 'dist/cli.js']) {
    if (!existsSync(join(ROOT, f))) problems.push(`${f} is missing: run \`npm run build\``);
  }
  for (const src of files(join(ROOT, 'src'), '.ts')) {
    const out = join(ROOT, 'dist', relative(join(ROOT, 'src'), src)).replace(/\.ts$/, '.js');
    if (existsSync(out) && statSync(out).mtimeMs < statSync(src).mtimeMs) {
      problems.push(`${relative(ROOT, out)} is older than ${relative(ROOT, src)}: run \`npm run build:ts\``);
      break;
    }
  }
  const maps = files(join(ROOT, 'dist'), '.map');
  if (maps.length) problems.push(`dist/ holds source maps (${relative(ROOT, maps[0])}) pointing at src/, which the package does not ship: run \`npm run build:ts\` (it empties dist/ first)`);
  if (problems.length) {
    process.stderr.write(`iwsd: not packing; the built artifacts are not ready:\n${problems.map((p) => `  - ${p}`).join('\n')}\n`);
    process.exit(1);
  }
}

if (packing) {
  check();
} else {
  const r = spawnSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' });
  process.exit(r.status ?? 1);
}
