import type { SlotSnapshot, Snapshot } from './api.js';
import type { Cells } from './backend.js';
import { BLACK, H, isRetained, S, slotBase, ticketNumber, WHITE } from './layout.js';
import { accessName, layoutAccess, scanLimit } from './memory.js';
import { readOwner } from './owner.js';
import { freshWant } from './slots.js';

/**
 * Read a lock's shared state without being a participant (no slot is claimed). The memory must
 * have passed {@link validateLayout}. `self` is reported as -1.
 */
export function snapshot(cells: Cells, self = -1): Snapshot {
  const capacity = cells.load(H.CAPACITY);
  const raw = cells.load(H.HIGH_WATER);
  const hwm = scanLimit(cells, capacity);
  const anomalies: string[] = [];
  if (raw !== hwm) anomalies.push(`HIGH_WATER ${raw} is outside 0..${capacity}`);
  const slots: SlotSnapshot[] = [];
  for (let s = 0; s < capacity; s++) {
    const b = slotBase(s);
    const owner = readOwner(cells, s);
    const choosing = cells.load(b + S.CHOOSING);
    const t = cells.load(b + S.TICKET);
    if (s >= hwm && owner === null && choosing === 0 && t === 0) continue;
    if (s >= hwm) anomalies.push(`slot ${s} is in use above HIGH_WATER ${raw}`);
    if (owner === null && (choosing !== 0 || t !== 0))
      anomalies.push(
        `slot ${s} is free but has ${choosing !== 0 ? 'CHOOSING' : 'a ticket'} left on it`,
      );
    const n = ticketNumber(t);
    if (n > hwm) anomalies.push(`slot ${s} holds ticket ${n}, above HIGH_WATER ${hwm}`);
    slots.push({
      slot: s,
      owner,
      choosing: choosing !== 0,
      ticket: n,
      retained: isRetained(t),
      colour: t === 0 ? null : (t & 1) === BLACK ? 'black' : 'white',
      sleepers: cells.load(b + S.SLEEPERS),
    });
  }
  const holder = cells.load(H.HOLDER);
  if (holder !== 0 && !(holder >= 1 && holder <= capacity && readOwner(cells, holder - 1) !== null))
    anomalies.push(`HOLDER ${holder} names no claimed slot`);
  const colour = cells.load(H.COLOUR);
  if (colour !== WHITE && colour !== BLACK) anomalies.push(`COLOUR ${colour} is neither 0 nor 1`);
  const od = cells.load(H.OWNER_DIED);
  if (od < 0 || od > 2) anomalies.push(`OWNER_DIED ${od} is not 0, 1 or 2`);
  return {
    layoutVersion: cells.load(H.VERSION),
    capacity,
    access: accessName(layoutAccess(cells)),
    colour: colour === BLACK ? 'black' : 'white',
    holder: holder === 0 ? null : holder - 1,
    highWater: raw,
    ownerDied: od === 0 ? 'consistent' : od === 1 ? 'owner-died' : 'not-recoverable',
    acquisitions: cells.load(H.ACQUISITIONS),
    maxTicket: cells.load(H.MAX_TICKET),
    self,
    slotWanted: freshWant(cells.load(H.SLOT_WANTED)),
    slots,
    anomalies,
  };
}
