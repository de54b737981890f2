#!/usr/bin/env node
/**
 * Strict JSON schemas for kubeconform, generated offline from the OpenAPI
 * (swagger 2) document inside the k8s.io/kubernetes module this directory's
 * go.mod pins (api/openapi-spec/swagger.json in the module cache; `go mod
 * download` fetches it once from the Go module proxy).
 *
 * One file per kind, named as kubeconform's -schema-location template
 * `{{ .ResourceKind }}{{ .KindSuffix }}.json` expects (daemonset-apps-v1.json,
 * pod-v1.json), each with the definitions it references. Strict: every object
 * with declared properties rejects others (additionalProperties: false),
 * apiVersion and kind are the kind's only, IntOrString is a string or an
 * integer, Quantity a string or a number (as the API server decodes them).
 *
 *   node tools/k8s/schemas.mjs OUT_DIR [SWAGGER_JSON]
 *
 * Prints {"kinds": N, "dir": OUT_DIR, "swagger": PATH}.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
export const K8S_VERSION = 'v1.37.2';

/** Where swagger.json of k8s.io/kubernetes@K8S_VERSION is, downloading the module when allowed. */
export function swaggerPath({ download = true } = {}) {
  const go = process.env.GO || (existsSync('/usr/local/go/bin/go') ? '/usr/local/go/bin/go' : 'go');
  const env = spawnSync(go, ['env', 'GOMODCACHE'], { encoding: 'utf8', cwd: HERE });
  if (env.status !== 0) throw new Error(`no Go toolchain (${go} env GOMODCACHE failed): install Go or pass the swagger.json path`);
  const p = join(env.stdout.trim(), `k8s.io/kubernetes@${K8S_VERSION}`, 'api/openapi-spec/swagger.json');
  if (!existsSync(p) && download) {
    const d = spawnSync(go, ['mod', 'download', `k8s.io/kubernetes@${K8S_VERSION}`], { encoding: 'utf8', cwd: HERE });
    if (d.status !== 0) throw new Error(`go mod download k8s.io/kubernetes@${K8S_VERSION}: ${d.stderr.trim()}`);
  }
  if (!existsSync(p)) throw new Error(`${p} missing: run (cd tools/k8s && go mod download k8s.io/kubernetes@${K8S_VERSION})`);
  return p;
}

const INT_OR_STRING = { oneOf: [{ type: 'string' }, { type: 'integer' }] };
const QUANTITY = { oneOf: [{ type: 'string' }, { type: 'number' }] };

function strict(node) {
  if (Array.isArray(node)) return node.map(strict);
  if (!node || typeof node !== 'object') return node;
  if (node.format === 'int-or-string') return { description: node.description, ...INT_OR_STRING };
  const out = {};
  for (const [k, v] of Object.entries(node)) {
    if (k.startsWith('x-kubernetes-') && k !== 'x-kubernetes-group-version-kind') continue;
    out[k] = k === 'properties' ? Object.fromEntries(Object.entries(v).map(([p, s]) => [p, strict(s)])) : strict(v);
  }
  if (out.properties && out.additionalProperties === undefined) out.additionalProperties = false;
  return out;
}

function refs(node, acc) {
  if (Array.isArray(node)) node.forEach((n) => refs(n, acc));
  else if (node && typeof node === 'object') {
    for (const [k, v] of Object.entries(node)) {
      if (k === '$ref' && typeof v === 'string') acc.add(v.replace('#/definitions/', ''));
      else refs(v, acc);
    }
  }
  return acc;
}

/** Writes the schemas; returns how many kinds. */
export function generate(outDir, swagger = swaggerPath()) {
  const defs = JSON.parse(readFileSync(swagger, 'utf8')).definitions;
  const sdefs = {};
  for (const [name, d] of Object.entries(defs)) {
    if (name === 'io.k8s.apimachinery.pkg.util.intstr.IntOrString') sdefs[name] = { description: d.description, ...INT_OR_STRING };
    else if (name === 'io.k8s.apimachinery.pkg.api.resource.Quantity') sdefs[name] = { description: d.description, ...QUANTITY };
    else sdefs[name] = strict(d);
  }
  mkdirSync(outDir, { recursive: true });
  let kinds = 0;
  for (const [name, d] of Object.entries(sdefs)) {
    const gvks = d['x-kubernetes-group-version-kind'];
    if (!Array.isArray(gvks) || !d.properties?.kind) continue;
    // closure of the definitions this kind uses
    const need = new Set();
    const todo = [...refs(d, new Set())];
    while (todo.length) {
      const r = todo.pop();
      if (need.has(r)) continue;
      need.add(r);
      todo.push(...refs(sdefs[r], new Set()));
    }
    const definitions = Object.fromEntries([...need].sort().map((r) => [r, sdefs[r]]));
    for (const { group, version, kind } of gvks) {
      const apiVersion = group ? `${group}/${version}` : version;
      const schema = {
        $schema: 'http://json-schema.org/draft-07/schema#',
        $id: `iwsd-k8s-${K8S_VERSION}/${name}`,
        ...d,
        properties: { ...d.properties, apiVersion: { type: 'string', enum: [apiVersion] }, kind: { type: 'string', enum: [kind] } },
        required: [...new Set([...(d.required ?? []), 'apiVersion', 'kind'])],
        definitions,
      };
      delete schema['x-kubernetes-group-version-kind'];
      const suffix = group ? `-${group.split('.')[0]}-${version}` : `-${version}`;
      writeFileSync(join(outDir, `${kind.toLowerCase()}${suffix}.json`), JSON.stringify(schema));
      kinds++;
    }
  }
  return kinds;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [out, sw] = process.argv.slice(2);
  if (!out) {
    process.stderr.write('usage: node tools/k8s/schemas.mjs OUT_DIR [SWAGGER_JSON]\n');
    process.exit(2);
  }
  const swagger = sw ?? swaggerPath();
  const kinds = generate(out, swagger);
  process.stdout.write(`${JSON.stringify({ kinds, dir: out, swagger })}\n`);
}
