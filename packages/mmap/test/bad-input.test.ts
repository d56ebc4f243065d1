// The bad-input matrix for @bakery/mmap (the shared cases — wrong magic/version/capacity, slots
// out of range at creation, misuse of leases and closed instances — run in the conformance
// suite for every backend). Each case: a coded error, and whatever the fd refers to left
// byte-for-byte as it was.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BAD_SLOT_COUNTS } from '@bakery/conformance';
import { ACCESS, bytesFor, H, LAYOUT_VERSION, MAX_SLOTS } from '@bakery/core';
import { SEAL } from '@bakery/native';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
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

/** The bytes of a valid 4-slot lock. */
function validLock(): Buffer {
  const buf = Buffer.alloc(bytesFor(4));
  validHeader(new DataView(buf.buffer, buf.byteOffset, buf.byteLength));
  return buf;
}

/** An unlinked file in /dev/shm (tmpfs: map() alone would accept it) holding `content`. */
function shmFile(name: string, content: Buffer): number {
  const file = path.join(
    fs.existsSync('/dev/shm') ? '/dev/shm' : dir,
    `bakery-mmap-${name}-${process.pid}`,
  );
  fs.writeFileSync(file, content);
  const fd = keep(fs.openSync(file, 'r+'));
  fs.rmSync(file);
  return fd;
}

// Memfds that native.create() never makes (no seals, partial seals, a write seal), made by a
// Python helper (Node cannot call memfd_create) and opened here through /proc/<pid>/fd/<n>: the
// same memory, so the same seals.
const FULL = SEAL.SHRINK | SEAL.GROW | SEAL.SEAL;
const FOREIGN = {
  noSeals: { allowSealing: true, seals: 0 },
  notSealable: { allowSealing: false, seals: 0 },
  shrinkGrowOnly: { allowSealing: true, seals: SEAL.SHRINK | SEAL.GROW },
  writeSealed: { allowSealing: true, seals: FULL | SEAL.WRITE },
  sealed: { allowSealing: true, seals: FULL },
  empty: { allowSealing: true, seals: FULL, bytes: 0 },
} as const;
// python3 is a build requirement of the native binding (node-gyp), so it is there wherever
// these tests run; its os.memfd_create makes the memfds Node cannot. Not optional: a missing
// python3 fails here instead of skipping the cases.
const foreign = new Map<keyof typeof FOREIGN, number>();
beforeAll(async () => {
  const names = Object.keys(FOREIGN) as (keyof typeof FOREIGN)[];
  const hex = validLock().toString('hex');
  const specs = names.map((n) => ({ bytes: bytesFor(4), hex, ...FOREIGN[n] }));
  for (const spec of specs) if (spec.bytes === 0) spec.hex = '';
  const helper = fileURLToPath(new URL('./fixtures/foreign-memfd.py', import.meta.url));
  const child = spawn('python3', [helper, JSON.stringify(specs)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  let out = '';
  const line = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (chunk) => {
      out += chunk;
      if (out.includes('\n')) resolve(out.slice(0, out.indexOf('\n')));
    });
    child.on('exit', (code) => reject(new Error(`foreign-memfd.py exited ${code}`)));
  });
  const { pid, fds: theirs } = JSON.parse(line) as { pid: number; fds: number[] };
  names.forEach((n, i) => {
    foreign.set(n, keep(fs.openSync(`/proc/${pid}/fd/${theirs[i]}`, 'r+')));
  });
  child.stdin.end();
  await exited;
});

describe('slots out of range', () => {
  for (const slots of BAD_SLOT_COUNTS) {
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
      // Seals are checked first: a tmpfs file that is not a sealed memfd is the wrong handle,
      // whatever it holds (see 'memory that is not a sealed memfd' below).
      'a zero-length tmpfs file',
      () => shmFile('empty', Buffer.alloc(0)),
      'BAKERY_BAD_HANDLE',
    ],
    [
      'a memfd with a lock cut short',
      () => memfd(bytesFor(4) - 64, validHeader),
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

  describe('memory that is not a sealed memfd', () => {
    const sealedMessage =
      /^fd \d+ is not a sealed memfd: an unsealed file could be truncated under the mapping \(/;
    const refused = (fd: number) => {
      const before = contents(fd);
      let err: unknown;
      try {
        openMutex({ fd }).close();
      } catch (e) {
        err = e;
      }
      expect((err as { code?: unknown } | undefined)?.code).toBe('BAKERY_BAD_HANDLE');
      expect((err as Error).message).toMatch(sealedMessage);
      expect(contents(fd)).toBe(before);
      return (err as Error).message;
    };

    test('a /dev/shm file holding a valid lock (tmpfs, but it cannot be sealed): BAKERY_BAD_HANDLE, bytes unchanged', () => {
      expect(refused(shmFile('unsealed', validLock()))).toContain('seals 0x1,');
    });

    const cases: [keyof typeof FOREIGN, string, string][] = [
      ['noSeals', 'a memfd that allows sealing but has no seals', 'seals 0x0,'],
      ['notSealable', 'a memfd made without MFD_ALLOW_SEALING', 'seals 0x1,'],
      [
        'shrinkGrowOnly',
        'a memfd sealed against shrink and grow but not F_SEAL_SEAL',
        'seals 0x6,',
      ],
      ['writeSealed', 'a memfd that is also sealed against writing', 'sealed against writing'],
    ];
    for (const [name, what, why] of cases) {
      test(`${what}, holding a valid lock: BAKERY_BAD_HANDLE, bytes unchanged`, () => {
        expect(refused(foreign.get(name)!)).toContain(why);
      });
    }

    test('a zero-length sealed memfd: BAKERY_BAD_LAYOUT', () => {
      expect(codeOf(() => openMutex({ fd: foreign.get('empty')! }))).toBe('BAKERY_BAD_LAYOUT');
    });

    test('a memfd made elsewhere but sealed like createMutex seals it is a lock', () => {
      const fd = foreign.get('sealed')!;
      const m = openMutex({ fd });
      m.lockSync().release();
      m.close();
      expect(fs.fstatSync(fd).size).toBe(bytesFor(4));
    });

    test('a child handed an unsealed /dev/shm file through BAKERY_MMAP_FD gets BAKERY_BAD_HANDLE', () => {
      const fd = shmFile('inherited', validLock());
      const before = contents(fd);
      const dist = fileURLToPath(new URL('../dist/index.cjs', import.meta.url));
      const r = spawnSync(
        process.execPath,
        [
          '-e',
          `try { require(${JSON.stringify(dist)}).openMutex(); console.log('opened') } catch (e) { console.log(e.code, e.name) }`,
        ],
        {
          stdio: ['ignore', 'pipe', 'pipe', fd],
          env: { ...process.env, [FD_ENV]: '3' },
          encoding: 'utf8',
        },
      );
      expect(r.stderr).toBe('');
      expect(r.stdout.trim()).toBe('BAKERY_BAD_HANDLE BakeryError');
      expect(contents(fd)).toBe(before);
    });
  });

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
