/**
 * The shared-memory layout of a bakery lock, version 3. docs/LAYOUT.md is the normative spec;
 * this file is its executable form. All cells are little-endian signed 32-bit integers.
 *
 * ```
 * cell 0 .. 15               header (one 64-byte line)
 * cell 16 + 16*s .. +15      slot s (one 64-byte line each, so a participant's doorway writes
 *                            never invalidate another participant's line)
 * ```
 */

/** "BAKR" read as a little-endian int32: bytes 42 41 4B 52 → 0x524B4142. */
export const MAGIC = 0x524b4142;
/**
 * Bumped on any incompatible change of the cells below. 2: the ACCESS header cell (a version-1
 * participant would ignore it and could mix positional and mapped access on one lock).
 */
export const LAYOUT_VERSION = 3;
/** Cells per header and per slot. 16 cells = 64 bytes = one cache line on x86-64 and arm64. */
export const HEADER_CELLS = 16;
export const SLOT_CELLS = 16;
/** Largest capacity a lock may be created with. Tickets (≤ capacity) then fit easily in 30 bits. */
export const MAX_SLOTS = 4096;

/** Header cell indices. */
export const H = {
  MAGIC: 0,
  VERSION: 1,
  CAPACITY: 2,
  /** 0 = not initialised, 1 = initialising, 2 = ready. */
  INIT: 3,
  /** The shared Black-White colour: 0 = white, 1 = black. */
  COLOUR: 4,
  /** slot + 1 of the current holder, 0 when free (informational: written inside the CS). */
  HOLDER: 5,
  /** Number of slots ever claimed, as 1 + highest claimed index; scans stop here. Only grows. */
  HIGH_WATER: 6,
  /** 0 = consistent, 1 = a holder died (next acquirer sees ownerDied), 2 = not recoverable. */
  OWNER_DIED: 7,
  /** Acquisitions so far, wrapping at 2^31 (incremented inside the critical section). */
  ACQUISITIONS: 8,
  /** Largest ticket number ever issued (monotone; exact where the backend has compareExchange). */
  MAX_TICKET: 9,
  /**
   * Reaper lock word: 0 = free, else the token of the reaper's claim of its slot,
   * {@link reaperToken}(slot, CLAIM_GEN of that claim) — unique per claim, so no reuse of a
   * slot, pid or thread id can fake or block it.
   */
  REAPER: 10,
  /**
   * How every participant of this lock accesses its cells ({@link ACCESS}), written by the
   * creator and never changed. Participants of one lock all use the same mode.
   */
  ACCESS: 11,
  /**
   * A hint, with no part in exclusion: 0, or the time (milliseconds since the epoch, low 31 bits,
   * never 0) at which a participant without a slot last looked for one. A participant that
   * releases the lock while it is fresh ({@link SLOT_WANTED_FRESH_MS}) frees its slot, so that
   * more participants than slots take turns. Written by whoever looks; cleared by the one that
   * finds a slot, and by a releaser that finds it stale.
   */
  SLOT_WANTED: 12,
  /**
   * Generation of the outsider lock's holder (a participant without a slot that reaps): the
   * holder adds 1 (mod 2^19) after taking the backend's outsider lock and before it writes its
   * REAPER token, {@link reaperToken}({@link OUTSIDER_SLOT}, this generation). Written only
   * under the outsider lock; never cleared.
   */
  OUTSIDER_GEN: 13,
} as const;

/**
 * The slot number a REAPER token names when its reaper has no slot (it waits for one): the
 * holder of the backend's outsider lock. No slot has this number (capacities stop at 4096).
 */
export const OUTSIDER_SLOT = 4096;

/** How long (ms) a {@link H}.SLOT_WANTED time makes releasers free their slots. */
export const SLOT_WANTED_FRESH_MS = 500;

/**
 * Values of the ACCESS header cell. The two modes cannot share a lock: an atomic participant
 * claims slots and counts sleepers with compareExchange where a positional one serialises
 * through a registry lock (their claims would not exclude each other), and a positional
 * releaser cannot wake a futex sleeper.
 */
export const ACCESS = {
  /**
   * Shared memory accessed with atomic instructions (Atomics on a SharedArrayBuffer or a
   * MAP_SHARED mapping): compareExchange for claims, futex wait/wake. sab, mmap, mapped shm.
   */
  ATOMIC: 1,
  /**
   * A file accessed with one pread/pwrite per cell (@bakery/shm's pure-JS path): claims under
   * the registry lock, polling waiters, at most 127 slots (no read can tear).
   */
  POSITIONAL: 2,
} as const;

/** One of the {@link ACCESS} values. */
export type AccessMode = (typeof ACCESS)[keyof typeof ACCESS];

/** Slot cell offsets relative to the slot's first cell. */
export const S = {
  /** 1 while the participant is in the doorway (choosing its ticket). */
  CHOOSING: 0,
  /** retained << 30 | number << 1 | colour; 0 = no ticket (see {@link TICKET_RETAINED}). */
  TICKET: 1,
  /** How many participants are blocked in a backend wait on this slot's cells. */
  SLEEPERS: 2,
  /** Claim word: 0 = free, else the owner's pid (or another non-zero token). */
  OWNER: 3,
  /** Owner's OS thread id (Linux tid; = pid on the main thread), 0 = unknown. */
  OWNER_TID: 4,
  /** Owner thread's start time, low and high 32 bits (clock ticks since boot, 0 = unknown). */
  OWNER_START_LO: 5,
  OWNER_START_HI: 6,
  /**
   * Owner's pid namespace (inode of /proc/self/ns/pid, as an unsigned 32-bit value), 0 =
   * unknown. A backend whose participants may live in different pid namespaces records it, so
   * that a reaper never judges a pid that means something else where it runs.
   */
  OWNER_NS: 7,
  /**
   * 1 when the owner holds a per-slot kernel lease (@bakery/mmap: an OFD write lock on byte =
   * slot of the lock's file), so that "no lease" proves it dead; 0 = no lease is taken (older
   * or other participants: only the pid-based check applies). Cleared with the other owner cells.
   */
  OWNER_LEASE: 8,
  /**
   * Claim generation: every claim of this slot adds 1 (mod 2^19) before its first doorway; never
   * cleared on free. The REAPER token of the slot's current claim carries it.
   */
  CLAIM_GEN: 9,
} as const;

/** Claim generations wrap at 2^19 (19 bits of the REAPER token). */
export const CLAIM_GEN_MASK = 0x7ffff;

/**
 * The REAPER token of the claim of `slot` with generation `gen`: `gen << 13 | (slot + 1)`, never
 * 0 (slot + 1 ≤ 4097 fits in 13 bits), as a signed 32-bit cell value. For a reaper without a
 * slot, `slot` is {@link OUTSIDER_SLOT} and `gen` the {@link H}.OUTSIDER_GEN it wrote.
 */
export function reaperToken(slot: number, gen: number): number {
  return ((gen & CLAIM_GEN_MASK) << 13) | (slot + 1) | 0;
}

/** The slot and generation a REAPER token names ({@link reaperToken} reversed). */
export function reaperClaim(token: number): { slot: number; gen: number } {
  return { slot: (token & 0x1fff) - 1, gen: (token >>> 13) & CLAIM_GEN_MASK };
}

export const WHITE = 0;
export const BLACK = 1;

/** Number of cells a lock with `capacity` slots needs. */
export function cellsFor(capacity: number): number {
  return HEADER_CELLS + SLOT_CELLS * capacity;
}

/** Number of bytes a lock with `capacity` slots needs. */
export function bytesFor(capacity: number): number {
  return cellsFor(capacity) * 4;
}

/** First cell of slot `s`. */
export function slotBase(s: number): number {
  return HEADER_CELLS + SLOT_CELLS * s;
}

/**
 * TICKET's retained flag (bit 30): the participant left the critical section under
 * `handoff: 'batched'` and kept its ticket; it re-takes it with compareExchange(t, t without the
 * flag), and any waiter that finds it ahead may revoke it with compareExchange(t, 0). Never set
 * under positional access.
 */
export const TICKET_RETAINED = 1 << 30;
/** The bits of a ticket cell below the retained flag: `number << 1 | colour`. */
const TICKET_BITS = TICKET_RETAINED - 1;

/** Pack a ticket number with its colour into one cell. */
export function packTicket(n: number, colour: number): number {
  return (n << 1) | colour;
}

/** The ticket number of a packed ticket cell (without the retained flag). */
export function ticketNumber(t: number): number {
  return (t & TICKET_BITS) >>> 1;
}

/** Whether a ticket cell holds a retained ticket (see {@link TICKET_RETAINED}). */
export function isRetained(t: number): boolean {
  return (t & TICKET_RETAINED) !== 0;
}

/** The colour of a packed ticket cell. */
export function ticketColour(t: number): number {
  return t & 1;
}
