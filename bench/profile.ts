/**
 * V8 CPU profiles (`node --cpu-prof`, a `.cpuprofile`) made readable: where
 * the daemon's CPU time went, by function and by component (grpc-js, pino,
 * iwsd's own TypeScript, the native binding, GC, idle), and a flame graph
 * as a self-contained SVG. Used by the bench on the daemon it measures;
 * also runnable alone:
 *
 *   node --import tsx bench/profile.ts FILE.cpuprofile [OUT.svg]
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** What a frame belongs to, from its script URL (first match wins). */
const COMPONENTS: [string, RegExp][] = [
  ['idle', /^\(idle\)$/],
  ['GC', /^\(garbage collector\)$/],
  ['V8/native (unattributed)', /^\(program\)$/],
  ['grpc-js / http2', /@grpc\/grpc-js|node:internal\/http2|node:http2/],
  ['protobuf', /protobufjs|@grpc\/proto-loader/],
  ['pino (logs)', /\/pino|sonic-boom|thread-stream/],
  ['prom-client (metrics)', /prom-client/],
  ['rate-limiter-flexible', /rate-limiter-flexible/],
  ['zod', /\/zod\//],
  ['iwsd TypeScript', /\/(dist|src)\/[^/]+\.(js|ts)$|\/dist\/.+\.js$/],
  ['native binding (napi)', /\.node$|native\/index\.cjs/],
  ['node: fs', /node:(internal\/)?fs/],
  ['node: net/stream', /node:(internal\/)?(net|stream|streams)/],
  ['node: other', /^node:/],
];

function componentOf(f: CallFrame): string {
  const key = f.url || `(${f.functionName.replace(/[()]/g, '')})`;
  for (const [name, re] of COMPONENTS) if (re.test(key) || re.test(f.functionName)) return name;
  return f.url ? 'other JS' : 'V8/native (unattributed)';
}

function frameName(f: CallFrame): string {
  const file = f.url.replace(/^.*\/node_modules\//, '').replace(/^file:\/\/.*\/(dist|src)\//, '$1/');
  return `${f.functionName || '(anonymous)'}${file ? ` ${file}:${f.lineNumber + 1}` : ''}`;
}

/**
 * The part of a profile between two CLOCK_MONOTONIC instants (µs, as
 * process.hrtime.bigint() / 1000 in any process: V8 stamps samples with the
 * same clock), e.g. one series of the bench without the daemon's start.
 */
export function window(p: CpuProfile, fromUs: number, toUs: number): CpuProfile {
  const samples: number[] = [];
  const timeDeltas: number[] = [];
  let t = p.startTime;
  let last = fromUs;
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i]!;
    if (t < fromUs || t > toUs) continue;
    samples.push(p.samples[i]!);
    timeDeltas.push(t - last);
    last = t;
  }
  return { nodes: p.nodes, startTime: fromUs, endTime: Math.min(toUs, p.endTime), samples, timeDeltas };
}

/** Self time (µs) per node id: each sample gets the time to the next one. */
function selfTimes(p: CpuProfile): Map<number, number> {
  const self = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i + 1] ?? 0;
    self.set(p.samples[i]!, (self.get(p.samples[i]!) ?? 0) + Math.max(0, dt));
  }
  return self;
}

export interface ProfileSummary {
  /** Profiled wall time, ms. */
  wallMs: number;
  /** Time not idle, ms. */
  busyMs: number;
  /** Busy time per component, ms, largest first. */
  components: { name: string; ms: number; share: number }[];
  /** Functions by self time, ms, largest first (idle excluded). */
  top: { frame: string; component: string; ms: number; share: number }[];
  /** Calls the profile covered (as given), for per-call costs. */
  calls?: number | undefined;
}

export function summarize(p: CpuProfile, calls?: number, topN = 25): ProfileSummary {
  const self = selfTimes(p);
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const comp = new Map<string, number>();
  const fn = new Map<string, { component: string; us: number }>();
  let idle = 0;
  let total = 0;
  for (const [id, us] of self) {
    const n = byId.get(id)!;
    const c = componentOf(n.callFrame);
    total += us;
    if (c === 'idle') {
      idle += us;
      continue;
    }
    comp.set(c, (comp.get(c) ?? 0) + us);
    const name = frameName(n.callFrame);
    const e = fn.get(name) ?? { component: c, us: 0 };
    e.us += us;
    fn.set(name, e);
  }
  const busy = total - idle;
  return {
    wallMs: (p.endTime - p.startTime) / 1000,
    busyMs: busy / 1000,
    components: [...comp].sort((a, b) => b[1] - a[1]).map(([name, us]) => ({ name, ms: us / 1000, share: us / busy })),
    top: [...fn]
      .sort((a, b) => b[1].us - a[1].us)
      .slice(0, topN)
      .map(([frame, e]) => ({ frame, component: e.component, ms: e.us / 1000, share: e.us / busy })),
    calls,
  };
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

const PALETTE: Record<string, string> = {
  GC: '#b7b7b7',
  'V8/native (unattributed)': '#d9d9d9',
  'grpc-js / http2': '#f6ad55',
  protobuf: '#fbd38d',
  'pino (logs)': '#fc8181',
  'prom-client (metrics)': '#f687b3',
  'rate-limiter-flexible': '#b794f4',
  zod: '#d6bcfa',
  'iwsd TypeScript': '#63b3ed',
  'native binding (napi)': '#68d391',
  'node: fs': '#f6e05e',
  'node: net/stream': '#faf089',
  'node: other': '#e9d8a6',
  'other JS': '#cbd5e0',
};

/**
 * A flame graph (root at the bottom, width = inclusive busy time; idle left
 * out) as a standalone SVG; hover a frame for its name and time.
 */
export function flameGraph(p: CpuProfile, title: string): string {
  const self = selfTimes(p);
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const inclusive = new Map<number, number>();
  const incl = (id: number): number => {
    const n = byId.get(id)!;
    if (componentOf(n.callFrame) === 'idle') return 0;
    let t = self.get(id) ?? 0;
    for (const c of n.children ?? []) t += incl(c);
    inclusive.set(id, t);
    return t;
  };
  const root = p.nodes[0]!;
  const total = incl(root.id);
  const W = 1200;
  const ROW = 16;
  const rects: { x: number; w: number; depth: number; n: ProfileNode; us: number }[] = [];
  let maxDepth = 0;
  const place = (id: number, x: number, depth: number) => {
    const n = byId.get(id)!;
    const us = inclusive.get(id) ?? 0;
    const w = (us / total) * W;
    if (w < 0.3) return;
    if (depth > 0) rects.push({ x, w, depth, n, us });
    maxDepth = Math.max(maxDepth, depth);
    let cx = x;
    const kids = [...(n.children ?? [])].sort((a, b) => frameName(byId.get(a)!.callFrame).localeCompare(frameName(byId.get(b)!.callFrame)));
    for (const c of kids) {
      place(c, cx, depth + 1);
      cx += ((inclusive.get(c) ?? 0) / total) * W;
    }
  };
  place(root.id, 0, 0);
  const H = (maxDepth + 2) * ROW + 40;
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="monospace" font-size="10">`,
    `<text x="4" y="14" font-family="sans-serif" font-size="13">${esc(title)} — ${(total / 1000).toFixed(0)} ms busy (idle left out); width = inclusive time; hover for details</text>`,
  ];
  for (const r of rects) {
    const y = H - (r.depth + 1) * ROW;
    const name = frameName(r.n.callFrame);
    const c = componentOf(r.n.callFrame);
    out.push(
      `<g><title>${esc(`${name}\n${c}: ${(r.us / 1000).toFixed(1)} ms (${((100 * r.us) / total).toFixed(1)}%)`)}</title><rect x="${r.x.toFixed(1)}" y="${y}" width="${r.w.toFixed(1)}" height="${ROW - 1}" fill="${PALETTE[c] ?? '#cbd5e0'}"/>` +
        (r.w > 40 ? `<text x="${(r.x + 2).toFixed(1)}" y="${y + 11}">${esc(name.slice(0, Math.floor(r.w / 6)))}</text>` : '') +
        '</g>',
    );
  }
  let lx = 4;
  for (const [name, color] of Object.entries(PALETTE)) {
    out.push(`<rect x="${lx}" y="20" width="10" height="10" fill="${color}"/><text x="${lx + 13}" y="29" font-family="sans-serif">${esc(name)}</text>`);
    lx += 13 + name.length * 6 + 10;
  }
  out.push('</svg>');
  return out.join('\n');
}

/** The summary as markdown lines. */
export function summaryMarkdown(name: string, s: ProfileSummary, svg?: string): string[] {
  const per = (ms: number) => (s.calls ? ` (${((1000 * ms) / s.calls).toFixed(1)} µs per call)` : '');
  const L = [
    `### ${name}`,
    '',
    `${s.wallMs.toFixed(0)} ms profiled, ${s.busyMs.toFixed(0)} ms of them the main thread not idle${s.calls ? `, ${s.calls} calls: ${((1000 * s.busyMs) / s.calls).toFixed(1)} µs per call` : ''}${svg ? `; flame graph: ${svg}` : ''}. V8 samples in wall time: on a busy machine a frame's time includes the time its thread was preempted (the CPU-time table above counts work only); shares are what to compare.`,
    '',
    '| component | ms | share |',
    '| --- | --- | --- |',
    ...s.components.filter((c) => c.share >= 0.005).map((c) => `| ${c.name} | ${c.ms.toFixed(1)}${per(c.ms)} | ${(100 * c.share).toFixed(1)}% |`),
    '',
    '| function (self time) | component | ms | share |',
    '| --- | --- | --- | --- |',
    ...s.top.slice(0, 15).map((t) => `| \`${t.frame.replace(/\|/g, '\\|')}\` | ${t.component} | ${t.ms.toFixed(1)} | ${(100 * t.share).toFixed(1)}% |`),
    '',
  ];
  return L;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [file, svgOut] = process.argv.slice(2);
  if (!file) throw new Error('usage: profile.ts FILE.cpuprofile [OUT.svg]');
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  process.stdout.write(summaryMarkdown(file, summarize(p), svgOut).join('\n'));
  if (svgOut) writeFileSync(svgOut, flameGraph(p, file));
}
