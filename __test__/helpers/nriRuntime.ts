/**
 * A fake NRI runtime for unit tests: listens on a unix socket like
 * containerd's NRI, speaks the mux + ttrpc from the runtime's side (calls
 * the plugin on conn 1, serves RegisterPlugin on conn 2), and records
 * every frame it receives so tests can check their sizes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Demuxer, frame, PLUGIN_SERVICE_CONN, RUNTIME_SERVICE_CONN } from '../../src/nri/mux.js';
import { decode, encode, method, PLUGIN_SERVICE } from '../../src/nri/proto.js';
import { decodeRequest, decodeResponse, encodeMessage, encodeRequest, encodeResponse, TtrpcReader, TYPE_REQUEST, TYPE_RESPONSE } from '../../src/nri/ttrpc.js';

export class FakeRuntime {
  readonly dir = mkdtempSync(join(tmpdir(), 'iwsd-nri-'));
  readonly path = join(this.dir, 'nri.sock');
  #server: Server = createServer((s) => this.#accept(s));
  /** Every RegisterPlugin request seen. */
  registrations: Record<string, unknown>[] = [];
  /** Payload sizes of every mux frame received, per conn. */
  frames: { conn: number; length: number }[] = [];
  conn: Socket | undefined;
  #streams = 1;
  #pending = new Map<number, (r: { payload?: Buffer; error?: Error }) => void>();
  #connected: (() => void)[] = [];
  /** Delay (ms) before answering RegisterPlugin; Configure is sent before the answer. */
  registerDelay = 50;
  /** Sent by onRegister before answering RegisterPlugin (like containerd: Configure first). */
  onRegister: ((rt: FakeRuntime) => Promise<void>) | undefined;

  async listen(): Promise<void> {
    await new Promise<void>((r) => this.#server.listen(this.path, r));
  }

  #accept(s: Socket): void {
    this.conn?.destroy();
    this.conn = s;
    const fromPlugin = new TtrpcReader((m) => {
      if (m.type !== TYPE_RESPONSE) return;
      const cb = this.#pending.get(m.streamId);
      this.#pending.delete(m.streamId);
      try {
        cb?.({ payload: decodeResponse(m.data) });
      } catch (err) {
        cb?.({ error: err as Error });
      }
    });
    const toRuntime = new TtrpcReader((m) => {
      if (m.type !== TYPE_REQUEST) return;
      const req = decodeRequest(m.data);
      const types = method('nri.pkg.api.v1alpha1.Runtime', req.method)!;
      this.registrations.push(decode(types.request, req.payload));
      // A failing onRegister hook ends the connection (the plugin sees it), never the test process.
      (async () => {
        await this.onRegister?.(this);
        await new Promise((r) => setTimeout(r, this.registerDelay));
        this.write(RUNTIME_SERVICE_CONN, encodeMessage({ streamId: m.streamId, type: TYPE_RESPONSE, data: encodeResponse({}) }));
        for (const c of this.#connected.splice(0)) c();
      })().catch((err: unknown) => s.destroy(err as Error));
    });
    const demux = new Demuxer((conn, payload) => {
      this.frames.push({ conn, length: payload.length });
      (conn === PLUGIN_SERVICE_CONN ? fromPlugin : toRuntime).push(payload);
    });
    s.on('data', (c: Buffer) => demux.push(c));
    s.on('error', () => undefined);
  }

  /** Resolves once a plugin registered (after the RegisterPlugin reply). */
  registered(): Promise<void> {
    return new Promise((r) => this.#connected.push(r));
  }

  write(conn: number, bytes: Uint8Array): void {
    for (const f of frame(conn, bytes)) this.conn!.write(f);
  }

  /** Calls a Plugin method; resolves with the decoded response or rejects with the plugin's status. */
  async call(name: string, request: Record<string, unknown>, timeoutMs = 2000): Promise<Record<string, unknown>> {
    const types = method(PLUGIN_SERVICE, name);
    const payload = types ? encode(types.request, request) : new Uint8Array();
    const streamId = this.#streams;
    this.#streams += 2;
    const done = new Promise<{ payload?: Buffer; error?: Error }>((r) => this.#pending.set(streamId, r));
    const data = encodeRequest({ service: PLUGIN_SERVICE, method: name, payload: Buffer.from(payload), timeoutNano: timeoutMs * 1e6, metadata: [{ key: 'containerd-namespace-ttrpc', value: 'k8s.io' }] });
    this.write(PLUGIN_SERVICE_CONN, encodeMessage({ streamId, type: TYPE_REQUEST, data }));
    const r = await done;
    if (r.error) throw r.error;
    return types ? decode(types.response, r.payload!) : {};
  }

  /** Drops the plugin's connection (a runtime restart). */
  drop(): void {
    this.conn?.destroy();
    this.conn = undefined;
  }

  async close(): Promise<void> {
    this.drop();
    await new Promise<void>((r) => this.#server.close(() => r()));
    rmSync(this.dir, { recursive: true, force: true });
  }
}
