import type { Acquirer } from './acquirer.js';
import type { Backend, Cells, Identity } from './backend.js';
import { BakeryError } from './errors.js';
import { CLAIM_GEN_MASK, H, S, SLOT_WANTED_FRESH_MS, slotBase } from './layout.js';
import { raiseHighWater, serialised } from './memory.js';
import { freeOwner } from './owner.js';
import type { Recovery } from './recovery.js';
import { abortError, sleepAbortable, sleepSync } from './waiting.js';

/**
 * A participant's slot: claiming one (at open, or later after waiting for one), freeing it
 * (close, exit, or giving it up for a participant that waits), and waiting for one when every
 * slot is claimed — asking for one in SLOT_WANTED, reaping the dead meanwhile. The slot number
 * lives here; everything else reads it from {@link Slots.slot}.
 */

/** Waiting for a free slot: a doubling poll interval from 1 ms up to this. */
const SLOT_POLL_MAX_MS = 16;
/**
 * A participant that gave its slot up for a waiter claims again only once another participant
 * has claimed that slot, or after this long (ms).
 */
const SLOT_GRACE_MS = 4 * SLOT_POLL_MAX_MS;

/** The SLOT_WANTED value for now: ms since the epoch, low 31 bits, never 0. */
export function wantedNow(): number {
  return Date.now() & 0x7fffffff || 1;
}

/** Whether a SLOT_WANTED value is a request from the last {@link SLOT_WANTED_FRESH_MS} ms. */
export function freshWant(w: number): boolean {
  return w !== 0 && ((wantedNow() - w) & 0x7fffffff) < SLOT_WANTED_FRESH_MS;
}

export function noSlotError(capacity: number, waited: boolean): BakeryError {
  return new BakeryError(
    'BAKERY_NO_FREE_SLOT',
    waited
      ? `timed out waiting for a free slot: all ${capacity} slots of this lock stayed claimed`
      : `all ${capacity} slots of this lock are claimed (lock() and lockSync() wait for one)`,
  );
}

/** The state of one wait for a free slot. */
interface SlotWait {
  deadline: number;
  signal: AbortSignal | undefined;
  /** The next poll interval (ms), doubling up to SLOT_POLL_MAX_MS. */
  backoff: number;
  /** How long to sleep now. */
  ms: number;
}

export class Slots {
  /** Our slot, -1 while we have none. */
  slot = -1;
  /** Set once, right after construction (recovery reads our slot from here). */
  recovery!: Recovery;
  /** When we last reaped while waiting for a slot. */
  #reapedAt = Number.NEGATIVE_INFINITY;
  /** The slot we last gave up for a waiter (-1: none pending), its claim generation, and when. */
  #yieldedSlot = -1;
  #yieldedGen = 0;
  #yieldedAt = 0;
  /** The SLOT_WANTED value we last wrote (0: none). */
  #wanted = 0;

  constructor(
    private readonly cells: Cells,
    private readonly capacity: number,
    private readonly identity: Identity,
    private readonly backend: Backend,
    private readonly acq: Acquirer,
    private readonly staleAfter: number,
  ) {}

  /**
   * Claim a free slot if there is one (after reaping dead owners, when `reap` and the table is
   * full), take it as ours and tell the backend. Returns whether we now have a slot.
   */
  take(reap: boolean): boolean {
    let s = this.#claimFree();
    if (s < 0 && reap && this.recovery.canJudge && this.recovery.reapDead(true) > 0)
      s = this.#claimFree();
    if (s < 0) return false;
    this.slot = s;
    this.acq.rebind(s);
    // Before our first doorway (a backend takes the slot's lease here).
    this.backend.claimed?.(s);
    // SLOT_WANTED stays: others may still wait (it goes stale once nobody asks any more).
    return true;
  }

  /** Claim the first free slot (compareExchange, or under the registry lock); -1 if none. */
  #claimFree(): number {
    const cells = this.cells;
    const capacity = this.capacity;
    const id = this.identity;
    const cas = cells.compareExchange?.bind(cells);
    return serialised(cells, (): number => {
      for (let s = 0; s < capacity; s++) {
        const b = slotBase(s);
        if (cells.load(b + S.OWNER) !== 0) continue;
        if (cas !== undefined) {
          if (cas(b + S.OWNER, 0, id.pid) !== 0) continue;
        } else {
          cells.store(b + S.OWNER, id.pid);
        }
        cells.store(b + S.OWNER_TID, id.tid);
        cells.store(b + S.OWNER_START_LO, (id.startTime % 2 ** 32) | 0);
        cells.store(b + S.OWNER_START_HI, Math.floor(id.startTime / 2 ** 32) | 0);
        cells.store(b + S.OWNER_NS, (id.ns ?? 0) | 0);
        // No lease yet (the backend sets it once one is held); a reaper from an older version
        // may have left it set.
        cells.store(b + S.OWNER_LEASE, 0);
        // A new claim, a new generation: a REAPER token of an earlier claim of this slot no
        // longer matches, so it can be cleared without asking whether the old owner lives.
        cells.store(b + S.CLAIM_GEN, (cells.load(b + S.CLAIM_GEN) + 1) & CLAIM_GEN_MASK);
        // A free slot holds no protocol state unless something damaged it; whatever was left
        // here is ours now, and dropping it is a withdrawal (wake whoever waited on it).
        if (cells.load(b + S.CHOOSING) !== 0 || cells.load(b + S.TICKET) !== 0) {
          cells.store(b + S.CHOOSING, 0);
          cells.store(b + S.TICKET, 0);
          if (cells.notify !== undefined) {
            cells.notify(b + S.TICKET, Number.POSITIVE_INFINITY);
            cells.notify(b + S.CHOOSING, Number.POSITIVE_INFINITY);
          }
        }
        // Raise the high-water mark before our first doorway, so every later scan covers us.
        raiseHighWater(cells, s + 1);
        return s;
      }
      return -1;
    });
  }

  /** Free our slot (we then have none). */
  free(): void {
    const cells = this.cells;
    const slot = this.slot;
    this.acq.dropRetained();
    const b = slotBase(slot);
    serialised(cells, () => {
      // Already zero after a release or withdrawal; a free slot must hold no protocol state.
      if (cells.load(b + S.CHOOSING) !== 0) cells.store(b + S.CHOOSING, 0);
      if (cells.load(b + S.TICKET) !== 0) cells.store(b + S.TICKET, 0);
      // The lease goes with OWNER_LEASE = 0 already stored: no prober can take us for dead.
      freeOwner(cells, slot, () => this.backend.freeing?.(slot));
    });
    this.slot = -1;
    this.acq.rebind(-1);
  }

  /**
   * After a release: if someone waits for a slot (and the caller has nothing more queued),
   * give ours up — we claim one again at our next lock — so that more participants than slots
   * take turns.
   */
  yieldIfWanted(): void {
    if (!this.wanted()) return;
    try {
      const slot = this.slot;
      const gen = this.cells.load(slotBase(slot) + S.CLAIM_GEN);
      this.free();
      this.#yieldedSlot = slot;
      this.#yieldedGen = gen;
      this.#yieldedAt = performance.now();
    } catch {
      // Could not free it (a registry timeout): we keep it; the lease is released all the same.
    }
  }

  /**
   * One look for a free slot while lock()/lockSync() waits for one: true once we have a slot;
   * else says (in `w.ms`) how long to sleep before the next look, after asking for a slot
   * (SLOT_WANTED: releasers then free theirs). Reaps dead owners at most once per
   * staleAfterMs. Throws BAKERY_NO_FREE_SLOT past the deadline, BAKERY_ABORTED on abort.
   */
  #look(w: SlotWait): boolean {
    if (w.signal?.aborted) throw abortError(w.signal);
    const now = performance.now();
    if (this.#yieldedSlot >= 0) {
      // We gave our slot up for a waiter: let one take it before we claim again, or our next
      // lock would win it back at once, and the waiters would starve (SLOT_GRACE_MS bounds
      // this, should the waiter be gone).
      const taken = this.cells.load(slotBase(this.#yieldedSlot) + S.CLAIM_GEN) !== this.#yieldedGen;
      if (taken || now - this.#yieldedAt >= SLOT_GRACE_MS) this.#yieldedSlot = -1;
    }
    const deferring = this.#yieldedSlot >= 0;
    if (!deferring) {
      const reap = now - this.#reapedAt >= this.staleAfter;
      if (reap) this.#reapedAt = now;
      if (this.take(reap)) return true;
    }
    const left = w.deadline - now;
    if (left <= 0) throw noSlotError(this.capacity, true);
    // Ask for a slot — not while deferring: the slot we gave up is free, and asking would only
    // make others give theirs up too.
    if (!deferring) {
      this.#wanted = wantedNow();
      this.cells.store(H.SLOT_WANTED, this.#wanted);
    }
    w.ms = Math.min(w.backoff, left);
    w.backoff = Math.min(w.backoff * 2, SLOT_POLL_MAX_MS);
    return false;
  }

  /** Wait for a slot, blocking this thread (until `deadline`, a performance.now() time). */
  waitSync(deadline: number): void {
    const w: SlotWait = { deadline, signal: undefined, backoff: 1, ms: 0 };
    while (!this.#look(w)) sleepSync(w.ms);
  }

  /** Wait for a slot without blocking the event loop. */
  async waitAsync(deadline: number, signal: AbortSignal | undefined): Promise<void> {
    const w: SlotWait = { deadline, signal, backoff: 1, ms: 0 };
    while (!this.#look(w)) await sleepAbortable(w.ms, signal);
  }

  /**
   * Whether a participant without a slot asked for one lately (a fresh SLOT_WANTED): then we
   * free ours at release. A stale request is cleared, so that releases skip the clock again.
   */
  wanted(): boolean {
    const cells = this.cells;
    const w = cells.load(H.SLOT_WANTED);
    if (w === 0) return false;
    // Our own request, from before we found a slot: nobody else asked since (they would have
    // written their own time; one in the same millisecond is missed until its next look).
    if (w === this.#wanted) return false;
    if (freshWant(w)) return true;
    if (cells.compareExchange !== undefined) cells.compareExchange(H.SLOT_WANTED, w, 0);
    else cells.store(H.SLOT_WANTED, 0);
    return false;
  }
}
