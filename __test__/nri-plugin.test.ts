/**
 * The NRI plugin's behaviour against a fake runtime and a fake daemon,
 * without root: which containers are workspaces, the mount adjustment,
 * registration by pid, teardown, Synchronize, reconnecting, deadlines.
 */
import test from 'ava';
import { pino } from 'pino';

import type { AddWorkspaceOptions } from '../src/daemon.js';
import { IwsError } from '../src/errors.js';
import { NriPlugin, type WorkspaceHost } from '../src/nri/plugin.js';
import { StatusError } from '../src/nri/ttrpc.js';
import { workspaceOf } from '../src/nri/workspaces.js';
import { FakeRuntime } from './helpers/nriRuntime.js';

class FakeHost implements WorkspaceHost {
  calls: string[] = [];
  ws = new Map<string, number>();
  delayMs = 0;
  async prepareWorkspace(id: string, markPath?: string): Promise<string> {
    this.calls.push(`prepare ${id}${markPath ? ` ${markPath}` : ''}`);
    return `/state/workspaces/${id}`;
  }
  async discardWorkspace(id: string): Promise<void> {
    this.calls.push(`discard ${id}`);
  }
  async addWorkspace(o: AddWorkspaceOptions) {
    if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    this.calls.push(`add ${o.id} ${o.hostPid}${o.rootRange ? ` root=${o.rootRange.start}` : ''}`);
    this.ws.set(o.id, o.hostPid);
    return {} as never;
  }
  async removeWorkspace(id: string): Promise<void> {
    this.calls.push(`rm ${id}`);
    this.ws.delete(id);
  }
  list() {
    return [...this.ws].map(([id, hostPid]) => ({ id, hostPid }));
  }
}

async function until(f: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}

const log = pino({ level: 'silent' });
const wsPod = { id: 'sb1', name: 'ws', namespace: 'default', uid: 'uid-1', annotations: { 'iwsd.io/workspace': 'true', 'iwsd.io/workspace-id': 'ws-a' } };
const plainPod = { id: 'sb2', name: 'plain', namespace: 'default', uid: 'uid-2', annotations: {} };

async function setup(t: import('ava').ExecutionContext) {
  const rt = new FakeRuntime();
  await rt.listen();
  const host = new FakeHost();
  const plugin = new NriPlugin(host, { socket: rt.path, pluginName: 'iwsd', pluginIndex: '50', backoff: { initialMs: 20, maxMs: 100 } }, log);
  rt.onRegister = async (r) => {
    await r.call('Configure', { runtimeName: 'fake', runtimeVersion: '1', requestTimeout: 2000, NRIVersion: 'v0.12.3' });
  };
  const registered = rt.registered();
  plugin.start();
  await registered;
  await until(() => plugin.status().connected);
  t.teardown(async () => {
    await plugin.close();
    await rt.close();
  });
  return { rt, host, plugin };
}

test('annotations: only annotated pods are workspaces; id, container and overrides', (t) => {
  t.is(workspaceOf(plainPod, { name: 'c' }), undefined);
  t.is(workspaceOf({ annotations: { 'iwsd.io/workspace': 'false' } }, { name: 'c' }), undefined);
  t.deepEqual(workspaceOf({ uid: 'u-1', annotations: { 'iwsd.io/workspace': 'true' } }, { name: 'c' }), { id: 'u-1' });
  const pod = { uid: 'u', annotations: { 'iwsd.io/workspace': 'true', 'iwsd.io/workspace-container': 'main', 'iwsd.io/root-range': '44444:1', 'iwsd.io/mark-path': '/.workspace/m' } };
  t.is(workspaceOf(pod, { name: 'sidecar' }), undefined);
  t.deepEqual(workspaceOf(pod, { name: 'main' }), { id: 'u', rootRange: { start: 44444, size: 1 }, markPath: '/.workspace/m' });
  t.throws(() => workspaceOf({ uid: 'u', annotations: { 'iwsd.io/workspace': 'true', 'iwsd.io/root-range': 'x' } }, {}), { message: /iwsd.io\/root-range/ });
});

test('a plain pod is answered at once and never touched; a workspace pod gets /.workspace read-only, registered at start, torn down at stop', async (t) => {
  const { rt, host, plugin } = await setup(t);
  t.deepEqual(rt.registrations, [{ pluginName: 'iwsd', pluginIdx: '50', NRIVersion: 'v0.12.3' }]);
  t.like(plugin.status(), { connected: true, runtime: 'fake 1', plugin: '50-iwsd' });

  const plain = await rt.call('CreateContainer', { pod: plainPod, container: { id: 'c2', podSandboxId: 'sb2', name: 'c' } });
  t.is(plain.adjust, undefined);
  await rt.call('StartContainer', { pod: plainPod, container: { id: 'c2', podSandboxId: 'sb2', name: 'c', pid: 99 } });
  await rt.call('StopContainer', { pod: plainPod, container: { id: 'c2', podSandboxId: 'sb2', name: 'c', pid: 99 } });
  t.deepEqual(host.calls, []);

  const c = { id: 'c1', podSandboxId: 'sb1', name: 'main' };
  const created = await rt.call('CreateContainer', { pod: wsPod, container: c });
  t.deepEqual((created.adjust as { mounts: unknown[] }).mounts, [{ destination: '/.workspace', type: 'bind', source: '/state/workspaces/ws-a', options: ['rbind', 'ro', 'nosuid', 'nodev', 'noexec'] }]);
  await rt.call('StartContainer', { pod: wsPod, container: { ...c, pid: 4242 } });
  t.deepEqual(host.calls, ['prepare ws-a', 'add ws-a 4242']);
  await rt.call('StopContainer', { pod: wsPod, container: { ...c, pid: 4242 } });
  await rt.call('RemoveContainer', { pod: wsPod, container: c });
  await plugin.idle();
  t.deepEqual(host.calls, ['prepare ws-a', 'add ws-a 4242', 'rm ws-a', 'discard ws-a']);
});

test('fail-closed: bad annotations refuse the create; a failed registration refuses the start', async (t) => {
  const { rt, host } = await setup(t);
  const bad = { ...wsPod, annotations: { ...wsPod.annotations, 'iwsd.io/user-ranges': 'nope' } };
  await t.throwsAsync(rt.call('CreateContainer', { pod: bad, container: { id: 'x', name: 'main' } }), { instanceOf: StatusError, message: /iwsd.io\/user-ranges/ });
  host.addWorkspace = async () => {
    throw new IwsError('NOT_FOUND', 'no such process');
  };
  const e = await t.throwsAsync(rt.call('StartContainer', { pod: wsPod, container: { id: 'c1', name: 'main', pid: 7 } }), { instanceOf: StatusError });
  t.is(e.code, 9);
  t.regex(e.message, /ws-a.*no such process/);
});

test('answers within the request timeout: a slow registration is answered and finishes in the background', async (t) => {
  const { rt, host, plugin } = await setup(t);
  host.delayMs = 1800;
  const t0 = Date.now();
  await rt.call('StartContainer', { pod: wsPod, container: { id: 'c1', name: 'main', pid: 5 } }, 2000);
  t.true(Date.now() - t0 < 1500, `answered after ${Date.now() - t0} ms`);
  t.deepEqual(host.calls, []);
  await plugin.idle();
  t.deepEqual(host.calls, ['add ws-a 5']);
});

test('StateChange (NRI < 0.12): start and remove', async (t) => {
  const { rt, host, plugin } = await setup(t);
  await rt.call('StateChange', { event: 'START_CONTAINER', pod: wsPod, container: { id: 'c1', name: 'main', pid: 11 } });
  await rt.call('StateChange', { event: 'REMOVE_CONTAINER', pod: wsPod, container: { id: 'c1', name: 'main' } });
  await plugin.idle();
  t.deepEqual(host.calls, ['add ws-a 11', 'rm ws-a']);
  await t.throwsAsync(rt.call('PostStartContainer', { pod: wsPod, container: { id: 'c1' } }), { message: /not served/ });
});

test('Synchronize: registers the missing, adopts the known (no double registration), drops the gone; split syncs', async (t) => {
  const { rt, host, plugin } = await setup(t);
  host.ws.set('ws-b', 200); // restored from disk before the connection
  const podB = { ...wsPod, id: 'sb3', uid: 'uid-3', annotations: { 'iwsd.io/workspace': 'true', 'iwsd.io/workspace-id': 'ws-b' } };
  const r1 = await rt.call('Synchronize', { pods: [wsPod], containers: [{ id: 'c1', podSandboxId: 'sb1', name: 'main', state: 'CONTAINER_RUNNING', pid: 100 }], more: true });
  t.deepEqual(r1, { more: true, update: [] });
  await rt.call('Synchronize', { pods: [podB, plainPod], containers: [{ id: 'c3', podSandboxId: 'sb3', name: 'main', state: 'CONTAINER_RUNNING', pid: 200 }, { id: 'c2', podSandboxId: 'sb2', name: 'c', state: 'CONTAINER_RUNNING', pid: 300 }] });
  await plugin.idle();
  t.deepEqual(host.calls, ['add ws-a 100']);
  t.deepEqual(host.list(), [
    { id: 'ws-b', hostPid: 200 },
    { id: 'ws-a', hostPid: 100 },
  ]);
  // A second sync (runtime restart) where ws-a's container is gone.
  await rt.call('Synchronize', { pods: [podB], containers: [{ id: 'c3', podSandboxId: 'sb3', name: 'main', state: 'CONTAINER_RUNNING', pid: 200 }] });
  await plugin.idle();
  t.deepEqual(host.calls, ['add ws-a 100', 'rm ws-a']);
  t.deepEqual(host.list(), [{ id: 'ws-b', hostPid: 200 }]);
});

test('reconnects with backoff when the runtime goes away, and registers again', async (t) => {
  const { rt, plugin } = await setup(t);
  const again = rt.registered();
  rt.drop();
  await again;
  await until(() => plugin.status().connected);
  t.is(rt.registrations.length, 2);
  t.true(plugin.status().connected);
  t.true(plugin.status().reconnects >= 1);
});
