/**
 * The backend contract: what core needs from shared memory. A backend is an array of 32-bit
 * cells shared by every participant of one lock.
 *
 * **Safety.** `load` and `store` MUST be sequentially consistent across every participant
 * (every thread and process that has the lock open): there is one total order of all loads and
 * stores that agrees with each participant's program order. The doorway relies on store→load
 * ordering (`choosing[i] = 1` then reading the others' tickets); a relaxed or plain access
 * anywhere breaks mutual exclusion. In JS that means `Atomics.load`/`Atomics.store` on an
 * Int32Array (never plain indexing); in C/C++ `__atomic_*_n(..., __ATOMIC_SEQ_CST)`; for a file,
 * one positional read/write syscall per access.
 *
 * Everything else is optional; core adapts when a capability is absent.
 */
export interface Cells {
  /** Number of cells. */
  readonly length: number;
  /** Sequentially consistent read of cell `i`. */
  load(i: number): number;
  /** Sequentially consistent write of cell `i`. */
  store(i: number, value: number): void;
  /**
   * Optional: read `count` cells from cell `from` into `out` in one operation, for backends
   * where every `load` is a syscall (shm: one pread instead of one per slot). Each value must be
   * one that its cell held during the call (never torn), but there is NO order among the cells:
   * the protocol uses it only where it needs none — the doorway's maximum of the tickets (all
   * read after its choosing store and before its ticket store), and the choice of where to sleep.
   */
  loadMany?(from: number, count: number, out: Int32Array): void;
  /**
   * Atomically: if cell `i` holds `expected`, write `replacement`. Returns the value it held.
   * Used for slot claims, the high-water mark and sleeper counts. A backend without it must
   * provide {@link Cells.withRegistryLock}.
   */
  compareExchange?(i: number, expected: number, replacement: number): number;
  /**
   * Serialise slot claims and frees between participants when there is no compareExchange
   * (e.g. a short exclusive lock file). Runs `fn` under that lock.
   */
  withRegistryLock?<T>(fn: () => T): T;
  /**
   * Block the calling thread while cell `i` holds `expected`, at most `timeoutMs`. Must wake on
   * `notify` from any participant (a non-private futex between processes). Returns `'ok'` when
   * woken, `'not-equal'` when the value differed, `'timed-out'`.
   */
  wait?(i: number, expected: number, timeoutMs: number): 'ok' | 'not-equal' | 'timed-out';
  /** Wake up to `count` participants blocked in `wait`/`waitAsync` on cell `i`. */
  notify?(i: number, count: number): number;
  /**
   * Like {@link Cells.wait} without blocking the event loop. The promise settles on notify,
   * value change or timeout.
   */
  waitAsync?(
    i: number,
    expected: number,
    timeoutMs: number,
  ): Promise<'ok' | 'not-equal' | 'timed-out'>;
}

/** Who owns a slot: written into the slot when it is claimed. */
export interface Identity {
  /** Process id (non-zero). */
  pid: number;
  /** OS thread id (Linux tid; equals pid on the main thread), 0 = unknown. */
  tid: number;
  /** Start time of that thread (task) in clock ticks since boot; 0 = unknown. */
  startTime: number;
  /**
   * Pid namespace of the owner (inode number of /proc/self/ns/pid, < 2^32); 0 or absent =
   * unknown. Recorded by backends whose participants need not share a pid namespace.
   */
  ns?: number;
}

/**
 * An exclusive lock among the participants of one lock that have no slot (they wait for one:
 * the slot table is full), which the operating system releases when its holder dies — an OFD
 * lock on a byte of the lock's file. Holding it is what lets a participant without a slot
 * reap dead owners on a backend with compareExchange: its REAPER token is
 * `reaperToken(OUTSIDER_SLOT, gen)` with the OUTSIDER_GEN it wrote, and the token is gone once
 * nobody holds this lock. Without it such a participant waits for a slot without reaping
 * (participants with slots still reap).
 */
export interface OutsiderLock {
  /** Take the lock without waiting; false when another participant holds it. */
  enter(): boolean;
  /** Release it (after {@link OutsiderLock.enter} returned true). */
  leave(): void;
  /**
   * Whether another participant holds it now: `false` ONLY when certain (a REAPER token of an
   * outsider is then cleared); `undefined` when it cannot tell.
   */
  held(): boolean | undefined;
}

/** What a backend hands to core to build a Mutex. */
export interface Backend {
  /** The shared cells of this lock. */
  readonly cells: Cells;
  /** Identity written into claimed slots. Defaults to `{ pid: process.pid, tid: 0, startTime: 0 }`. */
  identity?(): Identity;
  /**
   * Whether the owner recorded in a slot still runs. Return `false` ONLY when that is certain
   * (core then reaps the slot: a wrong `false` breaks mutual exclusion); anything doubtful is
   * `true`. Without it, core never reaps and a participant that dies wedges the lock.
   *
   * `slot` is the slot `owner` was read from, when there is one (core passes it when judging a
   * slot's owner; the REAPER token check has none): a backend with per-slot kernel leases
   * (@bakery/mmap) probes the slot's lease with it. Implementations that ignore it are fine.
   */
  isAlive?(owner: Identity, slot?: number): boolean;
  /**
   * Whether the synchronous API may block this thread with {@link Cells.wait}. A backend sets
   * this to false where blocking waits are refused (a browser main thread); core then sleeps
   * with backoff instead.
   */
  readonly canBlock?: boolean;
  /**
   * Called right after core claims a slot for this participant and before its first doorway —
   * at open, or later when the participant had to wait for a slot. A backend takes its
   * per-slot lease here (@bakery/mmap: an OFD lock on byte = slot, then OWNER_LEASE = 1).
   */
  claimed?(slot: number): void;
  /**
   * Called while core frees this participant's slot (at close, at exit, or when it gives the
   * slot up for a participant waiting for one): after the slot's protocol and owner cells —
   * OWNER_LEASE included — are zero, before its claim word is. A backend drops the slot's
   * lease here. Must not throw.
   */
  freeing?(slot: number): void;
  /** Optional: lets participants without a slot reap (see {@link OutsiderLock}). */
  readonly outsider?: OutsiderLock;
  /**
   * Called once when the Mutex is closed, after its slot is freed: release fds, mappings, timers.
   */
  close?(): void;
  /** Short human description for messages and `inspect()` ("sab", "mmap fd 3", "shm /dev/shm/bakery.x"). */
  readonly description?: string;
}
