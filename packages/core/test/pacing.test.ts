import { describe, expect, test } from 'vitest';
import { Acquirer, BLOCKED } from '../src/acquirer.js';
import { BLACK, H, packTicket, S, slotBase, WHITE } from '../src/layout.js';
import { farSleepMs, MIN_SLEEP_MS, nextHandoffEstimate, nextPollCap } from '../src/pacing.js';
import { createReferenceCells, ReferenceCells } from '../src/reference.js';

describe('polling policy (pacing.ts)', () => {
  test('the time per acquisition falls to a faster sample at once and rises by an eighth of a slower one', () => {
    expect(nextHandoffEstimate(0, 3)).toBe(3);
    expect(nextHandoffEstimate(4, 1)).toBe(1);
    expect(nextHandoffEstimate(1, 9)).toBe(2);
  });

  test('a far waiter sleeps 90% of the expected time but never past the moment it becomes next', () => {
    expect(farSleepMs(50, 1, 1000)).toBeCloseTo(45);
    for (let left = 2; left <= 100; left++) {
      expect(farSleepMs(left, 2, 1e9)).toBeLessThanOrEqual((left - 1) * 2);
    }
    expect(farSleepMs(2, 2, 1e9)).toBe(2);
    expect(farSleepMs(1000, 1, 125)).toBe(125);
    expect(farSleepMs(2, 0.001, 125)).toBe(MIN_SLEEP_MS);
  });

  test('the next waiter polls at least every half acquisition once that time is known', () => {
    expect(nextPollCap(0, 0.02, 2)).toBe(2);
    expect(nextPollCap(1, 0.02, 2)).toBe(0.5);
    expect(nextPollCap(10, 0.02, 2)).toBe(2);
    expect(nextPollCap(0.01, 1, 4)).toBe(1);
  });
});

/** Reference cells that count loads and can offer loadMany (as shm does). */
class CountingCells extends ReferenceCells {
  loads = 0;
  manyCalls = 0;
  override load(i: number): number {
    this.loads++;
    return super.load(i);
  }
}
class ManyCells extends CountingCells {
  loadMany(from: number, count: number, out: Int32Array): void {
    this.manyCalls++;
    for (let k = 0; k < count; k++) out[k] = Atomics.load(this.array, from + k);
  }
}

/** A lock with slots 0..3 queued (tickets 1..4 of the shared colour), slot 2 holding. */
function queue<T extends ReferenceCells>(make: (b: SharedArrayBuffer) => T): T {
  const ref = createReferenceCells(8);
  const buf = new SharedArrayBuffer(ref.array.byteLength);
  new Int32Array(buf).set(ref.array);
  const cells = make(buf);
  cells.store(H.HIGH_WATER, 6);
  cells.store(H.COLOUR, WHITE);
  cells.store(H.ACQUISITIONS, 41);
  const order = [2, 0, 3, 1];
  for (const [k, slot] of order.entries()) {
    cells.store(slotBase(slot) + S.TICKET, packTicket(k + 1, WHITE));
  }
  cells.store(H.HOLDER, 3);
  return cells;
}

describe('what the scan tells a polling waiter', () => {
  test('blocked behind a queue: its predecessor, how many are ahead, the acquisition count and the colour it read', () => {
    const cells = queue((b) => new ReferenceCells(b));
    const acq = new Acquirer(cells, 5, undefined, cells.load(H.CAPACITY));
    acq.begin();
    expect(acq.advance()).toBe(BLOCKED);
    expect(acq.n).toBe(5);
    expect(acq.blockSlot).toBe(1); // ticket 4, the last one ahead
    expect(acq.blockCell).toBe(slotBase(1) + S.TICKET);
    expect(acq.ahead).toBe(4);
    expect(acq.countAtBlock).toBe(41);
    expect(acq.colourAtBlock).toBe(WHITE);
  });

  test('older-colour tickets count as ahead; blocked on a doorway in progress, nothing is counted', () => {
    const cells = queue((b) => new ReferenceCells(b));
    cells.store(slotBase(4) + S.TICKET, packTicket(3, BLACK)); // the older phase
    cells.store(H.COLOUR, BLACK);
    const acq = new Acquirer(cells, 5, undefined, cells.load(H.CAPACITY));
    acq.begin();
    expect(acq.advance()).toBe(BLOCKED);
    expect(acq.c).toBe(BLACK);
    // Our BLACK ticket is behind every WHITE one only when WHITE is the older phase: the
    // shared colour is BLACK and we are BLACK, so the WHITE tickets go first.
    expect(acq.ahead).toBe(5);
    expect(acq.colourAtBlock).toBe(BLACK);

    const fresh = queue((b) => new ReferenceCells(b));
    fresh.store(slotBase(0) + S.CHOOSING, 1);
    const waiting = new Acquirer(fresh, 5, undefined, fresh.load(H.CAPACITY));
    waiting.begin();
    expect(waiting.advance()).toBe(BLOCKED);
    expect(waiting.blockCell).toBe(slotBase(0) + S.CHOOSING);
    expect(waiting.ahead).toBe(0);
    expect(waiting.colourAtBlock).toBe(-1);
  });

  test('with loadMany the doorway and the choice of where to sleep read the tickets in one call, with the same result', () => {
    const plain = queue((b) => new CountingCells(b));
    const many = queue((b) => new ManyCells(b));
    const a = new Acquirer(plain, 5, undefined, plain.load(H.CAPACITY));
    const b = new Acquirer(many, 5, undefined, many.load(H.CAPACITY));
    a.begin();
    b.begin();
    expect(a.advance()).toBe(BLOCKED);
    expect(b.advance()).toBe(BLOCKED);
    expect([b.n, b.blockCell, b.ahead, b.countAtBlock]).toEqual([
      a.n,
      a.blockCell,
      a.ahead,
      a.countAtBlock,
    ]);
    expect(many.manyCalls).toBe(2);
    // The per-slot ticket reads of the doorway and of blockBehind (6 slots each) are gone.
    expect(plain.loads - many.loads).toBe(6 + 5);
  });
});
