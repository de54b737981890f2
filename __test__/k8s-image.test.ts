/**
 * `npm run image` (scripts/image.mjs): built twice from the same checkout it
 * is the same bytes (same digest); every entry is owned 0:0, carries the
 * commit's time and no write bit; there is no shell; the listing names
 * every file; and a real containerd (v2.4.2, private paths) imports it with
 * `ctr images import` and runs its node, iwsd, fuse-overlayfs and
 * grpc-health-probe, with nothing but the image's own files.
 *
 * Needs fuse-overlayfs and grpc-health-probe on the build machine (.ci/run
 * installs both); the containerd part needs root and the containerd
 * binaries (helpers/containerd.ts), failed instead of skipped when
 * IWSD_REQUIRE_CONTAINERD=1.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import test, { type ExecutionContext } from 'ava';

import { CONTAINERD_BIN, containerdMissing, TestContainerd } from './helpers/containerd.js';
import { isRoot, requireRoot } from './helpers/root.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
const tmp = mkdtempSync(join(tmpdir(), 'iwsd-image-test-'));
test.after.always(() => rmSync(tmp, { recursive: true, force: true }));

const PROBE = join(ROOT, '.tools/bin/grpc-health-probe');
const prereq = !existsSync(PROBE) ? `${PROBE} missing (.ci/run builds it)` : !existsSync('/usr/bin/fuse-overlayfs') ? 'fuse-overlayfs missing (apt-get install fuse-overlayfs)' : undefined;
type Impl = (t: ExecutionContext) => void | Promise<void>;
function gated(why: string | undefined, required: boolean): (title: string, impl: Impl) => void {
  return (title, impl) => {
    if (!why) test.serial(title, impl);
    else if (required) test.serial(title, (t) => t.fail(`cannot run: ${why}`));
    else test.skip(`${title} (${why})`, impl);
  };
}
const imageTest = gated(prereq, process.env.IWSD_REQUIRE_CONTAINERD === '1');

interface Built {
  name: string;
  digest: string;
  file: string;
  files: number;
}
function build(out: string): Built {
  const r = spawnSync(process.execPath, [join(ROOT, 'scripts/image.mjs'), '--out', out, '--quiet'], { encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) throw new Error(`image.mjs exited ${r.status}: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Built;
}
const fileHash = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');

let image: Built | undefined;

imageTest('the image is reproducible: two builds of the same checkout are the same bytes', (t) => {
  t.timeout(600_000);
  const a = build(join(tmp, 'a/iwsd.tar'));
  const b = build(join(tmp, 'b/iwsd.tar'));
  t.is(a.digest, b.digest);
  t.is(fileHash(a.file), fileHash(b.file));
  t.is(a.name, `localhost/iwsd:${pkg.version}`);
  t.regex(a.digest, /^sha256:[0-9a-f]{64}$/);
  image = a;
});

imageTest('every entry is root-owned, read-only, dated at the commit; no shell; the listing names every file', (t) => {
  if (!image) return t.fail('no image (the build test failed)');
  const x = join(tmp, 'x');
  mkdirSync(x);
  t.is(spawnSync('tar', ['-C', x, '-xf', image.file]).status, 0);
  const index = JSON.parse(readFileSync(join(x, 'index.json'), 'utf8')) as { manifests: { digest: string; annotations: Record<string, string> }[] };
  t.is(index.manifests.length, 1);
  t.is(index.manifests[0]!.digest, image.digest);
  t.is(index.manifests[0]!.annotations['io.containerd.image.name'], image.name);
  const manifest = JSON.parse(readFileSync(join(x, 'blobs/sha256', image.digest.slice(7)), 'utf8')) as { config: { digest: string }; layers: { digest: string }[] };
  const config = JSON.parse(readFileSync(join(x, 'blobs/sha256', manifest.config.digest.slice(7)), 'utf8')) as { config: { Entrypoint: string[]; Cmd: string[] } };
  t.deepEqual(config.config.Entrypoint, ['/usr/local/bin/node', '--max-semi-space-size=4', '/opt/iwsd/bin/iwsd.js']);
  t.deepEqual(config.config.Cmd, ['serve', '--config', '/etc/iwsd/config.json']);
  const layer = join(x, 'blobs/sha256', manifest.layers[0]!.digest.slice(7));
  t.is(`sha256:${fileHash(layer)}`, manifest.layers[0]!.digest);

  const epoch = Number(spawnSync('git', ['-C', ROOT, 'log', '-1', '--format=%ct'], { encoding: 'utf8' }).stdout.trim());
  // GNU tar's verbose listing: mode owner/group size date time path
  const listing = spawnSync('tar', ['--numeric-owner', '--full-time', '--utc', '-tvf', layer], { encoding: 'utf8', maxBuffer: 64 << 20 }).stdout.trim().split('\n');
  t.true(listing.length > 100);
  const when = new Date(epoch * 1000).toISOString().replace('T', ' ').slice(0, 19);
  const paths: string[] = [];
  for (const l of listing) {
    const [mode, owner, , day, time, ...rest] = l.split(/\s+/);
    const p = rest.join(' ');
    paths.push(p.replace(/^\.\//, '/').replace(/\/$/, ''));
    t.is(owner, '0/0', l);
    t.regex(mode!, /^[d-]r-[xs-]r-[x-]r-[x-]$/, `no write bit and no special file: ${l}`);
    t.is(`${day} ${time}`, when, l);
  }
  for (const sh of ['/bin/sh', '/bin/bash', '/bin/dash', '/usr/bin/sh', '/bin/busybox']) t.false(paths.includes(sh), sh);
  t.false(paths.some((p) => /\/(sh|bash|dash|ash|busybox)$/.test(p)), 'no shell anywhere');
  for (const must of ['/usr/local/bin/node', '/opt/iwsd/bin/iwsd.js', '/opt/iwsd/native/index.cjs', '/usr/bin/fuse-overlayfs', '/usr/local/bin/grpc-health-probe', '/lib64/ld-linux-x86-64.so.2', '/opt/iwsd/node_modules/@grpc/grpc-js/package.json']) {
    t.true(paths.includes(must), must);
  }
  t.false(paths.some((p) => p.startsWith('/opt/iwsd/node_modules/typescript') || p.startsWith('/opt/iwsd/node_modules/ava')), 'no dev dependencies');
  // The contents file lists exactly the layer's entries.
  const contents = readFileSync(`${image.file}.contents.txt`, 'utf8')
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => l.split(' ').slice(3).join(' ').replace(/\/$/, ''));
  t.deepEqual(contents.sort(), paths.filter((p) => p !== '.' && p !== '').sort());
});

const cdMissing = !isRoot ? 'needs root' : containerdMissing();
const cdRequired = isRoot ? process.env.IWSD_REQUIRE_CONTAINERD === '1' : requireRoot;
const cdTest = gated(cdMissing ?? prereq, cdRequired);

cdTest('containerd imports the image and runs iwsd, node, fuse-overlayfs and grpc-health-probe from it', async (t) => {
  t.timeout(300_000);
  if (!image) return t.fail('no image (the build test failed)');
  const cd = await TestContainerd.start();
  t.teardown(() => cd.stop());
  // What was imported is judged from the image store below, not from ctr's progress output: under load
  // containerd 2's transfer service may end the stream before its "unpacking" line (seen once: empty stdout).
  cd.ctr(['-n', 'k8s.io', 'images', 'import', '--platform', 'linux/amd64', image.file]);
  const ls = cd.ctr(['-n', 'k8s.io', 'images', 'ls']);
  t.true(ls.split('\n').some((l) => l.startsWith(image!.name) && l.includes(image!.digest)), ls);
  // ctr run of a process that exits at once sometimes loses its output (the fifo is read
  // after the exit): the exit status decides, and the output is asked for again if empty.
  let n = 0;
  const run = (id: string, ...argv: string[]) => {
    let r = once(id, ...argv);
    for (let i = 0; i < 3 && r.status === 0 && !`${r.stdout}${r.stderr}`.trim(); i++) r = once(id, ...argv);
    return r;
  };
  const once = (id: string, ...argv: string[]) => {
    mkdirSync(join(cd.lab, 'fifo'), { recursive: true });
    id = `${id}-${n++}`;
    return spawnSync(join(CONTAINERD_BIN, 'ctr'), ['-a', join(cd.lab, 'containerd.sock'), '-n', 'k8s.io', 'run', '--rm', '--fifo-dir', join(cd.lab, 'fifo'), '--runc-binary', '/usr/sbin/runc', '--runc-root', join(cd.lab, 'runc-root'), image!.name, id, ...argv], {
      encoding: 'utf8',
      timeout: 60_000,
    });
  };
  const v = run('iwsd-version', '/usr/local/bin/node', '/opt/iwsd/bin/iwsd.js', '--version');
  t.is(v.status, 0, v.stderr);
  t.is(v.stdout.trim(), pkg.version);
  // The native module loads with the image's libraries only.
  const nat = run('iwsd-native', '/usr/local/bin/node', '-e', "require('/opt/iwsd/native/index.cjs'); console.log('native loaded')");
  t.is(nat.status, 0, nat.stderr);
  t.is(nat.stdout.trim(), 'native loaded');
  const f = run('iwsd-fuse', '/usr/bin/fuse-overlayfs', '--version');
  t.is(f.status, 0, f.stderr);
  t.regex(f.stdout, /fuse-overlayfs: version/);
  const p = run('iwsd-probe', '/usr/local/bin/grpc-health-probe', '-version');
  t.is(p.status, 0, p.stderr);
  t.regex(`${p.stdout}${p.stderr}`, /0\.4\.63/);
  // No shell in it: asking for one fails.
  const sh = run('iwsd-sh', '/bin/sh', '-c', 'true');
  t.not(sh.status, 0);
});
