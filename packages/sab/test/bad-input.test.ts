// The bad-input matrix for @bakery/sab (the shared cases — wrong magic/version/capacity, slots
// out of range at creation, misuse of leases and closed instances — run in the conformance
// suite for every backend). Each case: a coded error, and the shared memory byte-for-byte as
// it was.

import { BAD_SLOT_COUNTS } from '@bakery/conformance';
import { cellsFor, H, MAX_SLOTS } from '@bakery/core';
import { describe, expect, test } from 'vitest';
import { createMutex, openMutex, type SabHandle } from '../src/index.js';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as { code?: string }).code ?? `uncoded ${(err as Error).name}`;
  }
  return 'no error';
}

const bytes = (b: SharedArrayBuffer) => Buffer.from(new Uint8Array(b)).toString('hex');

describe('slots out of range', () => {
  for (const slots of BAD_SLOT_COUNTS) {
    test(`createMutex({ slots: ${String(slots)} }) is BAKERY_INVALID_ARGUMENT`, () => {
      expect(codeOf(() => createMutex({ slots: slots as number }))).toBe('BAKERY_INVALID_ARGUMENT');
    });

    test(`openMutex of a handle with slots ${String(slots)} is a coded error and the lock is unchanged`, () => {
      const m = createMutex({ slots: 4 });
      const before = bytes(m.handle.buffer);
      const bad = { buffer: m.handle.buffer, slots } as unknown as SabHandle;
      expect(codeOf(() => openMutex(bad))).toBe('BAKERY_INVALID_ARGUMENT');
      expect(bytes(m.handle.buffer)).toBe(before);
      m.close();
    });
  }

  test('a handle whose slot count disagrees with its buffer is BAKERY_BAD_LAYOUT and the lock is unchanged', () => {
    const m = createMutex({ slots: 4 });
    const before = bytes(m.handle.buffer);
    for (const slots of [3, 5, MAX_SLOTS])
      expect(codeOf(() => openMutex({ buffer: m.handle.buffer, slots }))).toBe('BAKERY_BAD_LAYOUT');
    expect(bytes(m.handle.buffer)).toBe(before);
    m.close();
  });

  test('a header whose capacity disagrees with the handle is BAKERY_BAD_LAYOUT and the lock is unchanged', () => {
    // A 4-slot buffer relabelled as a 2-slot lock in its header, opened by a 4-slot handle.
    const m = createMutex({ slots: 4 });
    Atomics.store(new Int32Array(m.handle.buffer), H.CAPACITY, 2);
    const before = bytes(m.handle.buffer);
    expect(codeOf(() => openMutex(m.handle))).toBe('BAKERY_BAD_LAYOUT');
    expect(bytes(m.handle.buffer)).toBe(before);
    Atomics.store(new Int32Array(m.handle.buffer), H.CAPACITY, 4);
    m.close();
  });
});

describe('handles that are not a bakery lock', () => {
  const cases: [string, () => unknown][] = [
    ['undefined', () => undefined],
    ['null', () => null],
    ['a number', () => 7],
    ['an object without a buffer', () => ({ slots: 4 })],
    ['an ArrayBuffer (not shared)', () => ({ buffer: new ArrayBuffer(cellsFor(4) * 4), slots: 4 })],
    [
      'an Int32Array view',
      () => ({ buffer: new Int32Array(new SharedArrayBuffer(cellsFor(4) * 4)), slots: 4 }),
    ],
  ];
  for (const [what, make] of cases) {
    test(`${what} is BAKERY_BAD_HANDLE`, () => {
      expect(codeOf(() => openMutex(make() as SabHandle))).toBe('BAKERY_BAD_HANDLE');
    });
  }

  test('a zeroed SharedArrayBuffer of the right size is BAKERY_BAD_LAYOUT and stays all zero', () => {
    const buffer = new SharedArrayBuffer(cellsFor(4) * 4);
    expect(codeOf(() => openMutex({ buffer, slots: 4 }))).toBe('BAKERY_BAD_LAYOUT');
    expect(new Uint8Array(buffer).every((b) => b === 0)).toBe(true);
  });

  test('a SharedArrayBuffer of random bytes is BAKERY_BAD_LAYOUT and is unchanged', () => {
    const buffer = new SharedArrayBuffer(cellsFor(4) * 4);
    const u8 = new Uint8Array(buffer);
    for (let i = 0; i < u8.length; i++) u8[i] = (i * 131 + 7) & 0xff;
    const before = bytes(buffer);
    expect(codeOf(() => openMutex({ buffer, slots: 4 }))).toBe('BAKERY_BAD_LAYOUT');
    expect(bytes(buffer)).toBe(before);
  });
});
