// The bad-input matrix for @bakery/mmap (the shared cases — wrong magic/version/capacity, slots
// out of range at creation, misuse of leases and closed instances — run in the conformance
// suite for every backend). Each case: a coded error, and whatever the fd refers to left
// byte-for-byte as it was.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { ACCESS, bytesFor, H, LAYOUT_VERSION, MAX_SLOTS } from '@bakery/core';
import { afterAll, describe, expect, test } from 'vitest';
import { createMutex, FD_ENV, loadNative, openMutex } from '../src/index.js';

const native = loadNative();
const dir = fs.mkdtempSync(path.join(tmpdir(), 'bakery-mmap-bad-'));
const fds: number[] = [];
afterAll(() => {
  for (const fd of fds.splice(0)) {
    try {
      fs.closeSync(fd);
    } catch {}
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as { code?: string }).code ?? `uncoded ${(err as Error).name}`;
  }
  return 'no error';
}

/** Every byte behind a seekable fd, read with pread (the file position is not used). */
function contents(fd: number): string {
  const size = fs.fstatSync(fd).size;
  const buf = Buffer.alloc(size);
  if (size > 0) fs.readSync(fd, buf, 0, size, 0);
  return buf.toString('hex');
}

function keep(fd: number): number {
  fds.push(fd);
  return fd;
}

/** A memfd whose bytes are a valid 4-slot lock header, then changed by `damage`. */
function memfd(bytes: number, fill: (view: DataView) => void): number {
  const fd = keep(native.create(bytes));
  const buf = Buffer.alloc(bytes);
  fill(new DataView(buf.buffer, buf.byteOffset, buf.byteLength));
  fs.writeSync(fd, buf, 0, bytes, 0);
  return fd;
}

function validHeader(view: DataView, capacity = 4): void {
  view.setInt32(H.MAGIC * 4, 0x524b4142, true);
  view.setInt32(H.VERSION * 4, LAYOUT_VERSION, true);
  view.setInt32(H.CAPACITY * 4, capacity, true);
  view.setInt32(H.ACCESS * 4, ACCESS.ATOMIC, true);
  view.setInt32(H.INIT * 4, 2, true);
}

const BAD_SLOTS: unknown[] = [
  0,
  -1,
  -4096,
  1.5,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  '4',
  null,
  MAX_SLOTS + 1,
  2 ** 31,
];

describe('slots out of range', () => {
  for (const slots of BAD_SLOTS) {
    test(`createMutex({ slots: ${String(slots)} }) is BAKERY_INVALID_ARGUMENT`, () => {
      expect(codeOf(() => createMutex({ slots: slots as number }))).toBe('BAKERY_INVALID_ARGUMENT');
    });
  }
});

describe('fds that are not a bakery mapping', () => {
  const cases: [string, () => number, string][] = [
    [
      'a regular file on disk with a valid header',
      () => {
        const file = path.join(dir, 'regular');
        const buf = Buffer.alloc(bytesFor(4));
        validHeader(new DataView(buf.buffer, buf.byteOffset, buf.byteLength));
        fs.writeFileSync(file, buf);
        return keep(fs.openSync(file, 'r+'));
      },
      // Not tmpfs (unless the tmpdir is): mapping it is refused before anything is read.
      'BAKERY_BAD_HANDLE',
    ],
    [
      'a text file',
      () => {
        const file = path.join(dir, 'text');
        fs.writeFileSync(file, 'hello world\n'.repeat(40));
        return keep(fs.openSync(file, 'r+'));
      },
      'BAKERY_BAD_LAYOUT|BAKERY_BAD_HANDLE',
    ],
    ['a memfd of zeros of the right size', () => memfd(bytesFor(4), () => {}), 'BAKERY_BAD_LAYOUT'],
    [
      'a memfd with the wrong magic',
      () =>
        memfd(bytesFor(4), (v) => {
          validHeader(v);
          v.setInt32(0, 0x12345678, true);
        }),
      'BAKERY_BAD_LAYOUT',
    ],
    [
      'a memfd with the wrong layout version',
      () =>
        memfd(bytesFor(4), (v) => {
          validHeader(v);
          v.setInt32(H.VERSION * 4, LAYOUT_VERSION + 1, true);
        }),
      'BAKERY_BAD_LAYOUT',
    ],
    [
      'a memfd of an earlier release (layout version 1)',
      () =>
        memfd(bytesFor(4), (v) => {
          validHeader(v);
          v.setInt32(H.VERSION * 4, 1, true);
        }),
      'BAKERY_BAD_LAYOUT',
    ],
    [
      'a memfd with an impossible access mode',
      () =>
        memfd(bytesFor(4), (v) => {
          validHeader(v);
          v.setInt32(H.ACCESS * 4, 0, true);
        }),
      'BAKERY_BAD_LAYOUT',
    ],
    [
      // What a pure-JS @bakery/shm lock file records: its participants claim slots under a
      // registry lock, so a compareExchange-claiming participant must not join them.
      'a lock created for positional (pure-JS) access',
      () =>
        memfd(bytesFor(4), (v) => {
          validHeader(v);
          v.setInt32(H.ACCESS * 4, ACCESS.POSITIONAL, true);
        }),
      'BAKERY_ACCESS_MISMATCH',
    ],
    [
      'a memfd whose header capacity disagrees with its size',
      () => memfd(bytesFor(4), (v) => validHeader(v, 3)),
      'BAKERY_BAD_LAYOUT',
    ],
    [
      'a memfd with an impossible capacity',
      () => memfd(bytesFor(4), (v) => validHeader(v, MAX_SLOTS + 1)),
      'BAKERY_BAD_LAYOUT',
    ],
    [
      'a memfd that is not initialised yet',
      () =>
        memfd(bytesFor(4), (v) => {
          validHeader(v);
          v.setInt32(H.INIT * 4, 1, true);
        }),
      'BAKERY_BAD_LAYOUT',
    ],
    [
      'a memfd with an impossible high-water mark',
      () =>
        memfd(bytesFor(4), (v) => {
          validHeader(v);
          v.setInt32(H.HIGH_WATER * 4, 9, true);
        }),
      'BAKERY_BAD_LAYOUT',
    ],
    ['a memfd shorter than a header', () => memfd(40, () => {}), 'BAKERY_BAD_LAYOUT'],
    [
      'a memfd whose size is not a multiple of 4',
      () => memfd(bytesFor(4) + 2, validHeader),
      'BAKERY_BAD_LAYOUT',
    ],
    [
      'a memfd with trailing bytes',
      () => memfd(bytesFor(4) + 64, validHeader),
      'BAKERY_BAD_LAYOUT',
    ],
    [
      'a zero-length tmpfs file',
      () => {
        const file = path.join(
          fs.existsSync('/dev/shm') ? '/dev/shm' : dir,
          `bakery-mmap-empty-${process.pid}`,
        );
        const fd = keep(fs.openSync(file, 'w+'));
        fs.rmSync(file);
        return fd;
      },
      'BAKERY_BAD_LAYOUT',
    ],
    [
      'a tmpfs file with a lock cut short',
      () => {
        const file = path.join(
          fs.existsSync('/dev/shm') ? '/dev/shm' : dir,
          `bakery-mmap-short-${process.pid}`,
        );
        const buf = Buffer.alloc(bytesFor(4) - 64);
        validHeader(new DataView(buf.buffer, buf.byteOffset, buf.byteLength));
        fs.writeFileSync(file, buf);
        const fd = keep(fs.openSync(file, 'r+'));
        fs.rmSync(file);
        return fd;
      },
      'BAKERY_BAD_LAYOUT',
    ],
  ];
  for (const [what, make, code] of cases) {
    test(`${what}: ${code.replace('|', ' or ')}, bytes unchanged`, () => {
      const fd = make();
      const before = contents(fd);
      const got = codeOf(() => openMutex({ fd }));
      expect(code.split('|')).toContain(got);
      expect(contents(fd)).toBe(before);
    });
  }

  test('a pipe is BAKERY_BAD_HANDLE and nothing is read from it', () => {
    const fifo = path.join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    // O_RDWR on a FIFO never blocks on Linux: one fd holds both ends.
    const fd = keep(fs.openSync(fifo, fs.constants.O_RDWR | fs.constants.O_NONBLOCK));
    fs.writeSync(fd, 'still here');
    expect(codeOf(() => openMutex({ fd }))).toBe('BAKERY_BAD_HANDLE');
    const buf = Buffer.alloc(64);
    const n = fs.readSync(fd, buf, 0, 64, null);
    expect(buf.subarray(0, n).toString()).toBe('still here');
  });

  test('a directory fd is BAKERY_BAD_HANDLE', () => {
    const fd = keep(fs.openSync(dir, 'r'));
    expect(codeOf(() => openMutex({ fd }))).toBe('BAKERY_BAD_HANDLE');
  });

  test('a closed fd is BAKERY_BAD_HANDLE', () => {
    const fd = fs.openSync(path.join(dir, 'closed'), 'w');
    fs.closeSync(fd);
    expect(codeOf(() => openMutex({ fd }))).toBe('BAKERY_BAD_HANDLE');
  });

  for (const fd of [-1, 1.5, Number.NaN, '3', null]) {
    test(`fd ${JSON.stringify(fd) ?? String(fd)} is BAKERY_INVALID_ARGUMENT`, () => {
      expect(codeOf(() => openMutex({ fd: fd as number }))).toBe('BAKERY_INVALID_ARGUMENT');
    });
  }

  for (const env of [undefined, '', 'abc', '-1', '4x']) {
    test(`no fd and ${FD_ENV}=${JSON.stringify(env)} is BAKERY_BAD_HANDLE`, () => {
      const saved = process.env[FD_ENV];
      if (env === undefined) delete process.env[FD_ENV];
      else process.env[FD_ENV] = env;
      try {
        expect(codeOf(() => openMutex())).toBe('BAKERY_BAD_HANDLE');
      } finally {
        if (saved === undefined) delete process.env[FD_ENV];
        else process.env[FD_ENV] = saved;
      }
    });
  }

  test('a valid lock opened through a second fd works and the bad cases above did not touch it', () => {
    const m = createMutex({ slots: 4 });
    const fd = keep(native.reopen(m.fd));
    const before = contents(fd);
    const other = openMutex({ fd });
    other.lockSync().release();
    other.close();
    m.close();
    expect(contents(fd)).not.toBe(before); // the acquisition counter moved: the fd is live
  });
});
