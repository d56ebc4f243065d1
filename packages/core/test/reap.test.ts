import { describe, expect, test } from 'vitest';
import {
  H,
  type Identity,
  openOn,
  packTicket,
  reaperClaim,
  reaperToken,
  S,
  slotBase,
} from '../src/index.js';
import { createReferenceCells } from '../src/reference.js';

/** A backend over the reference memory whose participants die when the test says so. */
function world(slots: number) {
  const cells = createReferenceCells(slots);
  const dead = new Set<number>();
  let next = 1000;
  const open = () => {
    const id: Identity = { pid: next++, tid: 0, startTime: 0 };
    return {
      pid: id.pid,
      mutex: openOn({ cells, identity: () => id, isAlive: (o) => !dead.has(o.pid) }),
    };
  };
  return { cells, dead, open };
}

describe('reapDead()', () => {
  test('a holder that died is reaped at once: its slot is freed and the next acquirer sees ownerDied', () => {
    const { dead, open } = world(4);
    const a = open();
    const b = open();
    b.mutex.lockSync();
    dead.add(b.pid);
    expect(a.mutex.reapDead()).toBe(1);
    const snap = a.mutex.inspect();
    expect(snap.holder).toBeNull();
    expect(snap.ownerDied).toBe('owner-died');
    expect(snap.slots[b.mutex.slot].owner).toBeNull();
    const lease = a.mutex.tryLock();
    expect(lease?.ownerDied).toBe(true);
    lease!.markConsistent();
    lease!.release();
    expect(a.mutex.inspect().ownerDied).toBe('consistent');
    a.mutex.close();
  });

  test('a dead waiter is withdrawn without touching the holder or the colour', () => {
    const { dead, open } = world(4);
    const a = open();
    const b = open();
    const c = open();
    const lease = a.mutex.lockSync();
    const colour = a.mutex.inspect().colour;
    expect(() => b.mutex.lockSync({ timeout: 0 })).toThrow(); // leaves nothing behind
    dead.add(b.pid);
    expect(c.mutex.reapDead()).toBe(1);
    const snap = c.mutex.inspect();
    expect(snap.holder).toBe(a.mutex.slot);
    expect(snap.colour).toBe(colour);
    expect(snap.ownerDied).toBe('consistent');
    lease.release();
    a.mutex.close();
    c.mutex.close();
  });

  test('live participants are never reaped, and a backend that cannot tell liveness reaps nothing', () => {
    const { open } = world(4);
    const a = open();
    const b = open();
    const lease = b.mutex.lockSync();
    expect(a.mutex.reapDead()).toBe(0);
    expect(a.mutex.inspect().holder).toBe(b.mutex.slot);
    lease.release();

    const cells = createReferenceCells(2);
    const x = openOn({ cells, identity: () => ({ pid: 7, tid: 0, startTime: 0 }) });
    const y = openOn({ cells, identity: () => ({ pid: 8, tid: 0, startTime: 0 }) });
    y.lockSync();
    expect(x.reapDead()).toBe(0);
    for (const m of [a, b]) m.mutex.close();
  });

  test('reapDead() on a closed instance is BAKERY_CLOSED', () => {
    const { open } = world(2);
    const a = open();
    a.mutex.close();
    expect(() => a.mutex.reapDead()).toThrow(expect.objectContaining({ code: 'BAKERY_CLOSED' }));
  });
});

describe('damage that passes validation never wedges the lock or lets two in', () => {
  test('HIGH_WATER lowered below a live participant: its next doorway raises it back, so the others see it again', () => {
    const cells = createReferenceCells(4);
    const a = openOn({ cells });
    const b = openOn({ cells });
    expect(b.slot).toBe(1);
    cells.store(H.HIGH_WATER, 1); // hides b from a's scans
    expect(a.inspect().anomalies).toContain('slot 1 is in use above HIGH_WATER 1');
    const lease = b.lockSync();
    expect(cells.load(H.HIGH_WATER)).toBe(2);
    // Without the repair a would scan slot 0 only and take the lock while b holds it.
    expect(a.tryLock()).toBeNull();
    lease.release();
    a.lockSync().release();
    expect(a.inspect().anomalies).toEqual([]);
    a.close();
    b.close();
  });

  test('HIGH_WATER far above the capacity: scans, reapDead and inspect stay within the slots', () => {
    const cells = createReferenceCells(4);
    const a = openOn({ cells });
    cells.store(H.HIGH_WATER, 2 ** 30);
    a.lockSync().release();
    const l = a.tryLock();
    expect(l).not.toBeNull();
    l!.release();
    const t0 = performance.now();
    expect(a.inspect().anomalies).toContain(`HIGH_WATER ${2 ** 30} is outside 0..4`);
    a.reapDead();
    expect(performance.now() - t0).toBeLessThan(1000); // a loop to 2^30 would take seconds
    a.close();
  });

  test('a ticket and CHOOSING left on a free slot are flagged, cleared by a stuck waiter after staleAfterMs, and by reapDead()', () => {
    const cells = createReferenceCells(4);
    const a = openOn({ cells }, { staleAfterMs: 40 });
    const b = openOn({ cells });
    b.close(); // slot 1 free again, below HIGH_WATER
    const colour = cells.load(H.COLOUR);
    cells.store(slotBase(1) + S.TICKET, packTicket(1, colour)); // a phantom competitor
    expect(a.inspect().anomalies).toContain('slot 1 is free but has a ticket left on it');
    const lease = a.lockSync({ timeout: 5_000 }); // waits behind it, then clears it
    lease.release();
    expect(cells.load(slotBase(1) + S.TICKET)).toBe(0);
    expect(cells.load(slotBase(1) + S.OWNER)).toBe(0);
    cells.store(slotBase(1) + S.CHOOSING, 1);
    expect(a.reapDead()).toBe(1);
    expect(cells.load(slotBase(1) + S.CHOOSING)).toBe(0);
    expect(a.inspect().anomalies).toEqual([]);
    a.close();
  });

  test('claiming a free slot that has state left on it clears that state first (it is ours now)', () => {
    const cells = createReferenceCells(2);
    cells.store(slotBase(0) + S.TICKET, packTicket(1, 0));
    cells.store(slotBase(0) + S.CHOOSING, 1);
    const a = openOn({ cells });
    expect(a.slot).toBe(0);
    expect(cells.load(slotBase(0) + S.TICKET)).toBe(0);
    expect(cells.load(slotBase(0) + S.CHOOSING)).toBe(0);
    const b = openOn({ cells });
    const l = b.tryLock(); // nothing left for it to wait on
    expect(l).not.toBeNull();
    l!.release();
    a.close();
    b.close();
  });

  test('a HOLDER, COLOUR or OWNER_DIED out of range is flagged by inspect', () => {
    const cells = createReferenceCells(2);
    const a = openOn({ cells });
    cells.store(H.HOLDER, 9);
    cells.store(H.COLOUR, 5);
    cells.store(H.OWNER_DIED, 7);
    expect(a.inspect().anomalies).toEqual([
      'HOLDER 9 names no claimed slot',
      'COLOUR 5 is neither 0 nor 1',
      'OWNER_DIED 7 is not 0, 1 or 2',
    ]);
    a.close();
  });
});

describe('the REAPER word: a token unique per claim', () => {
  /** A dead holder (b) for `c` to reap, plus a participant `a`, on a fresh world. */
  function setup() {
    const w = world(4);
    const a = w.open();
    const b = w.open();
    const c = w.open();
    b.mutex.lockSync();
    w.dead.add(b.pid);
    const gen = (m: { mutex: { slot: number } }) =>
      w.cells.load(slotBase(m.mutex.slot) + S.CLAIM_GEN);
    return { ...w, a, b, c, gen };
  }

  test("a live reaper's token keeps others from reaping at the same time", () => {
    const { cells, a, b, c, gen } = setup();
    cells.store(H.REAPER, reaperToken(a.mutex.slot, gen(a))); // a is reaping (and alive)
    expect(c.mutex.reapDead()).toBe(0);
    expect(c.mutex.inspect().slots[b.mutex.slot]!.owner).not.toBeNull();
    cells.store(H.REAPER, 0);
    expect(c.mutex.reapDead()).toBe(1);
    expect(cells.load(H.REAPER)).toBe(0);
    a.mutex.close();
    c.mutex.close();
  });

  test('the token of a reaper that died mid-reap, or whose claim is over, is cleared and the reap proceeds', () => {
    const { cells, dead, a, b, c, gen } = setup();
    cells.store(H.REAPER, reaperToken(a.mutex.slot, gen(a)));
    dead.add(a.pid); // a died holding REAPER
    expect(c.mutex.reapDead()).toBe(2); // a and b
    expect(cells.load(H.REAPER)).toBe(0);
    expect(c.mutex.inspect().slots[b.mutex.slot]!.owner).toBeNull();
    c.mutex.close();
  });

  test('no ABA: a token of an earlier claim of a slot that a live participant has claimed again is stale, and cleared', () => {
    const { cells, open, a, b, c, gen } = setup();
    const slot = a.mutex.slot;
    const old = reaperToken(slot, gen(a));
    a.mutex.close();
    const d = open(); // reclaims a's slot: a new generation, a live owner
    expect(d.mutex.slot).toBe(slot);
    expect(gen(d)).not.toBe(reaperClaim(old).gen);
    cells.store(H.REAPER, old);
    expect(c.mutex.reapDead()).toBe(1); // b, although "slot + 1" would name live d
    expect(c.mutex.inspect().slots[b.mutex.slot]!.owner).toBeNull();
    expect(c.mutex.inspect().slots[slot]!.owner).not.toBeNull(); // d untouched
    d.mutex.close();
    c.mutex.close();
  });

  test('a token that names no slot (damage) is cleared', () => {
    const { cells, b, c } = setup();
    cells.store(H.REAPER, reaperToken(4000, 1));
    expect(c.mutex.reapDead()).toBe(1);
    expect(c.mutex.inspect().slots[b.mutex.slot]!.owner).toBeNull();
    c.mutex.close();
  });
});

test('a reaper never frees a new claim of the slot it judged: the claim generation is re-checked under REAPER', () => {
  const cells = createReferenceCells(4);
  const victimId: Identity = { pid: 4242, tid: 0, startTime: 7 };
  let victim = openOn({ cells, identity: () => victimId });
  const slot = victim.slot;
  let reclaimed = false;
  // The liveness answer comes from a probe that raced with the victim closing and claiming the
  // same slot again under the same identity (what a lease probe between a close and a re-claim
  // of one thread sees): "dead" once, and by the time the reaper re-checks, a new live claim.
  const reaper = openOn({
    cells,
    identity: () => ({ pid: 1, tid: 0, startTime: 0 }),
    isAlive: (o, s) => {
      if (o.pid !== victimId.pid || s !== slot) return true;
      if (reclaimed) return false; // a stale "dead" for the new claim too: only the gen tells
      reclaimed = true;
      victim.close();
      victim = openOn({ cells, identity: () => victimId });
      return false;
    },
  });
  expect(reaper.reapDead()).toBe(0);
  expect(victim.slot).toBe(slot);
  expect(cells.load(slotBase(slot) + S.OWNER)).toBe(victimId.pid);
  const lease = victim.lockSync();
  expect(reaper.tryLock()).toBeNull();
  lease.release();
  victim.close();
  reaper.close();
});
