// Generates src/gen/ from proto/ with proto-loader-gen-types, then adds the
// `.js` extension to the generated relative imports so the emitted .d.ts files
// resolve under `moduleResolution: node16/nodenext` in consumers. Part of the
// generator: the files in src/gen/ are never edited by hand.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const out = 'src/gen';
rmSync(out, { recursive: true, force: true });
execFileSync(
  'npx',
  ['proto-loader-gen-types', '--longs=Number', '--enums=String', '--defaults', '--oneofs', '--includeComments', '--grpcLib=@grpc/grpc-js', `--outDir=${out}`, 'proto/workspace_daemon.proto', 'proto/admin.proto'],
  { stdio: 'inherit' },
);

function walk(dir) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (p.endsWith('.ts')) {
      const src = readFileSync(p, 'utf8');
      const fixed = src.replace(/(from\s+'\.{1,2}\/[^']+?)(?<!\.js)'/g, "$1.js'");
      if (fixed !== src) writeFileSync(p, fixed);
    }
  }
}
walk(out);
