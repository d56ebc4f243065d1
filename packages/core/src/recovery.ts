import type { Acquirer } from './acquirer.js';
import type { Backend, Cells, Identity } from './backend.js';
import {
  BLACK,
  CLAIM_GEN_MASK,
  H,
  OUTSIDER_SLOT,
  reaperClaim,
  reaperToken,
  S,
  slotBase,
  WHITE,
} from './layout.js';
import { scanLimit, serialised } from './memory.js';
import { freeOwner, readOwner, sameOwner } from './owner.js';
import type { Stuck } from './waiting.js';

/**
 * Recovery: finding participants that died, and repairing what they left — reaping their
 * slots under the REAPER word (or the registry lock), handing a dead holder's colour on and
 * flagging ownerDied, clearing protocol state that damage left on free slots. Everything here
 * writes only the dead's cells (after a re-check under REAPER) or cells no live participant
 * owns. The exit hooks (a process leaving without close) are in exit-hooks.ts.
 */

/** A slot whose owner was found dead: who, and the generation of the claim that was judged. */
interface DeadClaim {
  owner: Identity;
  gen: number;
}

/**
 * A holder's exit done on its behalf because it died (or is exiting without release): the
 * ownerDied flag (unless the lock is already not recoverable), the colour its exit would have
 * written (the opposite of its ticket's), then HOLDER = 0 LAST. All three are idempotent, so if
 * the writer dies in between, the next reaper still sees HOLDER naming the holder and redoes
 * the repair. (Clearing HOLDER first let a second reaper take the holder for a mere waiter and
 * the next holder miss ownerDied: found by the spin model, model/bakery.pml.)
 */
export function repairDeadHolder(cells: Cells, ticket: number): void {
  if (cells.load(H.OWNER_DIED) !== 2) cells.store(H.OWNER_DIED, 1);
  if (ticket !== 0) cells.store(H.COLOUR, (ticket & 1) === BLACK ? WHITE : BLACK);
  cells.store(H.HOLDER, 0);
}

/** One participant's part in recovery. */
export class Recovery implements Stuck {
  /** While we reap without a slot: we hold the backend's outsider lock. */
  #outsider = false;
  /** Our REAPER token while we reap without a slot, under the outsider lock (0: none yet). */
  #outsiderToken = 0;
  #stepBackSince = -1;
  readonly #isAlive: ((owner: Identity, slot?: number) => boolean) | undefined;

  constructor(
    private readonly cells: Cells,
    private readonly capacity: number,
    private readonly backend: Backend,
    private readonly identity: Identity,
    /** Where our slot is kept (-1: none), see slots.ts. */
    private readonly self: { readonly slot: number },
    private readonly acq: Acquirer,
    private readonly staleAfter: number,
  ) {
    this.#isAlive = backend.isAlive?.bind(backend);
  }

  /** Whether this backend can tell that a participant is dead (else nothing is ever reaped). */
  get canJudge(): boolean {
    return this.#isAlive !== undefined;
  }

  /** Is slot `s` owned by a participant that is certainly dead? Returns its identity if so. */
  #deadOwner(s: number): DeadClaim | null {
    if (s < 0 || s === this.self.slot || this.#isAlive === undefined) return null;
    if (s >= this.capacity) return null;
    // The claim's generation before its owner: if the slot is freed and claimed again (even by
    // the same thread, with the same identity) after this, the reaper's re-check sees it.
    const gen = this.cells.load(slotBase(s) + S.CLAIM_GEN);
    const owner = readOwner(this.cells, s);
    if (owner === null || this.#isAlive(owner, s)) return null;
    return { owner, gen };
  }

  /**
   * Reap every slot below the high-water mark whose owner is certainly dead — with `all`, every
   * slot of the table: an owner can die between its claim and raising HIGH_WATER, and only a
   * scan of the whole table frees such a slot (else a table full of them turns every newcomer
   * away for good; found by the schedule explorer, apps/explore). Returns how many slots were
   * freed or cleared. Used by tryLock and a stepping-back doorway (rate-limited; their
   * trouble is a ticket, always below the mark), and with `all` by a participant that waits
   * for a slot and by `reapDead()` (tools).
   */
  reapDead(all = false): number {
    const cells = this.cells;
    const outsider = this.self.slot < 0 && cells.compareExchange !== undefined;
    // Without a slot we have no claim to make a REAPER token of: we reap as the holder of the
    // backend's outsider lock, with a token of a new OUTSIDER_GEN — or, where there is none
    // (or another outsider holds it), only clear stray state (which needs no REAPER).
    // The generation is written only when there is a slot to reap (see #reap): judging writes
    // nothing.
    const out = outsider ? this.backend.outsider : undefined;
    const entered = out?.enter() === true;
    this.#outsider = entered;
    try {
      const limit = all ? this.capacity : scanLimit(cells, this.capacity);
      let n = 0;
      for (let s = 0; s < limit; s++) {
        const dead = outsider && !entered ? null : this.#deadOwner(s);
        if (dead !== null ? this.#reap(s, dead) : this.#clearStray(s)) n++;
      }
      return n;
    } finally {
      if (entered) {
        this.#outsider = false;
        this.#outsiderToken = 0;
        out!.leave();
      }
    }
  }

  /**
   * Whether the reaper whose token is in REAPER is certainly gone: its claim is over (the slot
   * is free, or claimed again: another generation), or the slot's owner is dead. A token that
   * names no slot is damage, and gone too. A live reaper's token is never judged gone.
   */
  #reaperGone(token: number): boolean {
    const { slot, gen } = reaperClaim(token);
    if (slot === OUTSIDER_SLOT) {
      // A reaper without a slot: gone once its generation is not the current one, or nobody
      // holds the outsider lock. A backend without one has no outsiders: such a token is damage.
      const out = this.backend.outsider;
      if (out === undefined) return true;
      if ((this.cells.load(H.OUTSIDER_GEN) & CLAIM_GEN_MASK) !== gen) return true;
      return out.held() === false;
    }
    if (slot < 0 || slot >= this.capacity) return true;
    if ((this.cells.load(slotBase(slot) + S.CLAIM_GEN) & CLAIM_GEN_MASK) !== gen) return true;
    const owner = readOwner(this.cells, slot);
    return owner === null || !this.#isAlive!(owner, slot);
  }

  /**
   * Free slot `j` of a dead owner, serialised with other reapers (the REAPER word by
   * compareExchange, else the backend's registry lock). Under it: re-check that j still has
   * the same dead owner; if j died inside the critical section, hand the colour on exactly as
   * its exit would and flag ownerDied; then clear j's choosing and ticket (for a dead waiter
   * this is a withdrawal: no colour write) and free the slot; wake everyone sleeping on j.
   */
  #reap(j: number, dead: DeadClaim): boolean {
    const cells = this.cells;
    const body = (): boolean => {
      // The same claim (same generation), the same owner, and still dead.
      if (cells.load(slotBase(j) + S.CLAIM_GEN) !== dead.gen) return false;
      const now = readOwner(cells, j);
      if (!sameOwner(now, dead.owner) || this.#isAlive!(now!, j)) return false;
      const b = slotBase(j);
      if (cells.load(H.HOLDER) === j + 1) repairDeadHolder(cells, cells.load(b + S.TICKET));
      cells.store(b + S.CHOOSING, 0);
      cells.store(b + S.TICKET, 0);
      freeOwner(cells, j);
      if (cells.notify !== undefined) {
        cells.notify(b + S.TICKET, Number.POSITIVE_INFINITY);
        cells.notify(b + S.CHOOSING, Number.POSITIVE_INFINITY);
      }
      return true;
    };
    if (cells.compareExchange === undefined) return cells.withRegistryLock!(body);
    // The REAPER word holds the token of our claim of our slot (slot + its claim generation):
    // unique per claim, so a token whose claim is over — the slot freed, reclaimed (new
    // generation), or its owner dead — can be cleared, and the clearing CAS succeeds only if
    // the word still holds that very token. No reused pid or thread id can fake or block it.
    const slot = this.self.slot;
    if (slot < 0 && this.#outsider && this.#outsiderToken === 0) {
      // Our first reap under this hold of the outsider lock: a new outsider generation, so that
      // a token of an earlier holder (dead now) never matches ours.
      const gen = (cells.load(H.OUTSIDER_GEN) + 1) & CLAIM_GEN_MASK;
      cells.store(H.OUTSIDER_GEN, gen);
      this.#outsiderToken = reaperToken(OUTSIDER_SLOT, gen);
    }
    const me =
      slot >= 0 ? reaperToken(slot, cells.load(slotBase(slot) + S.CLAIM_GEN)) : this.#outsiderToken;
    if (me === 0) return false;
    for (;;) {
      const r = cells.compareExchange(H.REAPER, 0, me);
      if (r === 0) break;
      if (r === me || !this.#reaperGone(r)) return false;
      cells.compareExchange(H.REAPER, r, 0);
    }
    try {
      return body();
    } finally {
      cells.store(H.REAPER, 0);
    }
  }

  beginAcquisition(): void {
    this.#stepBackSince = -1;
  }

  /**
   * The doorway steps back while the highest ticket's owner has not entered or withdrawn. If
   * that owner is dead it never will, and nobody who steps back reaches the waiting scan where
   * stale owners are checked (found by the spin model): so stepping back for staleAfterMs
   * counts as being stuck, and then every slot below the mark is checked.
   */
  stepBackStale(now: number): void {
    if (this.#stepBackSince < 0) {
      this.#stepBackSince = now;
      return;
    }
    if (now - this.#stepBackSince < this.staleAfter) return;
    this.#stepBackSince = now;
    this.reapDead();
  }

  /**
   * Called while stuck: reap the slot we sleep behind and the slot the scan is at, if its
   * owner is dead; clear them if they are free but hold protocol state.
   */
  checkStale(): void {
    const acq = this.acq;
    for (const s of [acq.blockSlot, acq.scanSlot]) {
      if (s < 0) continue;
      const dead = this.#deadOwner(s);
      if (dead !== null) this.#reap(s, dead);
      else this.#clearStray(s);
    }
  }

  /**
   * A free slot (OWNER = 0) holds no protocol state in any correct execution: claims find it
   * zeroed and every free (close, reap, exit) zeroes CHOOSING and TICKET before OWNER. So state
   * left on a free slot is damage, and a waiter would wait on it forever. Clear it under a
   * temporary claim of the slot (OWNER = our pid by compareExchange, or under the registry
   * lock), so that no participant can claim the slot and take a ticket there while we zero
   * it; a HOLDER naming the free slot is cleared by compareExchange only (HOLDER is written
   * outside the registry lock). Returns whether anything was cleared.
   */
  #clearStray(s: number): boolean {
    const cells = this.cells;
    const b = slotBase(s);
    const cas = cells.compareExchange?.bind(cells);
    const cleared = serialised(cells, (): boolean => {
      if (cells.load(b + S.OWNER) !== 0) return false;
      if (cells.load(b + S.CHOOSING) === 0 && cells.load(b + S.TICKET) === 0) return false;
      if (cas !== undefined) {
        if (cas(b + S.OWNER, 0, this.identity.pid) !== 0) return false;
      } else {
        cells.store(b + S.OWNER, this.identity.pid);
      }
      cells.store(b + S.CHOOSING, 0);
      cells.store(b + S.TICKET, 0);
      cas?.(H.HOLDER, s + 1, 0);
      cells.store(b + S.OWNER, 0);
      return true;
    });
    if (cleared && cells.notify !== undefined) {
      cells.notify(b + S.TICKET, Number.POSITIVE_INFINITY);
      cells.notify(b + S.CHOOSING, Number.POSITIVE_INFINITY);
    }
    return cleared;
  }
}
