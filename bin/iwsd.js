#!/usr/bin/env -S node --max-semi-space-size=4
// The iwsd command. The implementation is compiled to dist/ by `npm run build`.
// The first line's node flags are the daemon's: every launch of it (the
// systemd unit and hooks through this file, the image's entrypoint, `npm
// start`, the tests and the bench) takes them from there (see README,
// "Performance"). --max-semi-space-size=4 caps V8's young generation at 4 MiB
// per semi-space (node 20's default grows it to 16): a burst of calls (a start
// storm, 1,000 registrations) otherwise leaves up to ~30 MiB of it resident
// long after, which was most of the measured idle cost per workspace.
// libuv's pool (every native call and the daemon's own file I/O run on it)
// is sized once, at its first use: before anything is loaded. The daemon's
// native lanes (config `work`) take at most 6 of these 8 threads.
if (!process.env.UV_THREADPOOL_SIZE) process.env.UV_THREADPOOL_SIZE = '8';
import('../dist/cli.js').then((m) => m.main(process.argv)).catch((err) => {
  process.stderr.write(`iwsd: ${err && err.message ? err.message : String(err)}\n`);
  process.exit(1);
});
