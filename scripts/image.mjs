#!/usr/bin/env node
/**
 * `npm run image`: an OCI image of iwsd, built offline from this checkout's
 * build output (no base image is pulled): the Node.js runtime that runs this
 * script, the package's runtime files (bin, dist, native module, proto,
 * production node_modules), fuse-overlayfs for FUSE marks,
 * grpc-health-probe for the DaemonSet's probes, and exactly the shared
 * libraries those programs load (ldd). No shell, no package manager.
 *
 * Written as an OCI image layout tarball (oci-layout, index.json, one
 * manifest, one config, one uncompressed layer) that `ctr images import`
 * and `docker load`-compatible tools accept.
 *
 * Reproducible: every file is owned 0:0 with a fixed mode (directories 0555,
 * files 0444, programs 0555: nothing in the image is writable), entries are
 * sorted, every timestamp is the commit's time (SOURCE_DATE_EPOCH overrides),
 * so the same build output gives the same digest.
 *
 *   node scripts/image.mjs [--out FILE] [--name REF] [--list] [--quiet]
 *
 * Prints the image digest, its name and, with --list, every file in it;
 * writes FILE (default dist-image/iwsd-oci.tar) and FILE.contents.txt (one
 * line per entry: kind (d, f, x), mode, size, path).
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

import { writeOciLayout } from './oci-layout.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
const OUT = opt('--out', join(ROOT, 'dist-image', 'iwsd-oci.tar'));
const NAME = opt('--name', `localhost/iwsd:${pkg.version}`);
const LIST = args.includes('--list');
const QUIET = args.includes('--quiet');
const HEALTH_PROBE = process.env.IWSD_GRPC_HEALTH_PROBE || join(ROOT, '.tools/bin/grpc-health-probe');
const FUSE_OVERLAYFS = process.env.IWSD_FUSE_OVERLAYFS || '/usr/bin/fuse-overlayfs';

/** In-image locations. */
const APP = '/opt/iwsd';
const NODE = '/usr/local/bin/node';

function die(msg) {
  process.stderr.write(`image: ${msg}\n`);
  process.exit(1);
}
function run(cmd, argv, opts = {}) {
  const r = spawnSync(cmd, argv, { encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
  if (r.error) die(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) die(`${cmd} ${argv.join(' ')} exited ${r.status}: ${r.stderr.trim()}`);
  return r.stdout;
}
const log = (s) => QUIET || process.stderr.write(`image: ${s}\n`);

// ---- inputs -----------------------------------------------------------------
{
  const r = spawnSync(process.execPath, [join(ROOT, 'scripts/prepare.mjs'), '--check'], { encoding: 'utf8' });
  if (r.status !== 0) die(`the build output is missing or stale (run \`npm run build\` first):\n${r.stderr || r.stdout}`);
}
// The daemon's node flags (bin/iwsd.js's first line), for the entrypoint that names node itself.
const { daemonNodeFlags } = await import('../dist/nodeFlags.js');
if (!existsSync(FUSE_OVERLAYFS)) die(`${FUSE_OVERLAYFS} missing: apt-get install fuse-overlayfs (or set IWSD_FUSE_OVERLAYFS)`);
if (!existsSync(HEALTH_PROBE))
  die(`${HEALTH_PROBE} missing: GOBIN=$PWD/.tools/bin go install github.com/grpc-ecosystem/grpc-health-probe@v0.4.63 (or set IWSD_GRPC_HEALTH_PROBE)`);

let epoch = process.env.SOURCE_DATE_EPOCH;
let revision = 'unknown';
const git = spawnSync('git', ['-C', ROOT, 'log', '-1', '--format=%ct %H'], { encoding: 'utf8' });
if (git.status === 0 && git.stdout.trim()) {
  const [ct, h] = git.stdout.trim().split(' ');
  epoch ??= ct;
  revision = h;
  const dirty = spawnSync('git', ['-C', ROOT, 'status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8' }).stdout.trim();
  if (dirty) log(`warning: the working tree has uncommitted changes; the image is not commit ${revision.slice(0, 12)}'s`);
}
if (!epoch || !/^\d+$/.test(epoch)) die('no commit time: run in a git checkout or set SOURCE_DATE_EPOCH');
const EPOCH = Number(epoch);

// ---- root filesystem ----------------------------------------------------------
const stage = `${OUT}.rootfs`;
rmSync(stage, { recursive: true, force: true });
mkdirSync(stage, { recursive: true });
const into = (p) => join(stage, p);
/** in-image path -> 'file' | 'exe' | 'dir' | 'link', for modes and the listing */
const kinds = new Map();

function addDir(p) {
  mkdirSync(into(p), { recursive: true });
  for (let d = p; d !== '/' && d !== '.'; d = dirname(d)) kinds.set(d, 'dir');
}
function addFile(src, p, exe = false) {
  addDir(dirname(p));
  copyFileSync(src, into(p)); // follows symlinks: the image holds the content
  kinds.set(p, exe ? 'exe' : 'file');
}
function addText(p, text) {
  addDir(dirname(p));
  writeFileSync(into(p), text);
  kinds.set(p, 'file');
}
function addTree(src, p, skip = () => false) {
  addDir(p);
  for (const e of readdirSync(src, { withFileTypes: true })) {
    const s = join(src, e.name);
    const d = join(p, e.name);
    if (skip(s, e)) continue;
    if (e.isDirectory()) addTree(s, d, skip);
    else if (e.isSymbolicLink()) {
      const target = readlinkSync(s);
      // only links that stay inside the copied tree (npm's .bin links are not needed)
      if (target.startsWith('/') || !existsSync(s)) continue;
      addFile(s, d, (statSync(s).mode & 0o111) !== 0);
    } else if (e.isFile()) addFile(s, d, (lstatSync(s).mode & 0o111) !== 0);
  }
}

/** Every shared library `bin` loads, by the path the loader resolves (ldd). */
const libs = new Set();
function needLibs(bin) {
  const out = spawnSync('ldd', [bin], { encoding: 'utf8' });
  if (out.status !== 0) {
    if (/not a dynamic executable/.test(out.stdout + out.stderr)) return; // static (Go)
    die(`ldd ${bin}: ${out.stderr.trim()}`);
  }
  for (const line of out.stdout.split('\n')) {
    if (/not found/.test(line)) die(`ldd ${bin}: ${line.trim()}`);
    const m = /(?:=>\s*)?(\/\S+)\s+\(0x/.exec(line);
    if (m) libs.add(m[1]);
  }
}

// Node.js runtime: the one running this script (its version is the image's).
addFile(process.execPath, NODE, true);
needLibs(process.execPath);

// The package: what package.json's "files" ships that the daemon needs at run time.
for (const f of ['package.json', 'LICENSE']) addFile(join(ROOT, f), `${APP}/${f}`);
addTree(join(ROOT, 'bin'), `${APP}/bin`);
addTree(join(ROOT, 'dist'), `${APP}/dist`, (s) => s.endsWith('.map'));
addTree(join(ROOT, 'proto'), `${APP}/proto`);
addFile(join(ROOT, 'native/index.cjs'), `${APP}/native/index.cjs`);
for (const n of readdirSync(join(ROOT, 'native')).filter((n) => n.endsWith('.node')).sort()) {
  addFile(join(ROOT, 'native', n), `${APP}/native/${n}`);
  needLibs(join(ROOT, 'native', n));
}
// Production dependencies only, as installed (npm ls resolves the tree offline).
const prodDirs = run('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: ROOT })
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && l !== ROOT.replace(/\/$/, ''));
for (const d of prodDirs.sort()) {
  const rel = relative(ROOT, d);
  if (!rel.startsWith('node_modules/')) die(`unexpected dependency path ${d}`);
  addTree(d, `${APP}/${rel}`, (s, e) => e.isDirectory() && e.name === 'node_modules' && dirname(s) === d);
}

// Helpers.
addFile(FUSE_OVERLAYFS, '/usr/bin/fuse-overlayfs', true);
needLibs(FUSE_OVERLAYFS);
addFile(HEALTH_PROBE, '/usr/local/bin/grpc-health-probe', true);
needLibs(HEALTH_PROBE);
for (const l of [...libs].sort()) addFile(l, l, l.includes('/ld-linux'));

// What the runtime and node expect to find.
addText('/etc/passwd', 'root:x:0:0:root:/:/usr/sbin/nologin\n');
addText('/etc/group', 'root:x:0:\n');
addText('/etc/nsswitch.conf', 'passwd: files\ngroup: files\nhosts: files dns\n');
for (const d of ['/proc', '/sys', '/dev', '/run/iwsd', '/var/run/nri', '/etc/iwsd', '/tmp']) addDir(d);

// Fixed modes and times.
for (const [p, kind] of kinds) chmodSync(into(p), kind === 'dir' ? 0o555 : kind === 'exe' ? 0o555 : 0o444);
chmodSync(stage, 0o555);
const paths = [...kinds.keys()].sort().reverse();
for (const p of [...paths, '/']) utimesSync(into(p), EPOCH, EPOCH);

// ---- layer, config, manifest, index ----------------------------------------------
const layout = `${OUT}.layout`;
rmSync(layout, { recursive: true, force: true });
mkdirSync(join(layout, 'blobs/sha256'), { recursive: true });
const layerTmp = join(layout, 'layer.tar');
run('tar', [
  '--sort=name',
  '--format=posix',
  '--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime',
  `--mtime=@${EPOCH}`,
  '--owner=0',
  '--group=0',
  '--numeric-owner',
  '--no-acls',
  '--no-xattrs',
  '--no-selinux',
  '-C',
  stage,
  '-cf',
  layerTmp,
  '.',
]);
const created = new Date(EPOCH * 1000).toISOString().replace(/\.000Z$/, 'Z');
const labels = {
  'org.opencontainers.image.title': 'iwsd',
  'org.opencontainers.image.version': pkg.version,
  'org.opencontainers.image.revision': revision,
  'org.opencontainers.image.licenses': pkg.license,
  'org.opencontainers.image.description': pkg.description,
};
const { layer, manifest } = writeOciLayout(layout, {
  layerTar: layerTmp,
  name: NAME,
  config: {
    created,
    architecture: 'amd64',
    os: 'linux',
    config: {
      User: '0:0',
      // node with the daemon's flags (bin/iwsd.js's first line), as the command runs it.
      Entrypoint: [NODE, ...daemonNodeFlags(), `${APP}/bin/iwsd.js`],
      Cmd: ['serve', '--config', '/etc/iwsd/config.json'],
      Env: ['PATH=/usr/local/bin:/usr/bin', 'NODE_ENV=production'],
      WorkingDir: '/',
      Labels: labels,
    },
    history: [{ created, created_by: 'scripts/image.mjs (npm run image)' }],
  },
  annotations: { 'org.opencontainers.image.created': created, 'org.opencontainers.image.revision': revision },
});
for (const p of ['oci-layout', 'index.json', 'blobs', 'blobs/sha256', ...readdirSync(join(layout, 'blobs/sha256')).map((b) => `blobs/sha256/${b}`)]) {
  chmodSync(join(layout, p), p.startsWith('blobs/sha256/') || !p.startsWith('blobs') ? 0o444 : 0o555);
  utimesSync(join(layout, p), EPOCH, EPOCH);
}
mkdirSync(dirname(OUT), { recursive: true });
run('tar', ['--sort=name', '--format=posix', '--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime', `--mtime=@${EPOCH}`, '--owner=0', '--group=0', '--numeric-owner', '-C', layout, '-cf', `${OUT}.tmp`, 'oci-layout', 'index.json', 'blobs']);
run('mv', ['-f', `${OUT}.tmp`, OUT]);

// ---- what is in it ------------------------------------------------------------
const listing = [...kinds.keys()]
  .sort()
  .map((p) => {
    const k = kinds.get(p);
    return k === 'dir' ? `d 0555 - ${p}/` : `${k === 'exe' ? 'x 0555' : 'f 0444'} ${statSync(into(p)).size} ${p}`;
  });
const files = listing.filter((l) => !l.startsWith('d'));
const bytes = files.reduce((n, l) => n + Number(l.split(' ')[2]), 0);
writeFileSync(
  `${OUT}.contents.txt`,
  [`# ${NAME} ${manifest.digest} (layer ${layer.digest}, revision ${revision})`, `# node ${process.version}; shared libraries: ${[...libs].sort().join(' ')}`, ...listing, ''].join('\n'),
);
rmSync(stage, { recursive: true, force: true });
rmSync(layout, { recursive: true, force: true });
if (LIST) process.stdout.write(readFileSync(`${OUT}.contents.txt`, 'utf8'));
process.stdout.write(`${JSON.stringify({ name: NAME, digest: manifest.digest, layer: layer.digest, file: OUT, files: files.length, bytes, node: process.version, libraries: [...libs].sort() })}\n`);
log(`${NAME} ${manifest.digest}: ${files.length} files, ${(bytes / 1048576).toFixed(1)} MiB -> ${relative(process.cwd(), OUT) || OUT} (import: ctr -n k8s.io images import ${relative(process.cwd(), OUT) || OUT})`);
