import type { AsyncMutex, Mutex, MutexOptions, Snapshot } from '@bakery/core';

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
  /** Fault workload: the test sets it to end the loops. */
  STOP: 4,
  /** Fault workload data: A += 1 (read–yield–write), B -= 1, COMMITS += 1, CNT + id += 1. */
  A: 5,
  B: 6,
  COMMITS: 7,
  /** 1 while a transaction is half done; the undo log below then holds the values before it. */
  PENDING: 8,
  UNDO_A: 9,
  UNDO_B: 10,
  UNDO_COMMITS: 11,
  /** Whose CNT cell the pending transaction changes, and its value before. */
  UNDO_ID: 12,
  UNDO_CNT: 13,
  /** Repairs done after `lease.ownerDied` (counted inside the lock, never undone). */
  REPAIRS: 14,
  /** Entries that found the occupancy flag set while the lock said nobody had died. */
  FAULT_VIOLATIONS: 15,
  /** Completed transactions, for the test's stall measurement (never undone). */
  PROGRESS: 1023,
  /** When the last repair after ownerDied began: {@link clockMs} of the repairer. */
  REPAIRED_AT: 1022,
  /** When the last acquirer entered: {@link clockMs}. */
  ENTERED_AT: 1021,
  /** Per participant: transactions it committed. */
  CNT: 512,
  /** Per participant: where it last said it was, see {@link PHASE}. */
  PHASE_OF: 768,
  /** Number of cells (participant ids must stay below 255 for the fault workload). */
  CELLS: 1024,
} as const;

/**
 * CLOCK_MONOTONIC in milliseconds modulo 2^31: the same clock in every process and thread, so
 * participants can stamp events that the test process compares with its own reading.
 */
export function clockMs(): number {
  return Number((process.hrtime.bigint() / 1_000_000n) % 2_147_483_648n);
}

/** Values of `SCRATCH.PHASE_OF + id` in the fault workload. */
export const PHASE = {
  STARTING: 1,
  DOORWAY: 2,
  WAITING: 3,
  HOLDING: 4,
  OUTSIDE: 5,
} as const;

/** The scripted workloads a participant can run. */
export type Workload =
  /**
   * `iterations` × (lock, occupancy check, read–yield–write the counter, unlock). `try` takes
   * the lock with tryLock and falls back to lockSync when it fails; `mixed` rotates all three.
   */
  | {
      kind: 'count';
      iterations: number;
      /** `async-try`: `await tryLock()`, else `await lock()` — the asynchronous subset only. */
      mode: 'sync' | 'async' | 'mixed' | 'try' | 'async-try';
    }
  /** Like count (sync), also recording doorway and entry timestamps for the FIFO check. */
  | { kind: 'fifo'; iterations: number }
  /** Acquire, set HELD, wait for RELEASE, release. */
  | { kind: 'hold' }
  /**
   * Acquire and release once (under `handoff: 'batched'` the release keeps the ticket), set
   * HELD, wait for RELEASE — quiet, never locking again — then close.
   */
  | { kind: 'retain' }
  /**
   * While someone else holds the lock: `tries` × tryLock (must fail), `timeouts` × lock attempts
   * that time out (sync with timeout 0, async with timeout 1 ms), then set DONE + id and take
   * the lock once for real.
   */
  | {
      kind: 'storm';
      tries: number;
      timeouts: number;
      /** Only the asynchronous subset: awaited tryLock, lock with 1–4 ms timeouts. */
      async?: boolean;
    }
  /**
   * Until STOP is set: lock (alternating lockSync and lock), then a transaction with an undo
   * log — save the old values, PENDING = 1, A += 1 (read–yield–write), B -= 1, COMMITS += 1,
   * CNT + id += 1, PENDING = 0 — and unlock. An acquirer that sees `lease.ownerDied` rolls a
   * pending transaction back from the undo log, clears the occupancy flag and calls
   * `markConsistent()`. Reports its phase in PHASE_OF + id (doorway via the trace hooks).
   * `holdMs`: the longest random pause inside the critical section.
   */
  | {
      kind: 'fault';
      holdMs: number;
      /** Only the asynchronous subset: every acquisition with `await lock()`. */
      async?: boolean;
    }
  /**
   * Open the lock, take it if `holding`, then end WITHOUT close(): `'natural'` lets the event
   * loop run dry (report first), `'process.exit'` calls process.exit(0) (no report).
   */
  | { kind: 'exit'; holding: boolean; how: 'natural' | 'process.exit' }
  /**
   * Take the lock, set HELD, wait for RELEASE, then SIGKILL itself while holding (processes
   * only): the test can be blocked in lockSync by then, so the dead child stays a zombie.
   */
  | { kind: 'die-holding' };

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
  /** For `fault`: repairs after ownerDied. */
  repairs?: number;
  /**
   * For `fifo`: per acquisition [doorwayStart, doorwayEnd, enter, exit] as monotonic-ns strings
   * (enter and exit stamped inside the critical section). The doorway stamps are `''` for an
   * acquisition without a doorway (a batched re-entry on a retained ticket).
   */
  records?: [string, string, string, string][];
}

/** A fresh lock created by a backend factory, plus the means to run participants on it. */
export interface Fixture {
  /** Open another participant of this lock inside the test process (own slot). */
  open(options?: MutexOptions): Mutex;
  /**
   * Start `count` participants (threads or processes) running `workload`, each opening the lock
   * with `options` (merged over the fixture's); resolves with their reports.
   */
  run(count: number, workload: Workload, options?: MutexOptions): Promise<Report[]>;
  /**
   * Start `count` participants (ids 0..count-1) running `workload` with `options`, and keep
   * control of them: kill one abruptly, start it again under the same id, await exits.
   */
  start(count: number, workload: Workload, options?: MutexOptions): Crew;
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

/** How one incarnation of a participant ended. */
export interface Exit {
  id: number;
  /** Its report, when it sent one. */
  report: Report | undefined;
  /** Exit code (processes and threads), null when killed by a signal. */
  code: number | null;
  /** The signal that ended a process, e.g. 'SIGKILL'. */
  signal: string | null;
  /** True when {@link Crew.kill} ended it. */
  killed: boolean;
  /** A thread's uncaught error or a process that could not start. */
  error?: string;
}

/** Participants started by {@link Fixture.start}. */
export interface Crew {
  readonly count: number;
  /** Is participant `id`'s current incarnation still running? */
  running(id: number): boolean;
  /**
   * End participant `id` abruptly — SIGKILL for a process, `worker.terminate()` for a thread
   * (neither runs exit handlers) — and resolve once it is gone.
   */
  kill(id: number): Promise<Exit>;
  /** Start participant `id` again (same id, same workload) after its previous incarnation ended. */
  respawn(id: number): void;
  /** How participant `id`'s current incarnation ends. */
  exit(id: number): Promise<Exit>;
  /**
   * The reports of every current incarnation once all have exited; rejects when one ended
   * without a report or with errors.
   */
  reports(): Promise<Report[]>;
  /** Kill whatever still runs (for cleanup after a failure). */
  stop(): Promise<void>;
}

/**
 * Capability flags of a backend (all default to false). Each case that depends on one says in
 * its name which way it runs; none is skipped.
 */
export interface Capabilities {
  /**
   * Participants hold a per-slot kernel lease that proves them alive whatever pid their slot
   * records (@bakery/mmap's OFD locks, @bakery/shm's mapped path). The pid-reuse cases, which
   * forge the identity of a live participant, then check that it is NOT reaped; a real death is
   * covered by the kill cases.
   */
  leases?: boolean;
  /**
   * A participant without a slot (the table is full) reaps dead owners: through the backend's
   * outsider lock (mmap, shm mapped) or under the registry lock (positional cells: shm pure
   * JS). Without it such a participant only waits for a slot; participants with slots reap.
   */
  reapsWithoutSlot?: boolean;
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
  /** What the backend can do beyond the contract's minimum; the suite runs what they allow. */
  capabilities?: Capabilities;
  /** Create a fresh lock with `slots` slots. */
  create(slots: number): Promise<Fixture>;
}

/** The slice of a test runner's API the suite needs (vitest's `test`/`describe` fit). */
export type TestFn = (name: string, fn: () => Promise<void> | void, timeout?: number) => void;
export type DescribeFn = (name: string, fn: () => void) => void;

/** What {@link suite} takes. */
export interface SuiteOptions {
  test: TestFn;
  describe: DescribeFn;
  factory: ConformanceFactory;
}

/** What one feature's part of the suite takes (it runs inside the suite's describe). */
export interface FeatureOptions {
  test: TestFn;
  factory: ConformanceFactory;
  /** The handoff every participant of this run asks for (the factory passes it on). */
  handoff?: 'strict' | 'batched';
}

/**
 * A fresh lock of a backend that offers only the asynchronous subset ({@link AsyncMutex}, e.g.
 * @bakery/pg): participants are processes, and there are no cells to read or damage.
 */
export interface AsyncFixture {
  /** Open another participant of this lock inside the test process. */
  open(options?: MutexOptions): Promise<AsyncMutex>;
  /** As {@link Fixture.run}. */
  run(count: number, workload: Workload, options?: MutexOptions): Promise<Report[]>;
  /** As {@link Fixture.start}. */
  start(count: number, workload: Workload, options?: MutexOptions): Crew;
  scratchGet(i: number): number;
  scratchSet(i: number, value: number): void;
  /** Release every resource. */
  dispose(): Promise<void>;
}

/** What a backend that offers only the asynchronous subset hands to {@link asyncSuite}. */
export interface AsyncConformanceFactory {
  name: string;
  /** Participants for the mutual-exclusion cases (≥ 8). */
  concurrency: number;
  /** Iterations per participant for the mutual-exclusion cases. */
  iterations: number;
  /** Create a fresh lock. */
  create(): Promise<AsyncFixture>;
}
