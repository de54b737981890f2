/**
 * Root-only tests: run as root; skip visibly otherwise; fail instead of
 * skipping when IWSD_REQUIRE_ROOT=1 (CI sets it: a skipped test is no pass).
 */
import test, { type ExecutionContext } from 'ava';

export const isRoot = process.getuid?.() === 0;
export const requireRoot = process.env.IWSD_REQUIRE_ROOT === '1';

type Impl = (t: ExecutionContext) => Promise<void> | void;

export function rootTest(title: string, impl: Impl): void {
  if (isRoot) test(title, impl);
  else if (requireRoot) test(title, (t) => t.fail('needs root, and IWSD_REQUIRE_ROOT=1 forbids skipping it'));
  else test.skip(`${title} (needs root)`, impl);
}

export function rootTestSerial(title: string, impl: Impl): void {
  if (isRoot) test.serial(title, impl);
  else if (requireRoot) test.serial(title, (t) => t.fail('needs root, and IWSD_REQUIRE_ROOT=1 forbids skipping it'));
  else test.skip(`${title} (needs root)`, impl);
}
