/** The error boundary: stable codes map 1:1 to gRPC statuses; internals never leak. */
import { status } from '@grpc/grpc-js';
import test from 'ava';

import { readFileSync } from 'node:fs';

import { ERROR_CODES, IwsError, toIwsError } from '../src/errors.js';
import { openContainer, resolveMountStrategy, resolvePidStrategy, validateIdPolicy } from '../src/native.js';
import { TestContainer, makeRootfs } from './helpers/container.js';
import { rootTest } from './helpers/root.js';

test('every error code maps to the gRPC status of the same name', (t) => {
  for (const code of ERROR_CODES) {
    t.is(new IwsError(code, 'x').grpcStatus, status[code]);
  }
});

test('native errors keep their code and message; INTERNAL and unknown errors are made generic', (t) => {
  const nativeErr = Object.assign(new Error('pid 7 is out of range'), { code: 'INVALID_ARGUMENT' });
  const e = toIwsError(nativeErr);
  t.is(e.code, 'INVALID_ARGUMENT');
  t.is(e.message, 'pid 7 is out of range');

  const internal = toIwsError(Object.assign(new Error('internal error'), { code: 'INTERNAL', detail: 'openat(/proc/1/x): EIO' }));
  t.is(internal.code, 'INTERNAL');
  t.notRegex(internal.message, /\/proc/);
  t.is(internal.detail, 'openat(/proc/1/x): EIO');

  const unknown = toIwsError(new TypeError('Cannot read properties of undefined (reading /etc/shadow)'));
  t.is(unknown.code, 'INTERNAL');
  t.notRegex(unknown.message, /shadow/);
  t.regex(unknown.detail ?? '', /shadow/);

  const weird = toIwsError(Object.assign(new Error('x'), { code: 'ENOENT' }));
  t.is(weird.code, 'INTERNAL', 'only known codes pass through');
});

test('the native library rejects with the core code (no root needed)', (t) => {
  const e = t.throws(() => validateIdPolicy({ rootRange: { start: 0, size: 1 }, userRanges: [] }), { instanceOf: IwsError });
  t.is(e?.code, 'INVALID_ARGUMENT');
  t.regex(e?.message ?? '', /host id 0/);
});

test('structured reasons and errnos cross the boundary; control flow matches them, not messages', (t) => {
  const nativeErr = Object.assign(new Error('pid is in the host mount namespace'), {
    code: 'PERMISSION_DENIED',
    reason: 'HostMountNamespace',
  });
  const e = toIwsError(nativeErr);
  t.is(e.reason, 'HostMountNamespace');
  const internal = toIwsError(Object.assign(new Error('x'), { code: 'INTERNAL', detail: 'openat: EIO', errno: 5 }));
  t.is(internal.errno, 5);
  t.is(internal.reason, undefined);
});

rootTest('a container whose start time cannot be read is an error the caller sees, never a stand-in identity', async (t) => {
  const fs = makeRootfs();
  t.teardown(fs.cleanup);
  const c = await TestContainer.startFor(t, { rootfs: fs.rootfs });
  const handle = await openContainer(c.initHostPid);
  t.teardown(() => handle.close());
  // The start time is /proc/<pid>/stat field 22 (the fields after the command name, from its third).
  const stat = readFileSync(`/proc/${c.initHostPid}/stat`, 'utf8');
  t.is(handle.startTime, Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]));
  await c.stop();
  for (let i = 0; i < 200 && handle.isAlive(); i++) await new Promise((r) => setTimeout(r, 10));
  t.false(handle.isAlive());
  const gone = t.throws(() => handle.startTime);
  t.is(toIwsError(gone).code, 'NOT_FOUND', 'the init exited: its start time is gone, not 0');
  handle.close();
  t.throws(() => handle.startTime, { message: /container handle is closed; open the container again/ });
});

test('a string outside a binding union (untyped JS callers of iwsd/native) is INVALID_ARGUMENT naming the type and its values', async (t) => {
  for (const [type, resolve] of Object.entries({ PidStrategy: resolvePidStrategy, MountStrategy: resolveMountStrategy })) {
    // As a JavaScript caller would: past the types.
    const e = await t.throwsAsync(Promise.resolve(Reflect.apply(resolve, undefined, ['fast'])), { instanceOf: IwsError });
    t.is(e?.code, 'INVALID_ARGUMENT');
    t.regex(e?.message ?? '', new RegExp(`^unknown ${type} "fast"; use one of auto, `));
  }
});
