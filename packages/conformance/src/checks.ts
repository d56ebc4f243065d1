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
