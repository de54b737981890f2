/** Stopping what a test started: a child process, and every process and mount left over from a test's temp dir. */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** SIGTERM `p` and wait until it exits; SIGKILL when it is still running after `graceMs`. */
export async function terminate(p: ChildProcess, graceMs = 10_000): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise((r) => p.once('exit', r));
  p.kill('SIGTERM');
  const t = setTimeout(() => p.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(t);
}

/** Every process (but this one) whose command line (NUL-separated) passes `pred`. */
export function processes(pred: (cmd: string) => boolean): { pid: number; cmd: string }[] {
  const found: { pid: number; cmd: string }[] = [];
  for (const d of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8');
      if (Number(d) !== process.pid && pred(cmd)) found.push({ pid: Number(d), cmd });
    } catch {
      /* gone */
    }
  }
  return found;
}

/**
 * SIGKILLs every process (but this one) whose command line contains
 * `marker` (a test's private temp dir); returns what it killed as
 * "<pid> <program>".
 */
export function killByCommandLine(marker: string): string[] {
  const killed: string[] = [];
  for (const { pid, cmd } of processes((c) => c.includes(marker))) {
    try {
      process.kill(pid, 'SIGKILL');
      killed.push(`${pid} ${cmd.split('\0')[0]}`);
    } catch {
      /* gone */
    }
  }
  return killed;
}

/** Lazily unmounts every mount at or under `dir` in this mount namespace, innermost first. */
export function unmountUnder(dir: string): void {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((m): m is string => !!m && m.startsWith(dir))
    .reverse();
  for (const m of mounts) spawnSync('umount', ['-l', m]);
}
