import * as fs from 'node:fs';
import { bytesFor, H } from '@bakery/core';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { openMutex, removeMutex, ShmCells, type ShmMutex } from '../src/index.js';
import { freshDir } from './helpers.js';

let dir: string;
beforeEach(() => {
  dir = freshDir();
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

test('above 255 slots the high-water mark crosses the byte boundary exactly (byte-wise store and load)', () => {
  const opened: ShmMutex[] = [];
  for (let k = 0; k < 260; k++) opened.push(openMutex('wide', { slots: 300, dir }));
  const last = opened[259]!;
  expect(last.slot).toBe(259);
  expect(last.inspect().highWater).toBe(260);
  const raw = fs.readFileSync(last.path);
  expect(raw.readInt32LE(H.HIGH_WATER * 4)).toBe(260);
  // Every participant's scans cover slot 259: a lease there excludes slot 0 and vice versa.
  const lease = last.lockSync();
  expect(opened[0]!.tryLock()).toBeNull();
  lease.release();
  const first = opened[0]!.lockSync();
  expect(last.tryLock()).toBeNull();
  first.release();
  for (const m of opened) m.close();
  expect(removeMutex('wide', { dir })).toBe(true);
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

test('close() closes the lock file descriptor; a failed open leaves none behind', () => {
  const fds = () => fs.readdirSync('/proc/self/fd').length;
  const before = fds();
  const a = openMutex('fds', { slots: 1, dir });
  expect(fds()).toBe(before + 1);
  expect(() => openMutex('fds', { dir })).toThrow(
    expect.objectContaining({ code: 'BAKERY_NO_FREE_SLOT' }),
  );
  expect(() => openMutex('fds', { slots: 2, dir })).toThrow(
    expect.objectContaining({ code: 'BAKERY_BAD_LAYOUT' }),
  );
  expect(fds()).toBe(before + 1);
  a.close();
  expect(fds()).toBe(before);
});
