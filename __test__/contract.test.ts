/**
 * proto/workspace_daemon.proto must stay wire-compatible with the contract:
 * same package, services, methods, messages, fields (name, number, type,
 * label) and enum values. Additions are allowed, changes not.
 *
 * The contract is kept in the repository, byte for byte as it was handed to
 * us, in __test__/fixtures/contract/ (its SHA-256 is pinned below so that an
 * edit to the copy is a deliberate, visible change), so the suite needs
 * nothing outside the repository.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import * as protoLoader from '@grpc/proto-loader';
import test from 'ava';

const ours = fileURLToPath(new URL('../proto/workspace_daemon.proto', import.meta.url));
const contract = fileURLToPath(new URL('./fixtures/contract/workspace_daemon.proto', import.meta.url));
const CONTRACT_SHA256 = '018668cfc8333f1b527cf1bd4354c22886032e211210f2b2f37ef0f6d8387e4c';

interface Field {
  name: string;
  number: number;
  type: string;
  typeName?: string;
  label: string;
}

interface Enum {
  value: { name: string; number: number }[];
}

interface Message {
  field: Field[];
  nestedType?: (Message & { name: string })[];
  enumType?: (Enum & { name: string })[];
}

function addEnum(out: Map<string, unknown>, name: string, e: Enum): void {
  out.set(`enum ${name}`, e.value.map((x) => `${x.number}:${x.name}`).sort());
}

/** A message's fields, and those of its nested messages and enums (e.g. WriteIDMappingRequest.Mapping). */
function addMessage(out: Map<string, unknown>, name: string, m: Message): void {
  out.set(`message ${name}`, m.field.map((f) => `${f.number}:${f.name}:${f.label}:${f.type}:${f.typeName ?? ''}`).sort());
  for (const n of m.nestedType ?? []) addMessage(out, `${name}.${n.name}`, n);
  for (const e of m.enumType ?? []) addEnum(out, `${name}.${e.name}`, e);
}

function shape(file: string): Map<string, unknown> {
  const def = protoLoader.loadSync(file, { keepCase: true });
  const out = new Map<string, unknown>();
  for (const [name, v] of Object.entries(def)) {
    const anyV = v as unknown as Record<string, unknown>;
    if ('format' in anyV && anyV.format === 'Protocol Buffer 3 DescriptorProto') {
      addMessage(out, name, anyV.type as Message);
    } else if ('format' in anyV && anyV.format === 'Protocol Buffer 3 EnumDescriptorProto') {
      addEnum(out, name, anyV.type as Enum);
    } else {
      for (const [m, md] of Object.entries(anyV as Record<string, protoLoader.MethodDefinition<unknown, unknown>>)) {
        out.set(`rpc ${name}.${m}`, [md.path, md.requestStream, md.responseStream]);
      }
    }
  }
  return out;
}

/**
 * Whether `got` (ours) keeps `want` (the contract's) for one key: enums and
 * messages may only gain values and fields; RPCs must be identical.
 */
function keeps(key: string, want: unknown, got: unknown): boolean {
  if (key.startsWith('enum ') || key.startsWith('message ')) return Array.isArray(got) && (want as string[]).every((v) => (got as string[]).includes(v));
  return JSON.stringify(got) === JSON.stringify(want);
}

test('the golden copy of the contract is the one we were given', (t) => {
  t.is(createHash('sha256').update(readFileSync(contract)).digest('hex'), CONTRACT_SHA256);
});

test('our proto is wire-compatible with the contract', (t) => {
  const a = shape(contract);
  const b = shape(ours);
  t.true(a.size > 10);
  for (const [key, want] of a) {
    const got = b.get(key);
    if (!keeps(key, want, got)) t.deepEqual(got, want, `${key} changed (only additions are compatible)`);
    else t.pass();
  }
});

test('the check catches an incompatible change (renumbered field, lost enum value, changed type)', (t) => {
  const a = shape(contract);
  const broken = (edit: (text: string) => string) => {
    const dir = mkdtempSync(join(tmpdir(), 'iwsd-contract-'));
    try {
      const f = join(dir, 'workspace_daemon.proto');
      writeFileSync(f, edit(readFileSync(ours, 'utf8')));
      const b = shape(f);
      return [...a].some(([key, want]) => !keeps(key, want, b.get(key)));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  t.false(broken((s) => s), 'unchanged: compatible');
  t.true(broken((s) => s.replace('uint32 host_id = 2;', 'uint32 host_id = 4;')));
  t.true(broken((s) => s.replace('FUSE = 1;', '')));
  t.true(broken((s) => s.replace('int64 pid = 1;', 'int32 pid = 1;')));
  t.true(broken((s) => s.replace('bool full_workspace_backup = 2;', '')), 'a removed field');
  t.true(broken((s) => s.replace('rpc Teardown(TeardownRequest) returns (TeardownResponse) {}', '')), 'a removed RPC');
  t.false(broken((s) => s.replace('message MountProcResponse {}', 'message MountProcResponse {\n  string note = 1;\n}')), 'an added field');
});
