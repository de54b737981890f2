/**
 * The NRI plugin's wire layers on byte sequences, without root: the mux
 * (split and merged reads, frame sizes at and past 4096 bytes, unknown
 * connection ids, truncated frames), ttrpc framing, the vendored protobuf
 * messages, and one connection against a fake runtime.
 */
import test from 'ava';

import { NriConnection } from '../src/nri/connection.js';
import { Demuxer, frame, MAX_FRAME_PAYLOAD, MuxError } from '../src/nri/mux.js';
import { decode, encode, eventMask, EVENT, NRI_VERSION, type } from '../src/nri/proto.js';
import { CODE, decodeRequest, decodeResponse, encodeMessage, encodeRequest, encodeResponse, StatusError, TtrpcReader, TYPE_REQUEST } from '../src/nri/ttrpc.js';
import { FakeRuntime } from './helpers/nriRuntime.js';

function muxBytes(conn: number, payload: number[] | Buffer): Buffer {
  const p = Buffer.from(payload);
  const h = Buffer.alloc(8);
  h.writeUInt32BE(conn, 0);
  h.writeUInt32BE(p.length, 4);
  return Buffer.concat([h, p]);
}

function collect(): { got: [number, string][]; unknown: [number, number][]; demux: Demuxer } {
  const got: [number, string][] = [];
  const unknown: [number, number][] = [];
  const demux = new Demuxer(
    (c, p) => got.push([c, p.toString('hex')]),
    (c, l) => unknown.push([c, l]),
  );
  return { got, unknown, demux };
}

test('mux: a frame split across reads, one byte at a time, arrives once and whole', (t) => {
  const { got, demux } = collect();
  const bytes = muxBytes(1, [0xaa, 0xbb, 0xcc]);
  for (const b of bytes) demux.push(Buffer.from([b]));
  t.deepEqual(got, [[1, 'aabbcc']]);
  t.notThrows(() => demux.end());
});

test('mux: several frames in one read, for both connections, in order', (t) => {
  const { got, demux } = collect();
  demux.push(Buffer.concat([muxBytes(1, [1]), muxBytes(2, [2, 2]), muxBytes(1, []), muxBytes(1, [3])]));
  t.deepEqual(got, [
    [1, '01'],
    [2, '0202'],
    [1, ''],
    [1, '03'],
  ]);
});

test('mux: a read that ends inside a header and one inside a payload', (t) => {
  const { got, demux } = collect();
  const all = Buffer.concat([muxBytes(2, [9, 8, 7, 6]), muxBytes(1, [5])]);
  demux.push(all.subarray(0, 5));
  demux.push(all.subarray(5, 10));
  t.deepEqual(got, []);
  demux.push(all.subarray(10));
  t.deepEqual(got, [
    [2, '09080706'],
    [1, '05'],
  ]);
});

test('mux: frames for an unknown connection id are dropped and reported, the stream goes on', (t) => {
  const { got, unknown, demux } = collect();
  demux.push(Buffer.concat([muxBytes(7, [1, 2, 3]), muxBytes(0, []), muxBytes(1, [4])]));
  t.deepEqual(unknown, [
    [7, 3],
    [0, 0],
  ]);
  t.deepEqual(got, [[1, '04']]);
});

test('mux: a truncated frame is a clear error when the socket ends', (t) => {
  const { got, demux } = collect();
  demux.push(muxBytes(1, [1, 2, 3, 4]).subarray(0, 10));
  t.deepEqual(got, []);
  const err = t.throws(() => demux.end(), { instanceOf: MuxError });
  t.regex(err.message, /closed inside a frame \(10 of 12 bytes\)/);
  const half = collect();
  half.demux.push(Buffer.from([0, 0, 0]));
  t.throws(() => half.demux.end(), { message: /3 of 8 bytes/ });
});

test('mux: an impossible frame length fails the connection', (t) => {
  const { demux } = collect();
  const h = Buffer.alloc(8);
  h.writeUInt32BE(1, 0);
  h.writeUInt32BE(0xffffffff, 4);
  t.throws(() => demux.push(h), { instanceOf: MuxError, message: /exceeds/ });
  t.throws(() => demux.push(Buffer.alloc(1)), { message: /already failed/ });
});

test('mux: writes are cut into frames of at most 4096 bytes: exactly 4096 is one frame, 4097 two', (t) => {
  t.is(MAX_FRAME_PAYLOAD, 4096);
  const exact = frame(2, Buffer.alloc(4096, 1));
  t.deepEqual(
    exact.map((f) => [f.readUInt32BE(0), f.readUInt32BE(4), f.length]),
    [[2, 4096, 4104]],
  );
  const over = frame(1, Buffer.alloc(4097, 2));
  t.deepEqual(
    over.map((f) => [f.readUInt32BE(0), f.readUInt32BE(4)]),
    [
      [1, 4096],
      [1, 1],
    ],
  );
  const big = frame(1, Buffer.alloc(10037, 3));
  t.deepEqual(big.map((f) => f.readUInt32BE(4)), [4096, 4096, 1845]);
  // What was cut is what arrives.
  const { got, demux } = collect();
  const data = Buffer.from(Array.from({ length: 9000 }, (_, i) => i & 0xff));
  demux.push(Buffer.concat(frame(1, data)));
  t.is(Buffer.concat(got.map(([, h]) => Buffer.from(h, 'hex'))).compare(data), 0);
});

test('ttrpc: header layout, messages split across and merged in payloads', (t) => {
  const m = encodeMessage({ streamId: 3, type: TYPE_REQUEST, data: Buffer.from([0xde, 0xad]) });
  t.is(m.toString('hex'), '00000002' + '00000003' + '01' + '00' + 'dead');
  const got: string[] = [];
  const r = new TtrpcReader((x) => got.push(`${x.streamId}/${x.type}/${x.data.toString('hex')}`));
  const two = Buffer.concat([m, encodeMessage({ streamId: 5, type: 2, data: Buffer.alloc(0) })]);
  r.push(two.subarray(0, 7));
  r.push(two.subarray(7, 13));
  t.deepEqual(got, ['3/1/dead']);
  t.is(r.pending, 1);
  r.push(two.subarray(13));
  t.deepEqual(got, ['3/1/dead', '5/2/']);
  t.is(r.pending, 0);
  const huge = Buffer.alloc(10);
  huge.writeUInt32BE(5 << 20, 0);
  t.throws(() => new TtrpcReader(() => undefined).push(huge), { message: /exceeds/ });
});

test('ttrpc: Request and Response messages; a status is an error', (t) => {
  const req = decodeRequest(encodeRequest({ service: 's', method: 'm', payload: Buffer.from([1]), timeoutNano: 2e9, metadata: [{ key: 'k', value: 'v' }] }));
  t.deepEqual(req, { service: 's', method: 'm', payload: Buffer.from([1]), timeoutNano: 2e9, metadata: [{ key: 'k', value: 'v' }] });
  // An OK reply with an empty payload is zero bytes (as containerd's RegisterPlugin reply).
  t.is(encodeResponse({}).length, 0);
  t.deepEqual(decodeResponse(new Uint8Array()), Buffer.alloc(0));
  const e = t.throws(() => decodeResponse(encodeResponse({ code: CODE.FAILED_PRECONDITION, message: 'no' })), { instanceOf: StatusError });
  t.is(e.code, 9);
});

test('proto: the vendored NRI messages: pid, annotations, a mount adjustment; misspelt fields refused', (t) => {
  const c = decode<{ pid: number; annotations: Record<string, string> }>(
    type('nri.pkg.api.v1alpha1.Container'),
    encode(type('nri.pkg.api.v1alpha1.Container'), { id: 'c1', pid: 4242, annotations: { a: 'b' } }),
  );
  t.is(c.pid, 4242);
  t.deepEqual(c.annotations, { a: 'b' });
  const adj = { adjust: { mounts: [{ destination: '/.workspace', type: 'bind', source: '/run/iwsd/workspaces/w', options: ['rbind', 'ro'] }] } };
  const back = decode<typeof adj>(type('nri.pkg.api.v1alpha1.CreateContainerResponse'), encode(type('nri.pkg.api.v1alpha1.CreateContainerResponse'), adj));
  t.deepEqual(back.adjust.mounts, adj.adjust.mounts);
  t.deepEqual(decode(type('nri.pkg.api.v1alpha1.RegisterPluginRequest'), encode(type('nri.pkg.api.v1alpha1.RegisterPluginRequest'), { pluginName: 'iwsd', pluginIdx: '50', NRIVersion: NRI_VERSION })), {
    pluginName: 'iwsd',
    pluginIdx: '50',
    NRIVersion: 'v0.12.3',
  });
  t.throws(() => encode(type('nri.pkg.api.v1alpha1.Container'), { pidd: 1 }), { message: /no field pidd/ });
  t.is(eventMask([EVENT.CREATE_CONTAINER, EVENT.START_CONTAINER, EVENT.STOP_CONTAINER, EVENT.REMOVE_CONTAINER]), (1 << 3) | (1 << 5) | (1 << 9) | (1 << 10));
});

test('connection: serves the runtime while its own RegisterPlugin is pending; UNIMPLEMENTED for what it does not serve', async (t) => {
  const rt = new FakeRuntime();
  await rt.listen();
  t.teardown(() => rt.close());
  const seen: string[] = [];
  let registeredWhenConfigured: boolean | undefined;
  let registered = false;
  rt.onRegister = async (r) => {
    const cfg = await r.call('Configure', { runtimeName: 'fake', requestTimeout: 2000 });
    registeredWhenConfigured = registered;
    t.deepEqual(cfg, { events: 5 });
  };
  const conn = await NriConnection.connect(rt.path, async (method, req) => {
    seen.push(method);
    if (method === 'Configure') {
      t.is(req.runtimeName, 'fake');
      return { events: 5 };
    }
    if (method === 'CreateContainer') return { adjust: { mounts: [{ destination: '/x', source: '/y'.repeat(3000), type: 'bind' }] } };
    return undefined;
  });
  t.teardown(() => conn.close());
  await conn.call('RegisterPlugin', { pluginName: 'p', pluginIdx: '10' });
  registered = true;
  t.false(registeredWhenConfigured, 'Configure was served before the RegisterPlugin reply');
  t.deepEqual(rt.registrations, [{ pluginName: 'p', pluginIdx: '10' }]);
  await t.throwsAsync(rt.call('StartContainer', {}), { instanceOf: StatusError, message: /not served/ });
  await t.throwsAsync(rt.call('NoSuchMethod', {}), { message: /not served/ });
  // A 6 KB response goes out in frames of at most 4096 bytes.
  const big = await rt.call('CreateContainer', {});
  t.is(((big.adjust as { mounts: { source: string }[] }).mounts[0]!.source).length, 6000);
  t.true(rt.frames.every((f) => f.length <= 4096));
  t.true(rt.frames.filter((f) => f.conn === 1).length >= 2);
  t.deepEqual(seen, ['Configure', 'StartContainer', 'CreateContainer']);
});

test('connection: a truncated frame from the runtime closes the connection with a clear error', async (t) => {
  const rt = new FakeRuntime();
  await rt.listen();
  t.teardown(() => rt.close());
  const conn = await NriConnection.connect(rt.path, async () => ({}));
  const closed = new Promise<Error | undefined>((r) => conn.once('close', r));
  await new Promise((r) => setTimeout(r, 20));
  rt.conn!.end(muxBytes(1, Buffer.alloc(100)).subarray(0, 50));
  const err = await closed;
  t.regex(String(err?.message), /closed inside a frame \(50 of 108 bytes\)/);
  t.true(conn.closed);
  await t.throwsAsync(conn.call('RegisterPlugin', { pluginName: 'p', pluginIdx: '10' }), { message: /closed inside a frame/ });
});
