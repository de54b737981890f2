/**
 * contrib/kubernetes/, offline: every manifest validates against strict
 * schemas generated from the OpenAPI document of k8s.io/kubernetes v1.37.2
 * (tools/k8s/schemas.mjs) with kubeconform -strict, and the validator does
 * reject unknown fields and wrong types (a validator that passes everything
 * proves nothing); the pieces agree with each other and with iwsd (its
 * config parses with iwsd's own schema, the state dir is mounted at the
 * same path as on the node with Bidirectional propagation, the NRI socket's
 * directory, probes on the admin socket, a rollout that never runs two iwsd
 * on a node, the image the image script names, the fail-closed annotation
 * on the workspace pod and not on iwsd's own).
 *
 * Needs kubeconform (.tools/bin, .ci/run builds it) and the k8s.io/kubernetes
 * module (Go module cache); skipped visibly without them, failed instead when
 * IWSD_REQUIRE_CONTAINERD=1 (.ci/run sets it when it has built the Go tools).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import test, { type ExecutionContext } from 'ava';
import { parseAllDocuments, stringify } from 'yaml';

import { parseConfig } from '../src/config.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DIR = join(ROOT, 'contrib/kubernetes');
const KUBECONFORM = join(ROOT, '.tools/bin/kubeconform');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Obj = Record<string, any>;

function docs(file: string): Obj[] {
  return parseAllDocuments(readFileSync(join(DIR, file), 'utf8')).map((d) => {
    if (d.errors.length) throw new Error(`${file}: ${d.errors.map(String).join('; ')}`);
    return d.toJSON() as Obj;
  });
}
const one = (file: string): Obj => {
  const d = docs(file);
  if (d.length !== 1) throw new Error(`${file}: ${d.length} documents`);
  return d[0]!;
};

let schemas: string | undefined;
let missing: string | undefined;
if (!existsSync(KUBECONFORM)) missing = `${KUBECONFORM} missing (GOBIN=$PWD/.tools/bin go install github.com/yannh/kubeconform/cmd/kubeconform@v0.8.0)`;
else {
  try {
    const { generate, swaggerPath } = await import('../tools/k8s/schemas.mjs');
    const swagger = swaggerPath({ download: process.env.IWSD_REQUIRE_CONTAINERD === '1' });
    schemas = mkdtempSync(join(tmpdir(), 'iwsd-k8s-schemas-'));
    generate(schemas, swagger);
  } catch (err) {
    missing = (err as Error).message;
  }
}
function kubeTest(title: string, impl: (t: ExecutionContext) => void): void {
  if (!missing) test(title, impl);
  else if (process.env.IWSD_REQUIRE_CONTAINERD === '1') test(title, (t) => t.fail(`cannot run: ${missing}`));
  else test.skip(`${title} (${missing})`, impl);
}

test.after.always(() => {
  if (schemas) rmSync(schemas, { recursive: true, force: true });
});

interface Verdict {
  filename: string;
  kind: string;
  name: string;
  status: string;
  msg: string;
}
function kubeconform(files: string[]): { code: number; resources: Verdict[]; out: string } {
  const r = spawnSync(KUBECONFORM, ['-strict', '-output', 'json', '-schema-location', `${schemas}/{{ .ResourceKind }}{{ .KindSuffix }}.json`, ...files], { encoding: 'utf8', timeout: 60_000 });
  const out = `${r.stdout}${r.stderr}`;
  let resources: Verdict[] = [];
  try {
    resources = (JSON.parse(r.stdout) as { resources?: Verdict[] }).resources ?? [];
  } catch {
    /* reported below through out */
  }
  return { code: r.status ?? -1, resources, out };
}

const MANIFESTS = readdirSync(DIR)
  .filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml')
  .sort();

kubeTest('every manifest in contrib/kubernetes is valid against the strict v1.37.2 schemas', (t) => {
  t.deepEqual(MANIFESTS, ['configmap.yaml', 'daemonset.yaml', 'namespace.yaml', 'workspace-pod.yaml']);
  const r = kubeconform(MANIFESTS.map((f) => join(DIR, f)));
  t.is(r.code, 0, r.out);
  // -output json lists only what is not valid; -summary counts: ask for each file's verdict
  const verbose = spawnSync(KUBECONFORM, ['-strict', '-verbose', '-output', 'json', '-schema-location', `${schemas}/{{ .ResourceKind }}{{ .KindSuffix }}.json`, ...MANIFESTS.map((f) => join(DIR, f))], { encoding: 'utf8' });
  const all = (JSON.parse(verbose.stdout) as { resources: Verdict[] }).resources;
  t.deepEqual(
    all.map((v) => [v.kind, v.name, v.status]).sort(),
    [
      ['ConfigMap', 'iwsd-config', 'statusValid'],
      ['DaemonSet', 'iwsd', 'statusValid'],
      ['Namespace', 'iwsd-system', 'statusValid'],
      ['Pod', 'workspace-example', 'statusValid'],
    ],
  );
});

kubeTest('the validator rejects unknown fields, wrong types and wrong kinds (so passing means something)', (t) => {
  const tmp = mkdtempSync(join(tmpdir(), 'iwsd-k8s-bad-'));
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
  const ds = one('daemonset.yaml');
  const pod = one('workspace-pod.yaml');
  const cases: [string, Obj, RegExp][] = [
    ['unknown field in the pod spec', { ...ds, spec: { ...ds.spec, template: { ...ds.spec.template, spec: { ...ds.spec.template.spec, hostPIDD: true } } } }, /hostPIDD/],
    ['unknown field in a volume mount', (() => {
      const c = structuredClone(ds);
      c.spec.template.spec.containers[0].volumeMounts[0].propagation = 'Bidirectional';
      return c;
    })(), /propagation/],
    ['wrong type (hostPID a string)', (() => {
      const c = structuredClone(ds);
      c.spec.template.spec.hostPID = 'always';
      return c;
    })(), /hostPID/],
    ['wrong type (maxSurge a list)', (() => {
      const c = structuredClone(ds);
      c.spec.updateStrategy.rollingUpdate.maxSurge = [0];
      return c;
    })(), /maxSurge/],
    ['wrong apiVersion for the kind', { ...ds, apiVersion: 'extensions/v1beta1' }, /apiVersion|could not find schema/],
    ['unknown field at the top of a pod', { ...pod, status2: {} }, /status2/],
    ['annotation values must be strings', { ...pod, metadata: { ...pod.metadata, annotations: { 'iwsd.io/workspace': true } } }, /annotations/],
  ];
  for (const [what, obj, re] of cases) {
    const f = join(tmp, `${what.replace(/\W+/g, '-')}.yaml`);
    writeFileSync(f, stringify(obj));
    const r = kubeconform([f]);
    t.not(r.code, 0, `${what}: accepted\n${r.out}`);
    t.regex(r.out, re, what);
  }
});

test('the pieces agree: config, state dir, NRI socket, probes, rollout, image, annotations', (t) => {
  const ns = one('namespace.yaml');
  const cm = one('configmap.yaml');
  const ds = one('daemonset.yaml');
  const pod = one('workspace-pod.yaml');
  const kust = one('kustomization.yaml');

  // kustomize: the namespace, config and DaemonSet; the example pod is not deployed.
  t.deepEqual([...kust.resources].sort(), ['configmap.yaml', 'daemonset.yaml', 'namespace.yaml']);
  for (const r of kust.resources as string[]) t.true(existsSync(join(DIR, r)), r);
  t.is(cm.metadata.namespace, ns.metadata.name);
  t.is(ds.metadata.namespace, ns.metadata.name);

  // iwsd's own parser accepts the shipped config.json.
  const config = parseConfig(JSON.parse(cm.data['config.json'] as string), 'contrib/kubernetes/configmap.yaml');
  t.true(config.nri.enabled);

  const spec = ds.spec.template.spec as Obj;
  t.true(spec.hostPID, 'hostPID: NRI reports host pids');
  t.like(ds.spec.updateStrategy, { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1, maxSurge: 0 } });
  t.deepEqual(spec.containers.length, 1);
  const c = spec.containers[0] as Obj;
  t.true(c.securityContext.privileged);
  t.true(c.securityContext.readOnlyRootFilesystem);
  t.is(c.image, `localhost/iwsd:${pkg.version}`, 'the name scripts/image.mjs gives the image');
  t.deepEqual(c.args, ['serve', '--config', '/etc/iwsd/config.json']);

  const vol = (name: string) => (spec.volumes as Obj[]).find((v) => v.name === name)!;
  const mnt = (name: string) => (c.volumeMounts as Obj[]).find((m) => m.name === name)!;
  // The state dir: same path inside and on the node (containerd binds the path iwsd names), Bidirectional.
  t.is(mnt('state').mountPath, config.stateDir);
  t.is(vol('state').hostPath.path, config.stateDir);
  t.is(mnt('state').mountPropagation, 'Bidirectional');
  // The NRI socket's directory (a restarted containerd's new socket shows through it).
  t.is(mnt('nri').mountPath, dirname(config.nri.socket));
  t.like(vol('nri'), { hostPath: { type: 'Directory' } });
  // config.json comes from the ConfigMap.
  t.is(vol('config').configMap.name, cm.metadata.name);
  t.is(mnt('config').mountPath, '/etc/iwsd');
  t.true(mnt('config').readOnly);

  // Health of the admin socket, through grpc-health-probe (in the image).
  for (const p of ['startupProbe', 'readinessProbe', 'livenessProbe']) {
    const cmd = c[p].exec.command as string[];
    t.is(cmd[0], '/usr/local/bin/grpc-health-probe', p);
    t.true(cmd.includes(`-addr=unix://${config.stateDir}/admin.sock`), `${p}: ${cmd.join(' ')}`);
  }
  t.truthy(c.resources.requests.cpu);
  t.truthy(c.resources.limits.memory);
  t.is(c.resources.limits.cpu, undefined, 'no CPU limit: throttling misses NRI request timeouts');
  t.deepEqual(spec.tolerations, [{ operator: 'Exists' }]);

  // Fail-closed only for workspaces: the annotation on workspace pods, never on iwsd's own pod.
  const key = 'required-plugins.noderesource.dev/pod';
  t.is(ds.spec.template.metadata.annotations?.[key], undefined);
  t.is(pod.metadata.annotations['iwsd.io/workspace'], 'true');
  t.deepEqual(JSON.parse(pod.metadata.annotations[key] as string), [config.nri.pluginName]);
});
