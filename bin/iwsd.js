#!/usr/bin/env node
// The iwsd command. The implementation is compiled to dist/ by `npm run build`.
import('../dist/cli.js').then((m) => m.main(process.argv)).catch((err) => {
  process.stderr.write(`iwsd: ${err && err.message ? err.message : String(err)}\n`);
  process.exit(1);
});
