import type { Cells } from './backend.js';
import {
  BLACK,
  H,
  isRetained,
  packTicket,
  S,
  SLOT_CELLS,
  slotBase,
  TICKET_RETAINED,
  ticketNumber,
  WHITE,
} from './layout.js';
import { raiseHighWater, scanLimit } from './memory.js';

/** {@link Acquirer.advance} results. */
export const DONE = 0;
/** Blocked on `blockCell` holding `blockValue` (a cell of slot `blockSlot`). */
export const BLOCKED = 1;
/** The doorway stepped back because the next ticket would exceed the limit; sleep, then retry. */
export const STEP_BACK = 2;

/** Called at doorway boundaries (diagnostics and the conformance suite's FIFO check). */
export interface TraceHooks {
  /** Right before `choosing[i] = 1` of a doorway attempt. */
  doorwayStart?(): void;
  /** Right after `choosing[i] = 0` with the ticket stored. */
  doorwayEnd?(ticket: number): void;
}

/**
 * One participant's Black-White bakery protocol (Taubenfeld, DISC 2004) as a resumable state
 * machine, so that the blocking (`lockSync`) and the asynchronous (`lock`) drivers share one
 * implementation and an acquisition allocates nothing. `advance()` runs until it must wait and
 * then reports on which cell; the driver decides how to wait and calls `advance()` again, which
 * re-reads that condition and continues the scan where it stopped.
 *
 * Every access goes through `Cells.load/store`, which the backend contract requires to be
 * sequentially consistent: the doorway's store→load order (choosing, then the others' tickets)
 * depends on it.
 */
export class Acquirer {
  /** 0 = doorway next, 1 = waiting scan, 2 = done. */
  private phase = 0;
  /** Own ticket number and colour, valid from the end of the doorway. */
  n = 0;
  c = 0;
  private hwm = 0;
  private j = 0;
  /** 0 = slot j not yet classified, 1 = same colour as ours, 2 = other colour. */
  private branch = 0;
  blockCell = -1;
  blockValue = 0;
  blockSlot = -1;
  /**
   * How many tickets were ahead of ours when the scan last blocked behind one (1: we are
   * next), 0 when it blocked on something else (a doorway in progress). Only a hint for how
   * long a polling waiter may sleep; never used for the protocol's decisions.
   */
  ahead = 0;
  /**
   * The shared colour the scan that blocked behind a ticket read (-1: the block does not
   * depend on it). The order of tickets ahead depends on it, so a waiter that polls must
   * re-scan when it changes.
   */
  colourAtBlock = -1;
  /** The lock's ACQUISITIONS count, read right before the scan that counted `ahead`. */
  countAtBlock = 0;
  /** Largest ticket number this participant was ever issued (for tests and inspect()). */
  maxIssued = 0;
  /** True while this participant keeps its ticket outside the critical section ({@link retain}). */
  retained = false;

  private base: number;
  /** The slots' cells read in one `loadMany` (backends that have it), reused. */
  private many: Int32Array | undefined;

  constructor(
    private readonly cells: Cells,
    /** Our slot; -1 while the participant has none (it may only {@link Acquirer.idle} then). */
    public slot: number,
    private readonly trace: TraceHooks | undefined,
    /** The lock's capacity: every scan is bounded by it, whatever HIGH_WATER holds. */
    private readonly capacity: number,
    /** Runs `fn` where HIGH_WATER may be raised (the registry lock for positional cells). */
    private readonly serialise: <T>(fn: () => T) => T = (fn) => fn(),
  ) {
    this.base = slotBase(slot);
  }

  /** Acquire for slot `slot` from now on (-1: none), when the participant claims or frees one. */
  rebind(slot: number): void {
    this.slot = slot;
    this.base = slotBase(slot);
  }

  /** The slot the waiting scan is at (it may be blocked behind another one). */
  get scanSlot(): number {
    return this.phase === 1 ? this.j : -1;
  }

  /** Start a new acquisition. */
  begin(): void {
    this.phase = 0;
  }

  /**
   * True when no other participant is choosing or holds a ticket. `tryLock` calls this before
   * its doorway so that a failing tryLock writes nothing: a withdrawn ticket lets the next one
   * grow, and a tryLock polled while someone holds the lock must not push tickets upward.
   */
  idle(): boolean {
    const cells = this.cells;
    const hwm = scanLimit(cells, this.capacity);
    for (let j = 0; j < hwm; j++) {
      if (j === this.slot) continue;
      const b = slotBase(j);
      if (cells.load(b + S.CHOOSING) !== 0) return false;
      // A retained ticket is a free lock (its owner is outside the critical section): the
      // scan revokes it.
      const t = cells.load(b + S.TICKET);
      if (t !== 0 && !isRetained(t)) return false;
    }
    return true;
  }

  advance(): number {
    const cells = this.cells;
    if (this.phase === 0) {
      const base = this.base;
      this.trace?.doorwayStart?.();
      cells.store(base + S.CHOOSING, 1);
      // Read the high-water mark AFTER choosing = 1: a slot claimed later starts its own
      // doorway after this point and will see our choosing flag.
      let limit = scanLimit(cells, this.capacity);
      if (limit <= this.slot) {
        // Our claim raised it past our slot and it only grows, so this is corruption (a
        // same-user process wrote the cell): others' scans would not see us and two could
        // enter. Repair it before taking a ticket; from here every scan covers us again.
        this.serialise(() => raiseHighWater(cells, this.slot + 1));
        limit = scanLimit(cells, this.capacity);
      }
      const c = cells.load(H.COLOUR);
      let max = 0;
      const many = this.loadMany(limit);
      for (let j = 0; j < limit; j++) {
        const t =
          many === undefined
            ? cells.load(slotBase(j) + S.TICKET)
            : many[j * SLOT_CELLS + S.TICKET]!;
        if (t !== 0 && (t & 1) === c) {
          const nj = ticketNumber(t);
          if (nj > max) max = nj;
        }
      }
      const n = max + 1;
      if (n > limit) {
        // Withdrawals let tickets creep upward; never store one above the limit. Step back and
        // let the high ticket's owner enter or withdraw first (it is not waiting for us: we
        // hold no ticket), then retry.
        cells.store(base + S.CHOOSING, 0);
        this.wake(this.slot, base + S.CHOOSING);
        return STEP_BACK;
      }
      // Ticket before clearing choosing: a scanner that sees choosing = 0 must see our ticket.
      cells.store(base + S.TICKET, packTicket(n, c));
      cells.store(base + S.CHOOSING, 0);
      this.wake(this.slot, base + S.CHOOSING);
      this.trace?.doorwayEnd?.(n);
      this.n = n;
      this.c = c;
      if (n > this.maxIssued) this.maxIssued = n;
      this.recordMaxTicket(n);
      // Read the high-water mark AGAIN for the waiting scan: reusing the doorway's value lets a
      // participant that claimed its slot meanwhile go unseen, and two would enter together.
      this.hwm = scanLimit(cells, this.capacity);
      this.j = 0;
      this.branch = 0;
      this.phase = 1;
    }
    if (this.phase === 1) {
      const n = this.n;
      const c = this.c;
      const i = this.slot;
      for (; this.j < this.hwm; this.j++) {
        const j = this.j;
        if (j === i) continue;
        const b = slotBase(j);
        let t: number;
        if (this.branch === 0) {
          const ch = cells.load(b + S.CHOOSING);
          if (ch !== 0) return this.block(b + S.CHOOSING, ch, j);
          t = cells.load(b + S.TICKET);
          if (t === 0) continue;
          this.branch = (t & 1) === c ? 1 : 2;
        } else {
          t = cells.load(b + S.TICKET);
        }
        if (this.branch === 1) {
          // Same colour: wait until j has no ticket, a later (number, slot), or another colour.
          const nj = ticketNumber(t);
          if (nj === 0 || nj > n || (nj === n && j > i) || (t & 1) !== c) {
            this.branch = 0;
            continue;
          }
        } else if (t === 0 || cells.load(H.COLOUR) !== c || (t & 1) === c) {
          // Other colour: j goes first unless it is gone, the shared colour has moved away
          // from ours (our colour now has priority), or j took a new ticket of our colour.
          this.branch = 0;
          continue;
        }
        if (isRetained(t) && this.cells.compareExchange !== undefined) {
          // j goes first but is outside the critical section, keeping its ticket (handoff
          // 'batched'): revoke it. The compareExchange fails if j re-took it meanwhile; either
          // way, look at j again.
          if (this.cells.compareExchange(b + S.TICKET, t, 0) === t) this.wake(j, b + S.TICKET);
          this.branch = 0;
          this.j--;
          continue;
        }
        return this.blockBehind(b + S.TICKET, t, j);
      }
      this.phase = 2;
    }
    return DONE;
  }

  /**
   * The exit's colour write: the opposite of OUR colour, not a toggle of the shared word (a
   * toggle by two exits in a row would hand priority back to the wrong colour). Only ever
   * after holding the lock.
   */
  passColour(): void {
    this.cells.store(H.COLOUR, this.c === BLACK ? WHITE : BLACK);
  }

  /** Exit protocol after the critical section. */
  exit(): void {
    const cells = this.cells;
    this.passColour();
    cells.store(this.base + S.TICKET, 0);
    this.wake(this.slot, this.base + S.TICKET);
    this.phase = 0;
  }

  /**
   * The exit under `handoff: 'batched'` when the batch may go on: the exit's colour write, but
   * the ticket is kept, flagged {@link TICKET_RETAINED}. Until {@link retake} succeeds nobody is
   * in the critical section, and any waiter that finds the ticket ahead of it revokes it. The
   * colour is passed here, not by a revoker: a revoker writing it after its compareExchange
   * breaks the bypass bound (the model's variant `described-batch-revoker-colour`). Only with
   * compareExchange.
   */
  retain(): void {
    const cells = this.cells;
    const colour = this.c === BLACK ? WHITE : BLACK;
    // Skipped when it already holds that value: while our ticket is in place nobody else writes
    // COLOUR (only a holder's exit and the repair of a dead holder do, and neither exists).
    if (cells.load(H.COLOUR) !== colour) cells.store(H.COLOUR, colour);
    cells.store(this.base + S.TICKET, packTicket(this.n, this.c) | TICKET_RETAINED);
    this.wake(this.slot, this.base + S.TICKET);
    this.retained = true;
    this.phase = 0;
  }

  /**
   * Enter again on the retained ticket, without a doorway: compareExchange(retained → plain).
   * False when a waiter revoked it (the ticket is 0 then): acquire as usual.
   */
  retake(): boolean {
    this.retained = false;
    const t = packTicket(this.n, this.c);
    const r = t | TICKET_RETAINED;
    return this.cells.compareExchange!(this.base + S.TICKET, r, t) === r;
  }

  /** Give a retained ticket up (close, freeing the slot): compareExchange(retained → 0). */
  dropRetained(): void {
    if (!this.retained) return;
    this.retained = false;
    const r = packTicket(this.n, this.c) | TICKET_RETAINED;
    if (this.cells.compareExchange!(this.base + S.TICKET, r, 0) === r)
      this.wake(this.slot, this.base + S.TICKET);
  }

  /**
   * Leave the bakery without having held the lock (timeout, abort, failed tryLock): clear only
   * our own choosing and ticket. Never the exit's colour write — that is for holders only.
   */
  withdraw(): void {
    const cells = this.cells;
    cells.store(this.base + S.CHOOSING, 0);
    cells.store(this.base + S.TICKET, 0);
    this.wake(this.slot, this.base + S.TICKET);
    this.wake(this.slot, this.base + S.CHOOSING);
    this.phase = 0;
  }

  /**
   * Slot j is ahead of us. Rather than sleep on j itself, sleep on our immediate predecessor:
   * the ticket that enters right before ours. We cannot enter before it exits anyway, and
   * everyone ahead of it exits first, so its exit is the one wake-up we need — each release
   * then wakes one successor instead of every waiter that happened to scan the releaser
   * first. This only chooses WHERE to sleep: after any wake-up the scan re-checks the real
   * condition, and the sleep has a timeout as a backstop.
   */
  private blockBehind(cell: number, value: number, j: number): number {
    const cells = this.cells;
    const n = this.n;
    const c = this.c;
    const i = this.slot;
    const colour = cells.load(H.COLOUR);
    const mineFirst = colour !== c;
    let best = -1;
    let bestTicket = 0;
    let bestKey = -1;
    let ahead = 0;
    // Read before the tickets: a holder counted in `ahead` entered before this read, so
    // later entries are exactly the count's growth.
    const count = cells.load(H.ACQUISITIONS);
    const many = this.loadMany(this.hwm);
    for (let k = 0; k < this.hwm; k++) {
      if (k === i) continue;
      const t =
        many === undefined ? cells.load(slotBase(k) + S.TICKET) : many[k * SLOT_CELLS + S.TICKET]!;
      if (t === 0) continue;
      const nk = ticketNumber(t);
      let key: number;
      if ((t & 1) === c) {
        if (!(nk < n || (nk === n && k < i))) continue;
        key = 2 ** 26 + nk * 8192 + k; // same colour ahead of us: after every older-colour ticket
      } else {
        if (mineFirst) continue; // the other colour is the newer phase: behind us
        key = nk * 8192 + k;
      }
      ahead++;
      if (key > bestKey) {
        bestKey = key;
        best = k;
        bestTicket = t;
      }
    }
    if (best < 0) this.block(cell, value, j);
    else {
      this.block(slotBase(best) + S.TICKET, bestTicket, best);
      this.ahead = ahead;
      this.countAtBlock = count;
    }
    this.colourAtBlock = colour;
    return BLOCKED;
  }

  /** The first `slots` slots' cells in one read, when the backend can (else undefined). */
  private loadMany(slots: number): Int32Array | undefined {
    const cells = this.cells;
    if (cells.loadMany === undefined) return undefined;
    const count = slots * SLOT_CELLS;
    if (this.many === undefined || this.many.length < count) this.many = new Int32Array(count);
    cells.loadMany(slotBase(0), count, this.many);
    return this.many;
  }

  private block(cell: number, value: number, slot: number): number {
    this.ahead = 0;
    this.colourAtBlock = -1;
    this.blockCell = cell;
    this.blockValue = value;
    this.blockSlot = slot;
    return BLOCKED;
  }

  /**
   * Wake participants sleeping on a cell of slot `slot`, but only when its sleeper count says
   * someone sleeps (a futex wake costs a syscall). The count is read after the cell was
   * stored; a sleeper raises the count before re-reading the cell, so one of the two sees the
   * other (both seq-cst).
   */
  private wake(slot: number, cell: number): void {
    const cells = this.cells;
    if (cells.notify !== undefined && cells.load(slotBase(slot) + S.SLEEPERS) !== 0) {
      cells.notify(cell, Number.POSITIVE_INFINITY);
    }
  }

  private recordMaxTicket(n: number): void {
    const cells = this.cells;
    let cur = cells.load(H.MAX_TICKET);
    if (cells.compareExchange === undefined) {
      if (n > cur) cells.store(H.MAX_TICKET, n);
      return;
    }
    while (n > cur) {
      const seen = cells.compareExchange(H.MAX_TICKET, cur, n);
      if (seen === cur) return;
      cur = seen;
    }
  }
}
