#!/usr/bin/env node
// The iwsd command. The implementation is compiled to dist/ by `npm run build`.
// libuv's pool (every native call and the daemon's own file I/O run on it)
// is sized once, at its first use: before anything is loaded. The daemon's
// native lanes (config `work`) take at most 6 of these 8 threads.
if (!process.env.UV_THREADPOOL_SIZE) process.env.UV_THREADPOOL_SIZE = '8';
import('../dist/cli.js').then((m) => m.main(process.argv)).catch((err) => {
  process.stderr.write(`iwsd: ${err && err.message ? err.message : String(err)}\n`);
  process.exit(1);
});
