import type { Mutex, MutexOptions, Snapshot } from '@bakery/core';

/** Scratch cells (the data the lock protects, plus control flags). */
export const SCRATCH = {
  /** The shared counter every participant increments with a non-atomic read–yield–write. */
  COUNTER: 0,
  /** Occupancy: +1 on entry (must have been 0), −1 on exit. */
  OCCUPANCY: 1,
  /** Set by a `hold` participant once it holds the lock. */
  HELD: 2,
  /** Set by the test to tell a `hold` participant to release. */
  RELEASE: 3,
  /** Participant `id` sets `DONE + id` when it finished the phase the test waits for. */
  DONE: 16,
  /** Number of cells (participant ids must stay below CELLS − DONE). */
  CELLS: 1024,
} as const;

/** The scripted workloads a participant can run. */
export type Workload =
  /**
   * `iterations` × (lock, occupancy check, read–yield–write the counter, unlock). `try` takes
   * the lock with tryLock and falls back to lockSync when it fails; `mixed` rotates all three.
   */
  | { kind: 'count'; iterations: number; mode: 'sync' | 'async' | 'mixed' | 'try' }
  /** Like count (sync), also recording doorway and entry timestamps for the FIFO check. */
  | { kind: 'fifo'; iterations: number }
  /** Acquire, set HELD, wait for RELEASE, release. */
  | { kind: 'hold' }
  /**
   * While someone else holds the lock: `tries` × tryLock (must fail), `timeouts` × lock attempts
   * that time out (sync with timeout 0, async with timeout 1 ms), then set DONE + id and take
   * the lock once for real.
   */
  | { kind: 'storm'; tries: number; timeouts: number };

/** What each participant reports back. */
export interface Report {
  id: number;
  /** Acquisitions completed. */
  acquired: number;
  /** Times the occupancy check found someone else inside. */
  violations: number;
  /** tryLock calls that unexpectedly succeeded during a storm. */
  unexpected: number;
  /** Error messages (code: message) of anything that went wrong. */
  errors: string[];
  /** For `fifo`: per acquisition [doorwayStart, doorwayEnd, enter] as monotonic-ns strings. */
  records?: [string, string, string][];
}

/** A fresh lock created by a backend factory, plus the means to run participants on it. */
export interface Fixture {
  /** Open another participant of this lock inside the test process (own slot). */
  open(options?: MutexOptions): Mutex;
  /** Start `count` participants (threads or processes) running `workload`; resolves with their reports. */
  run(count: number, workload: Workload): Promise<Report[]>;
  /** Read a scratch cell (control flags, counter). */
  scratchGet(i: number): number;
  /** Write a scratch cell. */
  scratchSet(i: number, value: number): void;
  /** A copy of the lock's raw bytes, to prove that a failed call changed nothing. */
  bytes(): Uint8Array;
  /** Overwrite one raw 32-bit cell of the lock (to build bad layouts). */
  poke(cell: number, value: number): void;
  /** A snapshot of the shared state, independent of any participant. */
  inspect(): Snapshot;
  /** Release every resource (files, fds, threads). */
  dispose(): Promise<void>;
}

/** What a backend hands to {@link suite}. */
export interface ConformanceFactory {
  /** Shown in test names. */
  name: string;
  /** How participants run; shown in test names. */
  participants: 'threads' | 'processes';
  /** Participants for the mutual-exclusion and FIFO cases (≥ 8; ≥ 16 for process backends). */
  concurrency: number;
  /** Iterations per participant for the mutual-exclusion cases. */
  iterations: number;
  /**
   * Capabilities the backend lacks; each skips only the cases it rules out, with this reason.
   * (No current backend lacks any; the hook exists for future ones.)
   */
  lacks?: Partial<Record<'fifo' | 'storm', string>>;
  /** Create a fresh lock with `slots` slots. */
  create(slots: number): Promise<Fixture>;
}
