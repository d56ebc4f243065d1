import { createRequire } from 'node:module';
import { describe, expect, test } from 'vitest';
import {
  ACCESS,
  BakeryError,
  cellsFor,
  checkSlots,
  H,
  isBakeryError,
  LAYOUT_VERSION,
  MAGIC,
  MAX_SLOTS,
  openOn,
  packTicket,
  ticketColour,
  ticketNumber,
  validateLayout,
} from '../src/index.js';
import { createReferenceCells, ReferenceCells } from '../src/reference.js';
import { codeOf } from './helpers.js';

describe('layout', () => {
  test('a ticket packs its number and colour into one cell and unpacks them unchanged', () => {
    for (const n of [0, 1, 2, 4095, MAX_SLOTS]) {
      for (const c of [0, 1]) {
        const t = packTicket(n, c);
        expect(ticketNumber(t)).toBe(n);
        expect(ticketColour(t)).toBe(c);
      }
    }
  });

  test('a fresh lock carries magic, version and capacity, and its size is exactly 64 + 64 × slots bytes', () => {
    const cells = createReferenceCells(5);
    expect(cells.length).toBe(16 + 16 * 5);
    expect(cells.load(H.MAGIC)).toBe(MAGIC);
    expect(cells.load(H.VERSION)).toBe(LAYOUT_VERSION);
    expect(validateLayout(cells)).toBe(5);
    expect(validateLayout(cells, 5)).toBe(5);
  });

  test('validation refuses foreign, short, oversized or mismatched memory without writing to it', () => {
    const zero = new ReferenceCells(new SharedArrayBuffer(cellsFor(4) * 4));
    expect(codeOf(() => validateLayout(zero))).toBe('BAKERY_BAD_LAYOUT');
    expect([...zero.array].every((v) => v === 0)).toBe(true);

    const good = createReferenceCells(4);
    expect(codeOf(() => validateLayout(good, 3))).toBe('BAKERY_BAD_LAYOUT');

    const big = new ReferenceCells(new SharedArrayBuffer(cellsFor(5) * 4));
    for (let i = 0; i < 16; i++) big.store(i, good.load(i));
    const before = [...big.array];
    expect(codeOf(() => validateLayout(big))).toBe('BAKERY_BAD_LAYOUT');
    expect([...big.array]).toEqual(before);

    const tiny = new ReferenceCells(new SharedArrayBuffer(8));
    expect(codeOf(() => validateLayout(tiny))).toBe('BAKERY_BAD_LAYOUT');
  });

  test('slot counts outside 1..4096 or not integers are RangeErrors with a code', () => {
    for (const bad of [0, -1, 1.5, MAX_SLOTS + 1, Number.NaN, '4', undefined]) {
      expect(codeOf(() => checkSlots(bad))).toBe('BAKERY_INVALID_ARGUMENT');
    }
    expect(checkSlots(MAX_SLOTS)).toBe(MAX_SLOTS);
  });
});

describe('errors', () => {
  test('BakeryError carries a stable code and a cause, and isBakeryError matches by code', () => {
    const cause = new Error('root');
    const err = new BakeryError('BAKERY_TIMEOUT', 'timed out', { cause });
    expect(err.code).toBe('BAKERY_TIMEOUT');
    expect(err.cause).toBe(cause);
    expect(err.name).toBe('BakeryError');
    expect(isBakeryError(err)).toBe(true);
    expect(isBakeryError(err, 'BAKERY_TIMEOUT')).toBe(true);
    expect(isBakeryError(err, 'BAKERY_ABORTED')).toBe(false);
    // an error from the other module format or from native code still counts
    expect(isBakeryError(Object.assign(new Error('x'), { code: 'BAKERY_IO' }), 'BAKERY_IO')).toBe(
      true,
    );
    expect(isBakeryError(Object.assign(new Error('x'), { code: 'ENOENT' }))).toBe(false);
  });
});

describe('backend contract', () => {
  test('a backend without compareExchange or a registry lock is refused before anything is written', () => {
    const ref = createReferenceCells(2);
    const before = [...ref.array];
    const cells = {
      length: ref.length,
      load: (i: number) => ref.load(i),
      store: (i: number, v: number) => ref.store(i, v),
    };
    expect(codeOf(() => openOn({ cells }))).toBe('BAKERY_INVALID_ARGUMENT');
    expect([...ref.array]).toEqual(before);
  });

  test('a backend with only a registry lock claims distinct slots under it', () => {
    const ref = createReferenceCells(3);
    ref.store(H.ACCESS, ACCESS.POSITIONAL); // what a registry-claiming creator records
    let depth = 0;
    let calls = 0;
    const cells = {
      length: ref.length,
      load: (i: number) => ref.load(i),
      store: (i: number, v: number) => ref.store(i, v),
      withRegistryLock<T>(fn: () => T): T {
        expect(depth).toBe(0);
        depth++;
        calls++;
        try {
          return fn();
        } finally {
          depth--;
        }
      },
    };
    const a = openOn({ cells });
    const b = openOn({ cells });
    expect(a.slot).not.toBe(b.slot);
    expect(calls).toBe(2);
    const lease = a.lockSync();
    expect(b.tryLock()).toBeNull();
    lease.release();
    a.close();
    b.close();
    expect(calls).toBe(4);
  });

  test('a released-twice lease, a closed mutex and unknown robust modes get coded errors', () => {
    const cells = createReferenceCells(2);
    expect(codeOf(() => openOn({ cells }, { robust: 'sometimes' as 'auto' }))).toBe(
      'BAKERY_INVALID_ARGUMENT',
    );
    expect(codeOf(() => openOn({ cells }, { spin: -1 }))).toBe('BAKERY_INVALID_ARGUMENT');
    const m = openOn({ cells });
    const lease = m.lockSync();
    lease.release();
    expect(codeOf(() => lease.release())).toBe('BAKERY_NOT_HELD');
    m.close();
    expect(codeOf(() => m.inspect())).toBe('BAKERY_CLOSED');
  });
});

test('a close() whose slot free fails leaves the instance open and its backend unclosed, so close() can be retried', () => {
  const ref = createReferenceCells(2);
  ref.store(H.ACCESS, ACCESS.POSITIONAL);
  let failNext = false;
  let backendClosed = 0;
  const cells = {
    length: ref.length,
    load: (i: number) => ref.load(i),
    store: (i: number, v: number) => ref.store(i, v),
    withRegistryLock<T>(fn: () => T): T {
      if (failNext) {
        failNext = false;
        throw new BakeryError('BAKERY_TIMEOUT', 'registry lock held (test)');
      }
      return fn();
    },
  };
  const m = openOn({ cells, close: () => backendClosed++ });
  failNext = true;
  expect(codeOf(() => m.close())).toBe('BAKERY_TIMEOUT');
  expect(backendClosed).toBe(0);
  expect(m.inspect().slots[m.slot]!.owner).not.toBeNull();
  const slot = m.slot;
  m.close();
  expect(backendClosed).toBe(1);
  expect(m.slot).toBe(-1);
  expect(ref.load(16 + 16 * slot + 3)).toBe(0); // OWNER freed
});

describe('robustness flags', () => {
  test('ownerDied is reported to the next acquirer; releasing without markConsistent makes the lock not recoverable', () => {
    const cells = createReferenceCells(2);
    const m = openOn({ cells });
    cells.store(H.OWNER_DIED, 1); // what a reaper leaves behind for a holder that died
    const lease = m.lockSync();
    expect(lease.ownerDied).toBe(true);
    lease.release();
    expect(m.inspect().ownerDied).toBe('not-recoverable');
    expect(codeOf(() => m.lockSync())).toBe('BAKERY_NOT_RECOVERABLE');
    expect(m.inspect().slots[m.slot]!.ticket).toBe(0);
    m.close();
  });

  test('a poisoned lock: refusals are not acquisitions, the error names the way out, and mutex.markConsistent() clears it for everyone', async () => {
    const cells = createReferenceCells(3);
    const m = openOn({ cells });
    const other = openOn({ cells });
    cells.store(H.OWNER_DIED, 1);
    m.lockSync().release(); // released without markConsistent: poisoned
    const before = m.inspect().acquisitions;
    let err: unknown;
    try {
      other.lockSync();
    } catch (e) {
      err = e;
    }
    expect((err as BakeryError).code).toBe('BAKERY_NOT_RECOVERABLE');
    expect((err as Error).message).toMatch(/bakery mark-consistent/);
    await expect(other.lock()).rejects.toMatchObject({ code: 'BAKERY_NOT_RECOVERABLE' });
    expect(m.inspect().acquisitions).toBe(before);
    // The operator's way out: waits its turn like any acquisition, clears, releases.
    expect(m.markConsistent()).toBe(true);
    expect(m.inspect().ownerDied).toBe('consistent');
    expect(m.inspect().holder).toBeNull();
    const lease = other.lockSync({ timeout: 1000 });
    expect(lease.ownerDied).toBe(false);
    lease.release();
    // Nothing to clear: false, and the lock is untouched but for one acquisition.
    const n = m.inspect().acquisitions;
    expect(m.markConsistent()).toBe(false);
    expect(m.inspect().acquisitions).toBe(n + 1);
    // Waits for a holder like lockSync, bounded by its timeout.
    const l2 = other.lockSync();
    expect(codeOf(() => m.markConsistent({ timeout: 20 }))).toBe('BAKERY_TIMEOUT');
    expect(codeOf(() => other.markConsistent())).toBe('BAKERY_ALREADY_HELD');
    l2.release();
    m.close();
    other.close();
  });

  test("markConsistent() clears the flag, and { robust: 'auto' } clears it on release", () => {
    const cells = createReferenceCells(2);
    const m = openOn({ cells });
    cells.store(H.OWNER_DIED, 1);
    const lease = m.lockSync();
    lease.markConsistent();
    lease.release();
    expect(m.inspect().ownerDied).toBe('consistent');
    m.close();
    const auto = openOn({ cells }, { robust: 'auto' });
    cells.store(H.OWNER_DIED, 1);
    const l2 = auto.lockSync();
    expect(l2.ownerDied).toBe(true);
    l2.release();
    expect(auto.inspect().ownerDied).toBe('consistent');
    auto.close();
  });
});

test('instanceof BakeryError holds across the ES module and CommonJS copies of core, and for nothing else', () => {
  const cjs = createRequire(import.meta.url)(
    '../dist/index.cjs',
  ) as typeof import('../src/index.js');
  expect(cjs.BakeryError).not.toBe(BakeryError); // two copies of the class in one process
  const other = new cjs.BakeryError('BAKERY_IO', 'from the other copy');
  expect(other).toBeInstanceOf(BakeryError);
  expect(new BakeryError('BAKERY_IO', 'x')).toBeInstanceOf(cjs.BakeryError);
  expect(new Error('x')).not.toBeInstanceOf(BakeryError);
  expect(Object.assign(new Error('x'), { code: 'BAKERY_IO' })).not.toBeInstanceOf(BakeryError);
  expect({ code: 'BAKERY_IO' } instanceof BakeryError).toBe(false);
  expect((null as unknown as object) instanceof BakeryError).toBe(false);
});
