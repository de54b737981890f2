/** Structured JSON logs (pino). One logger per daemon; children per workspace. */
import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

/** Every child of a root logger, so that a new level reaches them all. */
const families = new WeakMap<Logger, Set<WeakRef<Logger>>>();

export function createLogger(level: string, destination?: DestinationStream): Logger {
  const children = new Set<WeakRef<Logger>>();
  const root = pino(
    {
      name: 'iwsd',
      level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      // Inherited by children, so grandchildren are tracked too.
      onChild: (child) => {
        children.add(new WeakRef(child));
      },
    },
    destination ?? pino.destination({ fd: 1, sync: false }),
  );
  families.set(root, children);
  return root;
}

/**
 * Sets the level of `root` and of every child made from it (pino children
 * copy their parent's level when made and do not follow later changes).
 */
export function setLevel(root: Logger, level: string): void {
  root.level = level;
  const children = families.get(root);
  if (!children) return;
  for (const ref of children) {
    const child = ref.deref();
    if (child) child.level = level;
    else children.delete(ref);
  }
}
