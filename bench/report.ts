/** The bench's report: latest.md (tables, targets, profile summary) and latest.svg (the chart). */
import type { Bench, StormResult } from './context.js';
import { FRESH_FLOOR, WARM_FLOOR, oneShotSeries } from './latency.js';
import { f, type Stats } from './lib.js';
import { summaryMarkdown } from './profile.js';

const CLIENTS = [
  { client: 'Node client', series: 'iwsd', oneShot: oneShotSeries('idmapped', 'Node'), bare: 'bare grpc-js' },
  { client: 'Go client', series: 'iwsd (Go client)', oneShot: oneShotSeries('idmapped', 'Go'), bare: 'bare grpc-js (Go client)' },
] as const;

const ONE_SHOTS = new Set(['PrepareForUserNS', 'Teardown']);

/** An RPC's end-to-end series from one client (the one-shots: idmapped). */
const e2eSeries = (rpc: string, c: (typeof CLIENTS)[number]) => (ONE_SHOTS.has(rpc) ? c.oneShot : c.series);

/**
 * The floor an RPC is compared with: the one-shots' native work as the
 * daemon does it (fresh container), else the first floor series.
 */
function floorOf(rpc: string, series: Record<string, Stats>): Stats | undefined {
  return (ONE_SHOTS.has(rpc) ? series[FRESH_FLOOR] : undefined) ?? Object.entries(series).find(([k]) => k.startsWith('floor'))?.[1];
}

/** floor + bare gRPC + iwsd's own cost = end to end (p50), for each RPC with a floor, per client. */
export function stacks(b: Bench): { rpc: string; client: string; series: string; e2e: number; floor: number; bare: number; own: number }[] {
  const out = [];
  for (const [rpc, series] of Object.entries(b.results)) {
    const floor = floorOf(rpc, series);
    if (!floor) continue;
    for (const c of CLIENTS) {
      const e2e = series[e2eSeries(rpc, c)];
      const bare = b.results.WriteIDMapping?.[c.bare];
      if (!e2e || !bare) continue;
      out.push({ rpc, client: c.client, series: e2eSeries(rpc, c), e2e: e2e.p50, floor: floor.p50, bare: bare.p50, own: e2e.p50 - floor.p50 - bare.p50 });
    }
  }
  return out;
}

const perS = (s: StormResult) => (1000 * s.workspaces) / s.wallMs;
const pct = (x: number) => `${(100 * x).toFixed(0)}%`;

/**
 * What limited a storm, from its own numbers: the machine saturated (its
 * cores ≥ 85% busy, /proc/stat), the daemon's JS thread saturated (its CPU
 * ≥ 85% of the wall time), or PrepareForUserNS/Teardown queueing for the
 * long lane (the one that waited most: its time in the daemon ≥ 10× its
 * quiet one-shot value and ≥ 2× the slowest other RPC's, so that the wait is
 * the lane's own and not everybody's). The first that holds is the limit;
 * the others that hold are named after it.
 */
export function stormVerdict(b: Bench, s: StormResult): { limit: 'machine' | 'js-thread' | 'long-lane' | 'none'; text: string } {
  const quietLabel = `${oneShotSeries('idmapped', s.client)} · in daemon`;
  const quiet = (rpc: string) => b.results[rpc]?.[quietLabel] ?? b.results[rpc]?.[`${oneShotSeries('idmapped', 'Node')} · in daemon`];
  const mainShare = s.mainCpuMs / s.wallMs;
  const lane = ['PrepareForUserNS', 'Teardown'].map((rpc) => ({ rpc, storm: s.inDaemon[rpc]?.p50, quiet: quiet(rpc)?.p50 }));
  // The lane call that waited most, against its quiet time and the slowest other RPC (which waits for the event loop and the short lane).
  const worst = lane.reduce((a, l) => ((l.storm ?? 0) / (l.quiet || Infinity) > (a.storm ?? 0) / (a.quiet || Infinity) ? l : a), lane[0]!);
  const laneRatio = worst.storm !== undefined && worst.quiet ? worst.storm / worst.quiet : 0;
  const short = Object.entries(s.inDaemon).filter(([rpc, st]) => !ONE_SHOTS.has(rpc) && st);
  const shortMax = Math.max(0, ...short.map(([, st]) => st!.p50));
  const facts = {
    machine: {
      holds: s.machineBusy >= 0.85,
      text: `the machine is saturated: its ${b.env.cores} cores ${pct(s.machineBusy)} busy over the storm (the daemon ${pct(s.utilisation)} of them; the rest is the clients, the kernel and whatever else runs on the machine${s.machineBusyBefore !== undefined ? `, which used ${pct(s.machineBusyBefore)} in the second before the storm` : ''})`,
    },
    'js-thread': {
      holds: mainShare >= 0.85,
      text: `the daemon's JS thread is saturated: ${s.mainCpuMs.toFixed(0)} ms of CPU in ${s.wallMs} ms wall (${pct(mainShare)})`,
    },
    'long-lane': {
      holds: laneRatio >= 10 && (worst.storm ?? 0) >= 2 * shortMax,
      text: `PrepareForUserNS/Teardown queue for the long lane: in the daemon p50 ${lane.map((l) => `${l.rpc} ${l.storm !== undefined ? f(l.storm) : '?'} ms vs ${l.quiet !== undefined ? f(l.quiet) : '?'} quiet`).join(', ')} (${worst.rpc} ${laneRatio.toFixed(0)}×), the other RPCs p50 ≤ ${f(shortMax)} ms${s.longLane ? `; its ${s.longLane.slots} slots busy ${pct(s.longLane.busyShare)} of the wall, each call holding one ${f(s.longLane.heldMsPerCall)} ms on average` : ''}`,
    },
  } as const;
  const order = ['machine', 'js-thread', 'long-lane'] as const;
  const held = order.filter((k) => facts[k].holds);
  const not = order.filter((k) => !facts[k].holds);
  const notText = not.map((k) => (k === 'machine' ? `machine ${pct(s.machineBusy)} busy` : k === 'js-thread' ? `JS thread ${pct(mainShare)} of wall` : `long lane ${worst.rpc} ${laneRatio.toFixed(1)}× quiet, ${((worst.storm ?? 0) / Math.max(shortMax, 1e-9)).toFixed(1)}× the slowest other RPC`)).join(', ');
  if (!held.length) return { limit: 'none', text: `nothing saturated (${notText}): the storm's time is the clients' own spread` };
  const [first, ...also] = held;
  return {
    limit: first!,
    text: `${facts[first!].text}${also.length ? `; also ${also.map((k) => facts[k].text).join('; ')}` : ''}${not.length ? ` (not: ${notText})` : ''}`,
  };
}

/**
 * Where a storm series' throughput stops growing: the first size after
 * which the next size gains less than 10% workspaces/s (undefined: still
 * growing at the largest, or fewer than two sizes).
 */
export function stormKnee(storms: StormResult[]): { at: StormResult; next: StormResult } | undefined {
  const xs = [...storms].sort((a, z) => a.workspaces - z.workspaces);
  for (let i = 0; i + 1 < xs.length; i++) if (perS(xs[i + 1]!) < 1.1 * perS(xs[i]!)) return { at: xs[i]!, next: xs[i + 1]! };
  return undefined;
}

function kneeText(b: Bench): string | undefined {
  const xs = [...b.storms].sort((a, z) => a.workspaces - z.workspaces);
  if (xs.length < 2) return undefined;
  const series = xs.map((s) => `${s.workspaces}: ${perS(s).toFixed(0)}/s`).join(', ');
  const k = stormKnee(xs);
  if (!k) return `workspaces/s by storm size ${series}: still growing at ${xs.at(-1)!.workspaces}`;
  return `workspaces/s by storm size ${series}: throughput stops growing at ${k.at.workspaces} (${perS(k.at).toFixed(0)}/s; ${k.next.workspaces}: ${perS(k.next).toFixed(0)}/s); at ${k.next.workspaces}, ${stormVerdict(b, k.next).text}`;
}

/** Where an RPC's tail comes from, from what the same run measured. */
function tailSource(b: Bench, rpc: string, e2e: Stats, inDaemon: Stats | undefined, floor: Stats | undefined): string {
  const r = (s: Stats) => s.p99 / s.p50;
  const parts: string[] = [];
  const machine = b.machine;
  if (machine && r(machine) > 3) parts.push(`machine: a fixed busy loop alone has p99/p50 ${r(machine).toFixed(1)}`);
  const tail = e2e.p99 - e2e.p50;
  if (floor && floor.p99 - floor.p50 > 0.5 * tail) parts.push(`the kernel work itself (in-process floor p99 ${f(floor.p99)} ms vs p50 ${f(floor.p50)}: namespace-thread start, mount)`);
  if (inDaemon) {
    const inside = inDaemon.p99 - inDaemon.p50;
    if (inside > 0.5 * tail) parts.push(`inside the daemon's handler (its p99 ${f(inDaemon.p99)} ms vs p50 ${f(inDaemon.p50)})`);
    else parts.push(`outside the handler — transport, scheduling of the 2 cores between client and daemon, the client (handler p99 only ${f(inDaemon.p99)} ms)`);
  }
  const gc = b.profiles[0]?.summary.components.find((c) => c.name === 'GC');
  if (gc) parts.push(`GC ${(100 * gc.share).toFixed(1)}% of the daemon's busy main thread`);
  return parts.join('; ') || `${rpc}: no source measured`;
}

export function markdown(b: Bench): string {
  const L: string[] = [];
  const row = (t: string, m: string, ok: boolean | undefined) => L.push(`| ${t} | ${m} | ${ok === undefined ? '—' : ok ? 'yes' : '**no**'} |`);
  L.push(
    '# iwsd benchmark',
    '',
    `kernel ${b.env.kernel}, ${b.env.cores} cores (${b.env.cpu}), node ${b.env.node}; strategies ${JSON.stringify(b.env.strategies)}; shift methods measured: ${b.methods.join(', ')} (others unavailable here); n=${b.N} per series (after ${b.WARMUP} unrecorded warm-up rounds each); started ${b.env.when}, ${b.env.durationS} s`,
    '',
  );

  // ---- targets ---------------------------------------------------------------
  L.push('## Targets (issue 18; same-run values)', '', '| target | measured | met |', '| --- | --- | --- |');
  for (const s of stacks(b).filter((s) => s.rpc === 'MountProc')) {
    row(`iwsd's own cost above floor + bare grpc-js ≤ 0.1 ms (MountProc p50, ${s.client})`, `${f(s.own)} ms = ${f(s.e2e)} end to end − ${f(s.floor)} floor − ${f(s.bare)} bare gRPC`, s.own <= 0.1);
  }
  for (const [rpc, limit, native] of [
    ['PrepareForUserNS', 1, 'authorize + mark + devices'],
    ['Teardown', 0.5, 'authorize + remove'],
  ] as const) {
    const series = b.results[rpc];
    const fresh = series?.[FRESH_FLOOR];
    const warm = series?.[WARM_FLOOR];
    for (const c of CLIENTS) {
      const e2e = series?.[c.oneShot];
      if (!e2e) continue;
      const inD = series?.[`${c.oneShot} · in daemon`];
      row(
        `${rpc} p50 ≤ ${limit} ms (idmapped, ${c.client})`,
        `${f(e2e.p50)} ms (in daemon ${inD ? f(inD.p50) : '?'}); native floor as the daemon does it, fresh container (${native}): ${fresh ? f(fresh.p50) : '?'} ms; mark alone cycled on a warm container: ${warm ? f(warm.p50) : '?'} ms`,
        e2e.p50 <= limit,
      );
    }
  }
  for (const s of b.storms) {
    // The marks' user-namespace cache may keep up to 32 idle namespaces (by design, bounded): not a leak.
    const kept = s.after.userns - s.before.userns;
    const leak = s.after.fds - s.after.userns > s.before.fds - s.before.userns || s.after.userns > 32 || s.after.threads > s.before.threads;
    const m = `${s.wallMs} ms, ${s.errors} errors, fds ${s.before.fds}→${s.after.fds}${kept > 0 ? ` (+${kept}: idle user namespace${kept > 1 ? 's' : ''} the mark cache keeps)` : ''}, threads ${s.before.threads}→${s.after.threads}; ${perS(s).toFixed(0)} workspaces/s, daemon CPU ${pct(s.utilisation)} of ${b.env.cores} cores, its main thread ${s.mainCpuMs.toFixed(0)} ms (${pct(s.mainCpuMs / s.wallMs)} of wall), machine ${pct(s.machineBusy)} busy. Limit: ${stormVerdict(b, s).text}`;
    if (s.workspaces === 200) row('start storm of 200 full ring sequences ≤ 0.75 s, 0 errors, nothing leaked', m, s.wallMs <= 750 && s.errors === 0 && !leak);
    else if (s.workspaces === 1000) row('start storm of 1,000: how far it scales', m, s.errors === 0 && !leak ? undefined : false);
    else row(`start storm of ${s.workspaces}: no errors, nothing leaked`, m, s.errors === 0 && !leak);
  }
  const knee = kneeText(b);
  if (knee) row("start storms: where the throughput's knee is, and why", knee, undefined);
  if (b.fairness) {
    const fr = b.fairness;
    row("a quiet workspace's MountProc p99 during a neighbour's flood ≤ 2× alone", `${f(fr.during.p99)} ms vs ${f(fr.alone.p99)} ms alone (${(fr.during.p99 / fr.alone.p99).toFixed(2)}×)`, fr.during.p99 <= 2 * fr.alone.p99);
  }
  const tails: string[] = [];
  for (const [rpc, series] of Object.entries(b.results)) {
    for (const c of ['iwsd', 'iwsd (Go client)', ...b.methods.flatMap((m) => [oneShotSeries(m, 'Node'), oneShotSeries(m, 'Go')])]) {
      const e2e = series[c];
      if (!e2e) continue;
      const ratio = e2e.p99 / e2e.p50;
      tails.push(`| ${rpc} | ${c} | ${f(e2e.p50)} / ${f(e2e.p99)} (${ratio.toFixed(1)}×) | ${series[`${c} · in daemon`] ? `${f(series[`${c} · in daemon`]!.p50)} / ${f(series[`${c} · in daemon`]!.p99)}` : '—'} | ${ratio <= 3 ? 'within 3×' : tailSource(b, rpc, e2e, series[`${c} · in daemon`], floorOf(rpc, series))} |`);
    }
  }
  const over = tails.filter((t) => !t.endsWith('within 3× |')).length;
  row('p99 ≤ 3× p50 for every RPC end to end, or where the tail comes from', `${tails.length - over} of ${tails.length} series within 3×; the others' sources: see "Tails"`, over === 0 ? true : undefined);
  for (const [name, series, key] of [
    ['processes in the container', b.idmapByProcesses.map((x) => ({ n: x.processes, s: x.stats })), 'processes'],
    ['registered workspaces', b.idmapByWorkspaces.map((x) => ({ n: x.workspaces, s: x.stats })), 'workspaces'],
  ] as const) {
    if (series.length < 2) continue;
    const first = series[0]!;
    const last = series.at(-1)!;
    row(`WriteIDMapping flat in the number of ${name} (p50 at ${last.n} ≤ 1.25× at ${first.n})`, series.map((x) => `${x.n} ${key}: ${f(x.s.p50)} ms`).join(', '), last.s.p50 <= 1.25 * first.s.p50);
  }
  const rss1000 = b.memory.find((m) => m.workspaces === 1000);
  if (Number.isFinite(b.idleKiBPerWorkspace)) row('idle cost ≤ 32 KiB per registered workspace', `${b.idleKiBPerWorkspace.toFixed(1)} KiB (RSS slope 100→1,000); daemon RSS with 1,000 workspaces ${rss1000 ? `${(rss1000.rssKiB / 1024).toFixed(1)} MiB` : '?'}`, b.idleKiBPerWorkspace <= 32);
  const mp = b.results.MountProc;
  if (mp?.['exec-helper'] && mp.floor && mp.iwsd) row('native MountProc ≥ 5× faster than exec-helper (p50)', `${(mp['exec-helper'].p50 / mp.floor.p50).toFixed(1)}× (end to end: ${(mp['exec-helper'].p50 / mp.iwsd.p50).toFixed(1)}×)`, mp['exec-helper'].p50 / mp.floor.p50 >= 5);

  // ---- latency ---------------------------------------------------------------
  L.push('', '## Latency per RPC (ms)', '', '| RPC | series | min | p50 | p95 | p99 | max | p50 vs iwsd |', '| --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const [rpc, series] of Object.entries(b.results)) {
    const own = series.iwsd ?? Object.values(series)[0]!;
    for (const [name, s] of Object.entries(series)) L.push(`| ${rpc} | ${name} | ${f(s.min)} | ${f(s.p50)} | ${f(s.p95)} | ${f(s.p99)} | ${f(s.max)} | ${(s.p50 / own.p50).toFixed(2)}× |`);
  }
  L.push(
    '',
    "## Where the time goes (p50, ms): floor + bare gRPC + iwsd's own",
    '',
    `iwsd's own = end to end − floor − bare gRPC; of it, the core's per-call caller checks (the floor with them − without) and the time in the daemon's handler beyond the floor. PrepareForUserNS/Teardown (idmapped): the floor is "${FRESH_FLOOR}" (the daemon's native calls on a fresh container per workspace, as its one-shot series has).`,
    '',
    "| RPC | client | end to end | floor | bare grpc-js | iwsd's own | of which caller checks | in handler − floor |",
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
  );
  for (const s of stacks(b)) {
    const series = b.results[s.rpc]!;
    const checked = series['floor, with caller checks'];
    const handler = series[`${s.series} · in daemon`];
    L.push(`| ${s.rpc} | ${s.client} | ${f(s.e2e)} | ${f(s.floor)} | ${f(s.bare)} | ${f(s.own)} | ${checked ? f(checked.p50 - s.floor) : '—'} | ${handler ? f(handler.p50 - s.floor) : '—'} |`);
  }
  if (b.floorParts) {
    const warm = (rpc: string) => b.results[rpc]?.[WARM_FLOOR];
    L.push(
      '',
      `### The idmapped one-shots' floor on a fresh container, part by part (p50 / p95 ms; ${b.floorParts['Teardown: removeShiftMark']?.n ?? '?'} containers)`,
      '',
      `What the daemon calls natively for each, through the binding, on a container of its own per workspace (its first mark: the root made shared, /dev nodes made, the caller pinned); "${WARM_FLOOR}" cycles the mark alone on one warm container: PrepareForUserNS ${warm('PrepareForUserNS') ? f(warm('PrepareForUserNS')!.p50) : '?'} ms, Teardown ${warm('Teardown') ? f(warm('Teardown')!.p50) : '?'} ms.`,
      '',
      '| part | p50 | p95 |',
      '| --- | --- | --- |',
      ...Object.entries(b.floorParts).map(([part, st]) => `| ${part} | ${f(st.p50)} | ${f(st.p95)} |`),
    );
  }
  L.push('', '## Daemon CPU per call (µs; all threads, and its main thread alone)', '', '| series | all threads | main thread |', '| --- | --- | --- |');
  for (const c of b.cpu) L.push(`| ${c.series} | ${c.allUs.toFixed(0)} | ${c.mainUs.toFixed(0)} |`);
  if (b.tsLayer) {
    const t = b.tsLayer;
    L.push(
      '',
      "### iwsd's TypeScript alone (main-thread CPU µs per MountProc/UmountProc; bench/tslayer.ts)",
      '',
      'The workspace handlers (boundary, guard, service, state journal, audit log, metrics) called in-process as grpc-js calls them, against a native library that answers at once: no transport, no kernel. Each part\'s cost is the whole minus the whole without it (each the least of three runs; the parts vary by ±5–10 µs between runs, the whole by less).',
      '',
      '| whole | audit log | state journal | metrics | rate limiter | one native call that does nothing (the pool round trip) |',
      '| --- | --- | --- | --- | --- | --- |',
      `| ${t.whole.toFixed(1)} | ${(t.whole - t.without.log!).toFixed(1)} | ${(t.whole - t.without.journal!).toFixed(1)} | ${(t.whole - t.without.metrics!).toFixed(1)} | ${t.rateLimiterConsume.toFixed(1)} | ${t.nativeNoop.toFixed(1)} |`,
    );
  }
  L.push('', '## Tails: p50 / p99 end to end and inside the daemon (ms)', '', `The machine's own jitter: a fixed busy loop has p50 ${b.machine ? f(b.machine.p50) : '?'} ms, p99 ${b.machine ? f(b.machine.p99) : '?'} ms (${b.machine ? (b.machine.p99 / b.machine.p50).toFixed(1) : '?'}×).`, '', '| RPC | series | end to end p50 / p99 | in daemon p50 / p99 | tail from |', '| --- | --- | --- | --- | --- |', ...tails);

  // ---- load, scale ------------------------------------------------------------
  if (b.fairness) {
    const fr = b.fairness;
    L.push('', "## Fairness: a quiet workspace's MountProc during a neighbour's flood (ms)", '', '| series | min | p50 | p95 | p99 | max |', '| --- | --- | --- | --- | --- | --- |');
    for (const [name, st] of [['alone', fr.alone], ['during the flood', fr.during]] as const) L.push(`| ${name} | ${f(st.min)} | ${f(st.p50)} | ${f(st.p95)} | ${f(st.p99)} | ${f(st.max)} |`);
    L.push(
      '',
      `Flood: 3,000 WriteIDMapping calls kept outstanding over 16 connections (${fr.flood.calls} answered while the quiet series ran: ${Object.entries(fr.flood.codes).map(([k, v]) => `${k} ${v}`).join(', ')}), plus 500 connections sending nothing (${fr.flood.heldConnected} got through connect(), ${fr.flood.heldClosedByDaemon} closed by the daemon by the end). Daemon fds ${fr.daemon.before.fds}→${fr.daemon.peak.fds} (peak), RSS ${fr.daemon.before.rssKiB}→${fr.daemon.peak.rssKiB} KiB (peak). Default configuration except the quiet workspace's mount rate limits.`,
    );
  }
  L.push('', '## MountProc as the container mount table grows', '', '| mounts in container | p50 ms | p99 ms |', '| --- | --- | --- |');
  for (const g of b.growth) L.push(`| ${g.mounts} | ${f(g.p50)} | ${f(g.p99)} |`);
  L.push('', '## WriteIDMapping as the container and the node grow (ms)', '', '| processes in the container | p50 | p99 |', '| --- | --- | --- |');
  for (const x of b.idmapByProcesses) L.push(`| ${x.processes} | ${f(x.stats.p50)} | ${f(x.stats.p99)} |`);
  L.push('', '| registered workspaces | p50 | p99 | daemon RSS KiB |', '| --- | --- | --- | --- |');
  for (const x of b.idmapByWorkspaces) L.push(`| ${x.workspaces} | ${f(x.stats.p50)} | ${f(x.stats.p99)} | ${b.memory.find((m) => m.workspaces === x.workspaces)?.rssKiB ?? '?'} |`);
  L.push('', '## Daemon RSS with registered workspaces', '', '| workspaces | RSS KiB |', '| --- | --- |');
  for (const m of b.memory) L.push(`| ${m.workspaces} | ${m.rssKiB} |`);
  L.push(
    '',
    '## Start storms (full ring sequence per workspace, concurrently)',
    '',
    '| workspaces | clients | setup s | wall ms | workspaces/s | per-workspace p50 / p99 ms | errors | daemon CPU ms (share of cores) | daemon main thread CPU ms (share of wall) | machine busy (in the second before) | RSS KiB before/peak/after | threads | fds |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  );
  for (const s of b.storms) {
    L.push(
      `| ${s.workspaces} | ${s.client} | ${(s.setupMs / 1000).toFixed(0)} | ${s.wallMs} | ${perS(s).toFixed(0)} | ${f(s.perWorkspace.p50)} / ${f(s.perWorkspace.p99)} | ${s.errors} | ${s.cpuMs.toFixed(0)} (${pct(s.utilisation)}) | ${s.mainCpuMs.toFixed(0)} (${pct(s.mainCpuMs / s.wallMs)}) | ${pct(s.machineBusy)}${s.machineBusyBefore !== undefined ? ` (${pct(s.machineBusyBefore)} before)` : ''} | ${s.before.rssKiB}/${s.peak.rssKiB}/${s.after.rssKiB} | ${s.before.threads}/${s.peak.threads}/${s.after.threads} | ${s.before.fds}/${s.peak.fds}/${s.after.fds} |`,
    );
  }
  for (const s of b.storms) {
    L.push(
      '',
      `Storm of ${s.workspaces}, time inside the daemon per RPC (p50 / p99 ms, waits for a lane slot included; long lane: PrepareForUserNS, Teardown): ${Object.entries(s.inDaemon).map(([rpc, st]) => (st ? `${rpc} ${f(st.p50)} / ${f(st.p99)}` : `${rpc} —`)).join('; ')}. **Limit**: ${stormVerdict(b, s).text}.`,
    );
  }
  if (knee) L.push('', `**Knee**: ${knee}.`);
  if (b.profiles.length) {
    L.push('', '## Profile of the daemon (V8 CPU profile, main thread)', '');
    for (const p of b.profiles) L.push(...summaryMarkdown(p.name, p.summary, p.svg));
  }
  L.push(
    '',
    'Series: **iwsd** = end to end over the workspace socket from a client inside the container; **· in daemon** = the same calls inside the daemon\'s handler (its audit records\' durationMs: from the request decoded to the answer); **floor** = the same native operation in-process (no gRPC, no daemon); **exec-helper** = the replaced design (one helper exec per step, staging mounts in the daemon namespace; WriteIDMapping after a /proc scan); **bare grpc-js** = a no-op handler over a unix socket, same client: the cost of gRPC alone on this machine; **(Go client)** = the same calls from a static grpc-go client inside the container (bench/go-client) instead of the Node one. Chart: latest.svg.',
    '',
  );
  return L.join('\n');
}

/** The chart: floor / bare gRPC / iwsd's own stacked per RPC (p50), then every series' p50 and p99. */
export function svg(b: Bench): string {
  const W = 900;
  const left = 260;
  const parts: string[] = [];
  let y = 0;
  const st = stacks(b);
  const maxStack = Math.max(...st.map((s) => s.e2e), 0.001);
  const lin = (x: number) => ((W - left - 80) * x) / maxStack;
  parts.push(`<text x="10" y="${(y += 18)}" font-size="13">end to end p50 (ms, linear): syscall floor + bare gRPC (same client) + iwsd's own cost</text>`);
  const legend = [
    ['floor', '#38a169'],
    ['bare gRPC', '#dd6b20'],
    ["iwsd's own", '#2b6cb0'],
  ];
  legend.forEach(([n, c], i) => parts.push(`<rect x="${left + 20 + i * 110}" y="${y + 6}" width="10" height="10" fill="${c}"/><text x="${left + 34 + i * 110}" y="${y + 15}">${n}</text>`));
  y += 22;
  for (const s of st) {
    const x0 = left + 20;
    const segs = [
      [s.floor, '#38a169'],
      [s.bare, '#dd6b20'],
      [Math.max(0, s.own), '#2b6cb0'],
    ] as const;
    parts.push(`<text x="10" y="${y + 12}">${s.rpc} · ${s.client}</text>`);
    let x = x0;
    for (const [v, c] of segs) {
      parts.push(`<rect x="${x.toFixed(1)}" y="${y + 3}" width="${lin(v).toFixed(1)}" height="12" fill="${c}"/>`);
      x += lin(v);
    }
    parts.push(`<text x="${(x0 + lin(s.e2e) + 4).toFixed(1)}" y="${y + 12}">${f(s.e2e)} = ${f(s.floor)} + ${f(s.bare)} + ${f(s.own)}</text>`);
    y += 22;
  }
  y += 14;
  const rows = Object.entries(b.results).flatMap(([rpc, series]) => Object.entries(series).map(([name, s]) => ({ label: `${rpc} · ${name}`, s })));
  const max = Math.max(...rows.map((r) => r.s.p99));
  const scale = (x: number) => left + 20 + ((W - left - 60) * Math.log10(1 + x * 10)) / Math.log10(1 + max * 10);
  const colors: Record<string, string> = { iwsd: '#2b6cb0', floor: '#38a169', 'exec-helper': '#c53030', bare: '#dd6b20' };
  parts.push(`<text x="10" y="${(y += 18)}" font-size="13">every series (ms, log scale): bar = p50, whisker = p99, tick = min</text>`);
  y += 6;
  for (const r of rows) {
    const color = colors[r.label.split(' · ')[1]!.split(' ')[0]!] ?? '#6b46c1';
    parts.push(`<text x="10" y="${y + 12}">${r.label}</text>`);
    parts.push(`<rect x="${left + 20}" y="${y + 3}" width="${(scale(r.s.p50) - left - 20).toFixed(1)}" height="12" fill="${color}"/>`);
    parts.push(`<line x1="${scale(r.s.p50).toFixed(1)}" y1="${y + 9}" x2="${scale(r.s.p99).toFixed(1)}" y2="${y + 9}" stroke="${color}"/>`);
    parts.push(`<line x1="${scale(r.s.min).toFixed(1)}" y1="${y + 1}" x2="${scale(r.s.min).toFixed(1)}" y2="${y + 17}" stroke="#000"/>`);
    parts.push(`<text x="${(scale(r.s.p99) + 4).toFixed(1)}" y="${y + 12}">${f(r.s.p50)} / ${f(r.s.p99)}</text>`);
    y += 22;
  }
  return [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${y + 10}" font-family="sans-serif" font-size="11">`, ...parts, '</svg>'].join('\n');
}
