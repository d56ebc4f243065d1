import assert from 'node:assert/strict';
import type { Fixture, Report } from './types.js';

/** Checks several features share. */

/** Every participant reported no error and never found the critical section occupied. */
export function assertClean(reports: Report[]): void {
  for (const r of reports) {
    assert.deepEqual(r.errors, [], `participant ${r.id} reported errors`);
    assert.equal(r.violations, 0, `participant ${r.id} found the critical section occupied`);
  }
}

export function assertNoTicketOf(f: Fixture, slot: number): void {
  const s = f.inspect().slots[slot]!;
  assert.equal(s.ticket, 0, `slot ${slot} left a ticket behind`);
  assert.equal(s.choosing, false, `slot ${slot} left choosing set`);
}

/**
 * No overtaking: when A's doorway ended before B's doorway started, A entered first. Stamps are
 * taken outside the intervals they bound (start before choosing = 1, end after choosing = 0,
 * entry inside the critical section), so a late stamp can only hide a pair, never invent one.
 */
export function findOvertaking(reports: Report[]): string | null {
  const all: { who: string; start: bigint; end: bigint; enter: bigint }[] = [];
  for (const r of reports) {
    r.records?.forEach(([s, e, n], k) => {
      // A re-entry without a doorway (batched) has no place in the queue to check.
      if (s === '') return;
      all.push({ who: `${r.id}#${k}`, start: BigInt(s), end: BigInt(e), enter: BigInt(n) });
    });
  }
  all.sort((a, b) => (a.enter < b.enter ? -1 : a.enter > b.enter ? 1 : 0));
  // Walk from the last entry backwards, tracking the earliest doorway end among later entries.
  let minEnd: (typeof all)[number] | null = null;
  for (let k = all.length - 1; k >= 0; k--) {
    const b = all[k]!;
    if (minEnd !== null && minEnd.end < b.start) {
      return `${minEnd.who} finished its doorway before ${b.who} started its own, yet entered after it`;
    }
    if (minEnd === null || b.end < minEnd.end) minEnd = b;
  }
  return null;
}

/** What {@link countBypass} found: the most entries of one participant past one waiter. */
export interface Bypass {
  /** The largest count of entries by one participant while another waited (0: none). */
  max: number;
  /** Who passed whom that many times (empty when max is 0). */
  where: string;
  /** Acquisitions that ran no doorway (batched re-entries). */
  reentries: number;
}

/**
 * The bypass bound, counted: for every acquisition with a doorway, how many times each other
 * participant entered after that doorway ended and before the acquisition entered. Critical
 * sections are totally ordered by their entry stamps; an entry is counted only when some earlier
 * critical section's exit stamp is already later than the waiter's doorway-end stamp (so the
 * entry surely came after the doorway ended: stamps taken late can hide one entry per waiter,
 * never invent one).
 */
export function countBypass(reports: Report[]): Bypass {
  const all: { id: number; end: bigint | null; enter: bigint; exit: bigint }[] = [];
  let reentries = 0;
  for (const r of reports) {
    for (const [, e, n, x] of r.records ?? []) {
      if (e === '') reentries++;
      all.push({ id: r.id, end: e === '' ? null : BigInt(e), enter: BigInt(n), exit: BigInt(x) });
    }
  }
  all.sort((a, b) => (a.enter < b.enter ? -1 : a.enter > b.enter ? 1 : 0));
  let max = 0;
  let where = '';
  const counts = new Map<number, number>();
  for (let w = 0; w < all.length; w++) {
    const me = all[w]!;
    if (me.end === null) continue;
    // The first critical section before ours that surely ended after our doorway did: every
    // one after it began after our doorway ended.
    let k = 0;
    while (k < w && all[k]!.exit <= me.end) k++;
    counts.clear();
    for (let j = k + 1; j < w; j++) {
      const id = all[j]!.id;
      if (id === me.id) continue;
      const c = (counts.get(id) ?? 0) + 1;
      counts.set(id, c);
      if (c > max) {
        max = c;
        where = `participant ${id} entered ${c} times while participant ${me.id} waited (entry #${w})`;
      }
    }
  }
  return { max, where, reentries };
}
