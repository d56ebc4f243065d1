import { describe, expect, test } from 'vitest';
import {
  type Cells,
  H,
  isRetained,
  openOn,
  S,
  slotBase,
  TICKET_RETAINED,
  ticketNumber,
} from '../src/index.js';
import { createReferenceCells } from '../src/reference.js';
import { codeOf } from './helpers.js';

/** Doorways run by a participant (the trace hook), to tell a re-entry from an acquisition. */
function counted(extra: object = {}) {
  const seen = { doorways: 0 };
  return {
    seen,
    options: {
      handoff: 'batched' as const,
      trace: {
        doorwayEnd() {
          seen.doorways++;
        },
      },
      ...extra,
    },
  };
}

const ticketOf = (cells: Cells, slot: number) => cells.load(slotBase(slot) + S.TICKET);

describe("handoff: 'batched'", () => {
  test('a release keeps the ticket (retained, colour passed); the next lock re-enters without a doorway, and maxBatch ends the batch', () => {
    const cells = createReferenceCells(4);
    const { seen, options } = counted({ maxBatch: 3 });
    const a = openOn({ cells }, options);
    expect(a.handoff).toBe('batched');
    a.lockSync().release();
    expect(seen.doorways).toBe(1);
    const t = ticketOf(cells, a.slot);
    expect(isRetained(t)).toBe(true);
    expect(ticketNumber(t)).toBe(1);
    // The exit's colour write happened at the release: the ticket's colour is not the shared one.
    expect(cells.load(H.COLOUR)).not.toBe(t & 1);
    expect(a.inspect().slots[a.slot]!.retained).toBe(true);
    // Three re-entries (maxBatch), no doorway; the release after the third leaves for good.
    for (let k = 0; k < 3; k++) {
      const lease = a.lockSync();
      expect(isRetained(ticketOf(cells, a.slot))).toBe(false);
      lease.release();
    }
    expect(seen.doorways).toBe(1);
    expect(ticketOf(cells, a.slot)).toBe(0);
    a.lockSync().release();
    expect(seen.doorways).toBe(2);
    expect(cells.load(H.ACQUISITIONS)).toBe(5);
    a.close();
    expect(ticketOf(cells, 0)).toBe(0);
  });

  test('another participant revokes a retained ticket (tryLock succeeds on a lock nobody holds); the owner then queues like anyone', () => {
    const cells = createReferenceCells(4);
    const { seen, options } = counted();
    const a = openOn({ cells }, options);
    const b = openOn({ cells });
    a.lockSync().release();
    expect(isRetained(ticketOf(cells, a.slot))).toBe(true);
    const lb = b.tryLock();
    expect(lb).not.toBeNull();
    expect(ticketOf(cells, a.slot)).toBe(0);
    // a's retained ticket is gone: its tryLock finds the lock held, writes nothing.
    expect(a.tryLock()).toBeNull();
    expect(ticketOf(cells, a.slot)).toBe(0);
    lb!.release();
    a.lockSync().release();
    expect(seen.doorways).toBe(2);
    a.close();
    b.close();
  });

  test('the re-entry is one compareExchange: a revocation that wins it sends the owner through the doorway', () => {
    const cells = createReferenceCells(4);
    const { seen, options } = counted();
    const a = openOn({ cells }, options);
    a.lockSync().release();
    const t = ticketOf(cells, a.slot);
    // A waiter's revocation, as the scan does it.
    expect(cells.compareExchange!(slotBase(a.slot) + S.TICKET, t, 0)).toBe(t);
    a.lockSync().release();
    expect(seen.doorways).toBe(2);
    // A revocation that comes late (the owner re-took: the cell no longer holds t) changes nothing.
    const t2 = ticketOf(cells, a.slot);
    const lease = a.lockSync();
    const held = ticketOf(cells, a.slot);
    expect(held).toBe(t2 & ~TICKET_RETAINED);
    expect(cells.compareExchange!(slotBase(a.slot) + S.TICKET, t2, 0)).toBe(held);
    expect(ticketOf(cells, a.slot)).toBe(held);
    lease.release();
    a.close();
  });

  test('close() and freeing the slot give a retained ticket up; lock() re-enters too', async () => {
    const cells = createReferenceCells(2);
    const { seen, options } = counted();
    const a = openOn({ cells }, options);
    (await a.lock()).release();
    (await a.lock()).release();
    expect(seen.doorways).toBe(1);
    expect(isRetained(ticketOf(cells, a.slot))).toBe(true);
    const slot = a.slot;
    a.close();
    expect(ticketOf(cells, slot)).toBe(0);
    expect(cells.load(slotBase(slot) + S.OWNER)).toBe(0);
  });

  test('strict (the default) never retains; bad options are BAKERY_INVALID_ARGUMENT', () => {
    const cells = createReferenceCells(2);
    const a = openOn({ cells });
    expect(a.handoff).toBe('strict');
    a.lockSync().release();
    expect(ticketOf(cells, a.slot)).toBe(0);
    a.close();
    for (const bad of [
      { handoff: 'fast' },
      { handoff: 'batched', maxBatch: 0 },
      { handoff: 'batched', maxBatch: 1.5 },
      { handoff: 'batched', maxBatch: 2 ** 21 },
      { handoff: 'batched', maxBatchMs: 0 },
      { handoff: 'batched', maxBatchMs: Number.POSITIVE_INFINITY },
      { handoff: 'batched', maxBatchMs: Number.NaN },
    ]) {
      expect(
        codeOf(() => openOn({ cells }, bad as object)),
        JSON.stringify(bad),
      ).toBe('BAKERY_INVALID_ARGUMENT');
    }
    // Nothing was claimed by the refused opens.
    for (let s = 0; s < 2; s++) expect(cells.load(slotBase(s) + S.OWNER)).toBe(0);
  });

  test('cells without compareExchange (positional access) run batched as strict, and say so', () => {
    const base = createReferenceCells(2);
    // The same memory seen through positional-style cells: load/store and a registry lock only.
    const positional: Cells = {
      length: base.length,
      load: (i) => base.load(i),
      store: (i, v) => base.store(i, v),
      withRegistryLock: (fn) => fn(),
    };
    base.store(H.ACCESS, 2);
    const a = openOn({ cells: positional }, { handoff: 'batched' });
    expect(a.handoff).toBe('strict');
    a.lockSync().release();
    expect(base.load(slotBase(a.slot) + S.TICKET)).toBe(0);
    a.close();
  });
});
