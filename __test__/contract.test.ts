/**
 * proto/workspace_daemon.proto must stay wire-compatible with the contract in
 * ../shared/contract: same package, services, methods, messages, fields (name,
 * number, type, label) and enum values. Additions are allowed, changes not.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import * as protoLoader from '@grpc/proto-loader';
import test from 'ava';

const ours = fileURLToPath(new URL('../proto/workspace_daemon.proto', import.meta.url));
const contract = fileURLToPath(new URL('../../shared/contract/workspace_daemon.proto', import.meta.url));

interface Field {
  name: string;
  number: number;
  type: string;
  typeName?: string;
  label: string;
}

function shape(file: string): Map<string, unknown> {
  const def = protoLoader.loadSync(file, { keepCase: true });
  const out = new Map<string, unknown>();
  for (const [name, v] of Object.entries(def)) {
    const anyV = v as unknown as Record<string, unknown>;
    if ('format' in anyV && anyV.format === 'Protocol Buffer 3 DescriptorProto') {
      const t = anyV.type as { field: Field[] };
      out.set(`message ${name}`, t.field.map((f) => `${f.number}:${f.name}:${f.label}:${f.type}:${f.typeName ?? ''}`).sort());
    } else if ('format' in anyV && anyV.format === 'Protocol Buffer 3 EnumDescriptorProto') {
      const t = anyV.type as { value: { name: string; number: number }[] };
      out.set(`enum ${name}`, t.value.map((x) => `${x.number}:${x.name}`).sort());
    } else {
      for (const [m, md] of Object.entries(anyV as Record<string, protoLoader.MethodDefinition<unknown, unknown>>)) {
        out.set(`rpc ${name}.${m}`, [md.path, md.requestStream, md.responseStream]);
      }
    }
  }
  return out;
}

test('our proto is wire-compatible with the shared contract', (t) => {
  t.true(existsSync(contract), `the contract must be beside the repo at ${contract}`);
  const a = shape(contract);
  const b = shape(ours);
  t.true(a.size > 10);
  for (const [key, want] of a) {
    const got = b.get(key);
    if (Array.isArray(want) && key.startsWith('enum ')) {
      // enums may only gain values
      for (const v of want as string[]) t.true((got as string[]).includes(v), `${key} lost ${v}`);
    } else {
      t.deepEqual(got, want, key);
    }
  }
});
