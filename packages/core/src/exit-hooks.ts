/**
 * Instances open in this thread, so that a process (or worker) exiting without close() frees
 * its slots — and, if it exits holding the lock, leaves it the way a death would (ownerDied).
 * `worker.terminate()` and SIGKILL run no exit handlers: those owners are reaped instead.
 */

/** What the exit hook does with each instance still open. */
export interface Abandonable {
  /** Leave the lock as a death would, but at once (see `BakeryMutex.abandon`). */
  abandon(): void;
}

const open = new Set<Abandonable>();
let hooked = false;

export function trackOpen(m: Abandonable): void {
  open.add(m);
  if (hooked) return;
  const proc = (globalThis as { process?: { once?(event: string, fn: () => void): unknown } })
    .process;
  if (typeof proc?.once !== 'function') return;
  hooked = true;
  proc.once('exit', () => {
    for (const m of open) {
      try {
        m.abandon();
      } catch {
        // best effort at exit: the survivors' reapers handle whatever is left
      }
    }
  });
}

export function untrackOpen(m: Abandonable): void {
  open.delete(m);
}
