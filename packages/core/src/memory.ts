import type { Cells } from './backend.js';
import { BakeryError } from './errors.js';
import {
  ACCESS,
  type AccessMode,
  cellsFor,
  H,
  HEADER_CELLS,
  LAYOUT_VERSION,
  MAGIC,
  MAX_SLOTS,
} from './layout.js';
import { rangeError } from './validate.js';

/** Check a slot count given by a user: an integer in 1..MAX_SLOTS. */
export function checkSlots(slots: unknown): number {
  if (typeof slots !== 'number' || !Number.isInteger(slots) || slots < 1 || slots > MAX_SLOTS) {
    throw rangeError(`slots must be an integer from 1 to ${MAX_SLOTS}, got ${String(slots)}`);
  }
  return slots;
}

/**
 * Create path: write a fresh header into zeroed memory of at least `cellsFor(capacity)` cells,
 * recording how every participant will access it (`access`, default {@link ACCESS}.ATOMIC).
 * `INIT = 2` (ready) is stored last, so an attacher that sees it sees the whole header.
 * Only for memory nobody else uses yet; attaching never initialises (see {@link validateLayout}).
 */
export function initLayout(
  cells: Cells,
  capacity: number,
  access: AccessMode = ACCESS.ATOMIC,
): void {
  checkSlots(capacity);
  if (cells.length < cellsFor(capacity)) {
    throw rangeError(`memory of ${cells.length} cells is too small for ${capacity} slots`);
  }
  cells.store(H.INIT, 1);
  cells.store(H.MAGIC, MAGIC);
  cells.store(H.VERSION, LAYOUT_VERSION);
  cells.store(H.CAPACITY, capacity);
  cells.store(H.ACCESS, access);
  cells.store(H.INIT, 2);
}

/**
 * Raise HIGH_WATER to at least `to` — never lower it: by compareExchange where the cells have
 * it, else (positional cells) the caller must hold the registry lock. The one place that
 * writes HIGH_WATER: a slot claim, and a doorway that finds its own slot uncovered.
 */
export function raiseHighWater(cells: Cells, to: number): void {
  const cas = cells.compareExchange?.bind(cells);
  let h = cells.load(H.HIGH_WATER);
  while (h < to) {
    if (cas === undefined) {
      cells.store(H.HIGH_WATER, to);
      return;
    }
    const seen = cas(H.HIGH_WATER, h, to);
    if (seen === h) return;
    h = seen;
  }
}

/**
 * HIGH_WATER as a bound for a scan: its value when it is a possible one (0..capacity), else
 * the capacity. A corrupted mark above the capacity (or negative) then costs one scan of
 * every slot instead of a RangeError or a loop as long as the bogus value.
 */
export function scanLimit(cells: Cells, capacity: number): number {
  const h = cells.load(H.HIGH_WATER);
  return h >= 0 && h <= capacity ? h : capacity;
}

/** The access mode recorded in a lock's header (after {@link validateLayout}). */
export function layoutAccess(cells: Cells): AccessMode {
  return cells.load(H.ACCESS) === ACCESS.POSITIONAL ? ACCESS.POSITIONAL : ACCESS.ATOMIC;
}

/** How an access mode is named in messages and snapshots. */
export function accessName(access: AccessMode): 'atomic' | 'positional' {
  return access === ACCESS.POSITIONAL ? 'positional' : 'atomic';
}

/**
 * Attach path: check that `cells` hold a ready bakery lock of this layout version (and of
 * `expectedCapacity` slots, and accessed in mode `expectedAccess`, when given). Reads only: on
 * any mismatch it throws `BAKERY_BAD_LAYOUT` (`BAKERY_ACCESS_MISMATCH` for the access mode)
 * and the memory is left exactly as it was. Returns the capacity.
 */
export function validateLayout(
  cells: Cells,
  expectedCapacity?: number,
  expectedAccess?: AccessMode,
): number {
  if (cells.length < HEADER_CELLS) {
    throw new BakeryError(
      'BAKERY_BAD_LAYOUT',
      `memory of ${cells.length} cells has no room for a bakery header`,
    );
  }
  const magic = cells.load(H.MAGIC);
  if (magic !== MAGIC) {
    throw new BakeryError(
      'BAKERY_BAD_LAYOUT',
      `not a bakery lock (magic 0x${(magic >>> 0).toString(16)})`,
    );
  }
  const version = cells.load(H.VERSION);
  if (version !== LAYOUT_VERSION) {
    throw new BakeryError(
      'BAKERY_BAD_LAYOUT',
      `bakery layout version ${version}, this library speaks ${LAYOUT_VERSION}${
        version === 1 || version === 2
          ? ' (the lock was made by an earlier bakery release; once no process uses it, remove it — `bakery rm <name>` for a named lock — and it is created afresh)'
          : ''
      }`,
    );
  }
  if (cells.load(H.INIT) !== 2) {
    throw new BakeryError('BAKERY_BAD_LAYOUT', 'bakery lock is not initialised');
  }
  const capacity = cells.load(H.CAPACITY);
  if (!(capacity >= 1 && capacity <= MAX_SLOTS)) {
    throw new BakeryError(
      'BAKERY_BAD_LAYOUT',
      `bakery header has an impossible capacity ${capacity}`,
    );
  }
  if (expectedCapacity !== undefined && capacity !== expectedCapacity) {
    throw new BakeryError(
      'BAKERY_BAD_LAYOUT',
      `bakery lock has ${capacity} slots, expected ${expectedCapacity}`,
    );
  }
  // Exactly the size the capacity implies: a lock's memory is never larger than its layout, so
  // a capacity cell that disagrees with the memory size is corruption, not slack.
  if (cells.length !== cellsFor(capacity)) {
    throw new BakeryError(
      'BAKERY_BAD_LAYOUT',
      `memory of ${cells.length} cells does not match a ${capacity}-slot lock (${cellsFor(capacity)} cells)`,
    );
  }
  const access = cells.load(H.ACCESS);
  if (access !== ACCESS.ATOMIC && access !== ACCESS.POSITIONAL) {
    throw new BakeryError(
      'BAKERY_BAD_LAYOUT',
      `bakery header has an impossible access mode ${access}`,
    );
  }
  if (expectedAccess !== undefined && access !== expectedAccess) {
    throw new BakeryError(
      'BAKERY_ACCESS_MISMATCH',
      `bakery lock was created for ${accessName(access)} access, not ${accessName(expectedAccess)}; participants of the two kinds cannot share a lock`,
    );
  }
  const hwm = cells.load(H.HIGH_WATER);
  if (hwm < 0 || hwm > capacity) {
    throw new BakeryError(
      'BAKERY_BAD_LAYOUT',
      `bakery header has an impossible high-water mark ${hwm}`,
    );
  }
  return capacity;
}

/**
 * Run `fn` serialised with the other participants' slot claims and frees: directly where the
 * cells have compareExchange (every such write is one), else under the backend's registry lock.
 */
export function serialised<T>(cells: Cells, fn: () => T): T {
  return cells.compareExchange !== undefined ? fn() : cells.withRegistryLock!(fn);
}
