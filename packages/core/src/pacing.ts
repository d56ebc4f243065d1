/**
 * How long a waiter that polls sleeps (a backend with no cross-process wake: shm, or the
 * reference memory). Pure functions, so the policy can be read and tested on its own; the
 * mutex feeds them what the scan measured (`Acquirer.ahead`, `countAtBlock`) and the lock's
 * ACQUISITIONS count. Only how long a waiter sleeps depends on them, never whether it enters:
 * after every sleep the scan re-checks the real condition.
 */

/** The shortest sleep (ms). */
export const MIN_SLEEP_MS = 0.02;

/**
 * The time per acquisition, updated with a new sample (ms per acquisition over the last
 * poll interval). Falls at once, rises by an eighth of the gap: an estimate inflated by a
 * stall (a waiter that overslept its turn) would make every waiter oversleep and keep the
 * stall going, while one that is too low only costs a few more polls.
 */
export function nextHandoffEstimate(current: number, sample: number): number {
  return current === 0 || sample < current ? sample : current + (sample - current) / 8;
}

/**
 * The sleep of a waiter with `left` acquisitions to go before it can enter (> 1: it is not
 * next yet), given `handoffMs` per acquisition: 90% of the expected time, but never past
 * the moment it becomes next (`left - 1` acquisitions), so that the entry before its own never
 * waits for its sleep. At most `maxMs`.
 */
export function farSleepMs(left: number, handoffMs: number, maxMs: number): number {
  const ms = Math.min(0.9 * left, left - 1) * handoffMs;
  return Math.min(Math.max(ms, MIN_SLEEP_MS), maxMs);
}

/**
 * The largest interval between polls of the waiter that is next: half the time per
 * acquisition once known (at least `minMs`, at most `maxMs`). Without this cap the backoff is
 * bistable: a slow handoff lets the next waiter's backoff grow, which keeps the handoff slow.
 */
export function nextPollCap(handoffMs: number, minMs: number, maxMs: number): number {
  return handoffMs > 0 ? Math.min(maxMs, Math.max(minMs, handoffMs / 2)) : maxMs;
}
