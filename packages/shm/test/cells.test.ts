import * as fs from 'node:fs';
import { ACCESS, bytesFor, H, LAYOUT_VERSION, MAGIC } from '@bakery/core';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { openMutex, removeMutex, SHM_MAX_SLOTS, ShmCells, type ShmMutex } from '../src/index.js';
import { freshDir } from './helpers.js';

let dir: string;
beforeEach(() => {
  dir = freshDir();
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a pure-JS shm lock has at most 127 slots, so every protocol cell fits in a byte that cannot tear', () => {
  expect(() => openMutex('wide', { slots: SHM_MAX_SLOTS + 1, dir, access: 'pure-js' })).toThrow(
    expect.objectContaining({ code: 'BAKERY_INVALID_ARGUMENT' }),
  );
  expect(fs.readdirSync(dir)).toEqual([]);
  // A file made elsewhere with more slots is refused on attach and left untouched.
  const file = `${dir}/bakery.wide`;
  const big = Buffer.alloc(bytesFor(200));
  big.writeInt32LE(MAGIC, H.MAGIC * 4);
  big.writeInt32LE(LAYOUT_VERSION, H.VERSION * 4);
  big.writeInt32LE(200, H.CAPACITY * 4);
  big.writeInt32LE(2, H.INIT * 4);
  big.writeInt32LE(ACCESS.POSITIONAL, H.ACCESS * 4);
  fs.writeFileSync(file, big, { mode: 0o600 });
  expect(() => openMutex('wide', { dir })).toThrow(
    expect.objectContaining({ code: 'BAKERY_BAD_LAYOUT' }),
  );
  expect(fs.readFileSync(file).equals(big)).toBe(true);
  fs.rmSync(file);

  const opened: ShmMutex[] = [];
  for (let k = 0; k < SHM_MAX_SLOTS; k++)
    opened.push(openMutex('full', { slots: SHM_MAX_SLOTS, dir, access: 'pure-js' }));
  const last = opened[SHM_MAX_SLOTS - 1]!;
  expect(last.inspect().highWater).toBe(SHM_MAX_SLOTS);
  // Every participant's scans cover the last slot: a lease there excludes slot 0 and vice versa.
  const lease = last.lockSync();
  expect(opened[0]!.tryLock()).toBeNull();
  lease.release();
  const first = opened[0]!.lockSync();
  expect(last.tryLock()).toBeNull();
  first.release();
  for (const m of opened) m.close();
  expect(removeMutex('full', { dir })).toBe(true);
});

test('cells read and write little-endian int32 words at cell × 4, one word per access', () => {
  const m = openMutex('raw', { slots: 2, dir });
  m.close();
  const fd = fs.openSync(m.path, 'r+');
  try {
    const cells = new ShmCells(fd, bytesFor(2) / 4);
    expect(cells.length).toBe(bytesFor(2) / 4);
    cells.store(cells.length - 1, -2);
    expect(fs.readFileSync(m.path).readInt32LE(bytesFor(2) - 4)).toBe(-2);
    expect(cells.load(cells.length - 1)).toBe(-2);
    cells.store(cells.length - 1, 0);
    // Past the end of the file: a coded error, never a silent 0.
    expect(() => cells.load(cells.length)).toThrow(
      expect.objectContaining({ code: 'BAKERY_BAD_LAYOUT' }),
    );
  } finally {
    fs.closeSync(fd);
  }
});

test('loadMany reads a run of cells in one pread, the same words load() reads; past the end is a coded error', () => {
  const m = openMutex('many', { slots: 3, dir });
  m.close();
  const fd = fs.openSync(m.path, 'r+');
  try {
    const cells = new ShmCells(fd, bytesFor(3) / 4);
    for (let i = 16; i < cells.length; i++) cells.store(i, i * 7 - 100);
    const out = new Int32Array(cells.length - 16);
    cells.loadMany(16, out.length, out);
    for (let i = 16; i < cells.length; i++) expect(out[i - 16]).toBe(cells.load(i));
    expect(() => cells.loadMany(16, out.length + 1, new Int32Array(out.length + 1))).toThrow(
      expect.objectContaining({ code: 'BAKERY_BAD_LAYOUT' }),
    );
  } finally {
    fs.closeSync(fd);
  }
});

for (const [access, perMutex] of [
  ['pure-js', 1],
  ['mapped', 2], // the lock file and the description its slot's lease is taken through
] as const) {
  test(`close() closes the lock's file descriptors (${access}: ${perMutex}); a failed open leaves none behind`, () => {
    const fds = () => fs.readdirSync('/proc/self/fd').length;
    const before = fds();
    const a = openMutex('fds', { slots: 1, dir, access });
    expect(fds()).toBe(before + perMutex);
    const full = openMutex('fds', { dir, access }); // no slot left: open, without one
    expect(full.slot).toBe(-1);
    expect(fds()).toBe(before + 2 * perMutex);
    full.close();
    expect(fds()).toBe(before + perMutex);
    expect(() => openMutex('fds', { slots: 2, dir, access })).toThrow(
      expect.objectContaining({ code: 'BAKERY_BAD_LAYOUT' }),
    );
    expect(() =>
      openMutex('fds', { dir, access: access === 'mapped' ? 'pure-js' : 'mapped' }),
    ).toThrow(expect.objectContaining({ code: 'BAKERY_ACCESS_MISMATCH' }));
    expect(fds()).toBe(before + perMutex);
    a.close();
    expect(fds()).toBe(before);
  });
}
