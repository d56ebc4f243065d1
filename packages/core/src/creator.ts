import type { MutexOptions } from './api.js';

/**
 * The options a backend's `createMutex` opens the creator's own instance with: the caller's,
 * with {@link MutexOptions.claim} defaulting to `'lock'` rather than `'open'`. A creator
 * usually sets the lock up and hands it to others (children, cluster workers, worker threads),
 * and often never locks itself; claimed lazily, its instance holds a slot only from its first
 * lock on, so a lock of N slots fits N other participants. An explicit `claim` is kept
 * (`claim: 'open'` claims at create, as before). Every backend's `createMutex` uses this, so the
 * creator's default is the same everywhere; a backend's `slots` documentation states the rule.
 *
 * @example
 * ```ts
 * import { cellsFor, creatorOptions, initLayout, openOn } from '@bakery/core';
 *
 * export function createMutex({ slots, ...options }) {
 *   const cells = makeCells(cellsFor(slots));
 *   initLayout(cells, slots);
 *   return openOn({ cells }, creatorOptions(options)); // no slot until its first lock
 * }
 * ```
 */
export function creatorOptions<T extends MutexOptions>(options: T): T {
  return { ...options, claim: options.claim ?? 'lock' };
}
