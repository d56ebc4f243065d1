import { describe, expect, test } from 'vitest';
import {
  type BakeryError,
  H,
  type Identity,
  OUTSIDER_SLOT,
  type OutsiderLock,
  openOn,
  reaperToken,
  S,
  SLOT_WANTED_FRESH_MS,
  slotBase,
} from '../src/index.js';
import { createReferenceCells } from '../src/reference.js';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as BakeryError).code;
  }
  return undefined;
}

async function codeOfAsync(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (err) {
    return (err as BakeryError).code;
  }
  return undefined;
}

/** Copies of every cell, to show that something wrote nothing. */
function bytes(cells: { length: number; load(i: number): number }): number[] {
  return Array.from({ length: cells.length }, (_, i) => cells.load(i));
}

/**
 * Participants over one reference memory that die when the test says so, optionally with an
 * outsider lock (a stand-in for the kernel's OFD lock: held by one participant until it leaves
 * or dies).
 */
function world(slots: number, withOutsider: boolean) {
  const cells = createReferenceCells(slots);
  const dead = new Set<number>();
  let holder = 0; // pid holding the outsider lock, 0 = none
  let next = 1000;
  const outsiderOf = (pid: number): OutsiderLock => ({
    enter: () => {
      if (holder !== 0 && !dead.has(holder)) return false;
      holder = pid;
      return true;
    },
    leave: () => {
      if (holder === pid) holder = 0;
    },
    held: () => holder !== 0 && holder !== pid && !dead.has(holder),
  });
  const open = () => {
    const id: Identity = { pid: next++, tid: 0, startTime: 0 };
    return {
      pid: id.pid,
      mutex: openOn({
        cells,
        identity: () => id,
        isAlive: (o) => !dead.has(o.pid),
        ...(withOutsider ? { outsider: outsiderOf(id.pid) } : {}),
      }),
    };
  };
  return { cells, dead, open, holder: () => holder, setHolder: (p: number) => (holder = p) };
}

describe('a full slot table', () => {
  test('an open on a full table succeeds without a slot and writes nothing; tryLock on a free lock is BAKERY_NO_FREE_SLOT, on a busy one null, and both write nothing', () => {
    const { cells, open } = world(2, false);
    const a = open();
    const b = open();
    const before = bytes(cells);
    const c = open();
    expect(c.mutex.slot).toBe(-1);
    expect(c.mutex.inspect().self).toBe(-1);
    expect(bytes(cells)).toEqual(before);
    expect(codeOf(() => c.mutex.tryLock())).toBe('BAKERY_NO_FREE_SLOT');
    expect(bytes(cells)).toEqual(before);
    const lease = a.mutex.lockSync();
    const held = bytes(cells);
    expect(c.mutex.tryLock()).toBeNull();
    expect(bytes(cells)).toEqual(held);
    lease.release();
    for (const m of [a, b, c]) m.mutex.close();
  });

  test('lockSync and lock wait for a slot within their timeout, then BAKERY_NO_FREE_SLOT, asking for a slot meanwhile', async () => {
    const { cells, open } = world(1, false);
    const a = open();
    const c = open();
    const t0 = performance.now();
    expect(codeOf(() => c.mutex.lockSync({ timeout: 60 }))).toBe('BAKERY_NO_FREE_SLOT');
    expect(performance.now() - t0).toBeGreaterThanOrEqual(59);
    expect(cells.load(H.SLOT_WANTED)).not.toBe(0);
    expect(a.mutex.inspect().slotWanted).toBe(true);
    expect(await codeOfAsync(c.mutex.lock({ timeout: 30 }))).toBe('BAKERY_NO_FREE_SLOT');
    const ac = new AbortController();
    const aborted = c.mutex.lock({ signal: ac.signal });
    setTimeout(() => ac.abort(), 20);
    expect(await codeOfAsync(aborted)).toBe('BAKERY_ABORTED');
    expect(c.mutex.slot).toBe(-1);
    a.mutex.close();
    c.mutex.close();
  });

  test('a waiting lock() takes the slot a close() frees, and keeps it', async () => {
    const { open } = world(1, false);
    const a = open();
    const c = open();
    const waiting = c.mutex.lock({ timeout: 5_000 });
    setTimeout(() => a.mutex.close(), 20);
    const lease = await waiting;
    expect(c.mutex.slot).toBe(0);
    lease.release();
    expect(c.mutex.slot).toBe(0); // nobody else waits: the slot stays
    c.mutex.close();
  });

  test('while someone waits for a slot every release frees the releaser’s slot, which then claims one again at its next lock', async () => {
    const { cells, open } = world(1, false);
    const a = open();
    const c = open();
    const waiting = c.mutex.lock({ timeout: 5_000 });
    // c asks for a slot at its first look; a's release then gives a's up.
    await new Promise((r) => setTimeout(r, 20));
    expect(cells.load(H.SLOT_WANTED)).not.toBe(0);
    a.mutex.lockSync().release();
    expect(a.mutex.slot).toBe(-1);
    const lease = await waiting;
    expect(c.mutex.slot).toBe(0);
    const again = a.mutex.lock({ timeout: 5_000 });
    await new Promise((r) => setTimeout(r, 20));
    lease.release(); // a asks now: c gives its slot up
    expect(c.mutex.slot).toBe(-1);
    (await again).release();
    expect(a.mutex.slot).toBe(0);
    a.mutex.close();
    c.mutex.close();
  });

  test('a stale request for a slot frees nothing and is cleared by the next release', () => {
    const { cells, open } = world(1, false);
    const a = open();
    cells.store(H.SLOT_WANTED, (Date.now() - 2 * SLOT_WANTED_FRESH_MS) & 0x7fffffff || 1);
    a.mutex.lockSync().release();
    expect(a.mutex.slot).toBe(0);
    expect(cells.load(H.SLOT_WANTED)).toBe(0);
    a.mutex.close();
  });
});

describe('reaping without a slot', () => {
  test('an open on a table full of dead owners reaps one and claims its slot — with the outsider lock, which it leaves', () => {
    const { cells, dead, open, holder } = world(2, true);
    const a = open();
    const b = open();
    dead.add(a.pid);
    dead.add(b.pid);
    const c = open();
    expect(c.mutex.slot).toBeGreaterThanOrEqual(0);
    expect(holder()).toBe(0);
    expect(cells.load(H.REAPER)).toBe(0);
    expect(cells.load(H.OUTSIDER_GEN)).toBe(1);
    c.mutex.close();
  });

  test('owners that died between their claim and raising HIGH_WATER are reaped from a full table: a newcomer gets a slot, and reapDead() frees the rest', () => {
    // Found by the schedule explorer: three incarnations of one participant, each killed right
    // after claiming a slot and before raising HIGH_WATER, left every slot claimed and the mark
    // at 0. Reapers scanned below the mark only, so every newcomer waited for a slot forever.
    const { cells, dead, open } = world(3, true);
    for (let s = 0; s < 3; s++) {
      const b = slotBase(s);
      cells.store(b + S.OWNER, 900 + s); // what a claim's compareExchange wrote, and no more
      cells.store(b + S.CLAIM_GEN, 1);
      dead.add(900 + s);
    }
    expect(cells.load(H.HIGH_WATER)).toBe(0);
    const c = open();
    expect(c.mutex.slot).toBeGreaterThanOrEqual(0);
    c.mutex.lockSync({ timeout: 1_000 }).release();
    // The open's reap freed all three; only c holds a slot now.
    const owners = () =>
      c.mutex
        .inspect()
        .slots.filter((s) => s.owner !== null)
        .map((s) => s.owner!.pid);
    expect(owners()).toEqual([c.pid]);
    // One more such death, above the mark: reapDead() (`bakery reap`) frees it too.
    expect(cells.load(H.HIGH_WATER)).toBe(c.mutex.slot + 1);
    cells.store(slotBase(2) + S.OWNER, 903);
    dead.add(903);
    expect(c.mutex.reapDead()).toBe(1);
    expect(owners()).toEqual([c.pid]);
    c.mutex.close();
  });

  test('without an outsider lock a participant without a slot reaps nothing (it only waits), and tryLock says so', () => {
    const { dead, open } = world(1, false);
    const a = open();
    dead.add(a.pid);
    const c = open();
    expect(c.mutex.slot).toBe(-1);
    expect(c.mutex.reapDead()).toBe(0);
    expect(codeOf(() => c.mutex.tryLock())).toBe('BAKERY_NO_FREE_SLOT');
    expect(c.mutex.inspect().slots[0]!.owner?.pid).toBe(a.pid); // still there
    c.mutex.close();
  });

  test('a waiting lockSync reaps a dead holder through the outsider lock, gets its slot, and sees ownerDied', () => {
    const { dead, open } = world(1, true);
    const a = open();
    const c = open();
    a.mutex.lockSync();
    dead.add(a.pid);
    const lease = c.mutex.lockSync({ timeout: 2_000 });
    expect(lease.ownerDied).toBe(true);
    lease.markConsistent();
    lease.release();
    c.mutex.close();
  });

  test('another outsider holding the outsider lock: no reaping now; its token in REAPER is live while it holds the lock and its generation is current', () => {
    const { cells, dead, open, setHolder } = world(2, true);
    const a = open();
    const b = open();
    const slotted = open(); // no slot either
    dead.add(a.pid);
    // A live outsider (pid 5) holds the lock and REAPER with a current generation.
    setHolder(5);
    cells.store(H.OUTSIDER_GEN, 7);
    cells.store(H.REAPER, reaperToken(OUTSIDER_SLOT, 7));
    expect(slotted.mutex.slot).toBe(-1);
    expect(slotted.mutex.reapDead()).toBe(0); // cannot enter
    expect(b.mutex.reapDead()).toBe(0); // a slotted reaper respects the live outsider's token
    expect(cells.load(H.REAPER)).toBe(reaperToken(OUTSIDER_SLOT, 7));
    // The outsider dies: its lock is free, so its token is gone.
    dead.add(5);
    expect(b.mutex.reapDead()).toBe(1);
    expect(cells.load(H.REAPER)).toBe(0);
    b.mutex.close();
    slotted.mutex.close();
  });

  test('an outsider token of an earlier generation is stale even while the lock is held (no ABA across outsider incarnations)', () => {
    const { cells, dead, open, setHolder } = world(2, true);
    const a = open();
    const b = open();
    dead.add(a.pid);
    setHolder(5); // a live outsider of generation 8 (not yet in REAPER)
    cells.store(H.OUTSIDER_GEN, 8);
    cells.store(H.REAPER, reaperToken(OUTSIDER_SLOT, 7)); // left by generation 7, now dead
    expect(b.mutex.reapDead()).toBe(1);
    expect(cells.load(H.REAPER)).toBe(0);
    expect(cells.load(slotBase(a.mutex.slot) + S.OWNER)).toBe(0);
    b.mutex.close();
  });
});

describe("claim: 'lock'", () => {
  test('an instance opened with it holds no slot and writes nothing until its first lock, which claims one; a bad value is BAKERY_INVALID_ARGUMENT', () => {
    const cells = createReferenceCells(2);
    const before = bytes(cells);
    const m = openOn({ cells }, { claim: 'lock' });
    expect(m.slot).toBe(-1);
    expect(bytes(cells)).toEqual(before);
    m.lockSync().release();
    expect(m.slot).toBe(0);
    m.close();
    for (const claim of ['', 'Lock', 'never', 0, true, {}]) {
      expect(codeOf(() => openOn({ cells }, { claim: claim as never }))).toBe(
        'BAKERY_INVALID_ARGUMENT',
      );
    }
  });
});
