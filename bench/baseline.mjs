// The exec-helper baseline, run by bench/run.ts inside a private mount
// namespace of its own (`unshare --mount --propagation private`), standing in
// for the old daemon's mount namespace: its staging mounts never reach the host.
// Usage: node bench/baseline.mjs <helper> <container-init-host-pid> <rounds> <warmup> <target>
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [helper, pid, rounds, warmup, target] = process.argv.slice(2);
const MASKED = 'acpi,asound,interrupts,kcore,keys,latency_stats,sched_debug,scsi,timer_list,timer_stats';
const READONLY = 'bus,fs,irq,sys,sysrq-trigger';
const step = (...args) => execFileSync(helper, args, { stdio: ['ignore', 'ignore', 'inherit'] });

const mount = [];
const umount = [];
for (let i = 0; i < Number(warmup) + Number(rounds); i++) {
  const t0 = process.hrtime.bigint();
  const staging = mkdtempSync(join(tmpdir(), 'iwsd-baseline-'));
  step('mount-proc', pid, staging);
  step('mask', staging, MASKED, READONLY);
  step('move', staging, pid, target);
  step('umount', staging);
  rmdirSync(staging);
  const t1 = process.hrtime.bigint();
  step('umount-in', pid, target);
  const t2 = process.hrtime.bigint();
  if (i >= Number(warmup)) {
    mount.push(Number(t1 - t0) / 1e6);
    umount.push(Number(t2 - t1) / 1e6);
  }
}
process.stdout.write(JSON.stringify({ MountProc: mount, UmountProc: umount }));
