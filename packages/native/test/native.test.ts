import { fork, spawnSync } from 'node:child_process';
import { closeSync, promises as fsp, ftruncateSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { BakeryError } from '@bakery/core';
import { afterEach, describe, expect, test } from 'vitest';
import { loadNative, SEAL } from '../src/native.js';

const native = loadNative();
const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
const BYTES = 4096;
const packageRoot = fileURLToPath(new URL('..', import.meta.url));

const opened: number[] = [];
function createFd(bytes = BYTES): number {
  const fd = native.create(bytes);
  opened.push(fd);
  return fd;
}
afterEach(() => {
  native.cancelWaits();
  for (const fd of opened.splice(0)) {
    try {
      closeSync(fd);
    } catch {}
  }
});

function codeOf(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return (err as { code?: unknown }).code;
  }
  return 'no error';
}

describe('handles', () => {
  test('a closed or never-opened fd is BAKERY_BAD_HANDLE', () => {
    expect(codeOf(() => native.map(987_654, BYTES))).toBe('BAKERY_BAD_HANDLE');
    expect(codeOf(() => native.size(987_654))).toBe('BAKERY_BAD_HANDLE');
    expect(codeOf(() => native.reopen(987_654))).toBe('BAKERY_BAD_HANDLE');
    expect(codeOf(() => native.close(987_654))).toBe('BAKERY_BAD_HANDLE');
  });

  test('mapping with the wrong size is BAKERY_BAD_HANDLE', () => {
    const fd = createFd();
    expect(native.size(fd)).toBe(BYTES);
    expect(codeOf(() => native.map(fd, BYTES * 2))).toBe('BAKERY_BAD_HANDLE');
    expect(codeOf(() => native.map(fd, BYTES - 4))).toBe('BAKERY_BAD_HANDLE');
  });

  test('an fd that is not shared memory is BAKERY_BAD_HANDLE', () => {
    // A pipe is never a tmpfs regular file.
    const r = spawnSync(
      process.execPath,
      [
        '-e',
        `const n = require('node-gyp-build')(${JSON.stringify(packageRoot)}); try { n.map(0, 4096) } catch (e) { console.log(e.code) }`,
      ],
      { input: '', encoding: 'utf8', cwd: packageRoot },
    );
    expect(r.stdout.trim()).toBe('BAKERY_BAD_HANDLE');
  });

  test('bad arguments are TypeError/RangeError with BAKERY_INVALID_ARGUMENT', () => {
    const fd = createFd();
    const buffer = native.map(fd, BYTES);
    const call = (fn: () => unknown) => {
      try {
        fn();
      } catch (err) {
        return [(err as Error).constructor.name, (err as { code?: unknown }).code];
      }
      return 'no error';
    };
    expect(call(() => native.create('4096' as unknown as number))).toEqual([
      'TypeError',
      'BAKERY_INVALID_ARGUMENT',
    ]);
    expect(call(() => native.create(0))).toEqual(['RangeError', 'BAKERY_INVALID_ARGUMENT']);
    expect(call(() => native.map(-1, BYTES))).toEqual(['RangeError', 'BAKERY_INVALID_ARGUMENT']);
    expect(call(() => native.wait(buffer, BYTES / 4, 0, 0))).toEqual([
      'RangeError',
      'BAKERY_INVALID_ARGUMENT',
    ]);
    expect(call(() => native.wait(buffer, 0, 0, Number.NaN))).toEqual([
      'RangeError',
      'BAKERY_INVALID_ARGUMENT',
    ]);
    expect(call(() => native.wake(new Uint32Array(buffer) as never, 0, 1))).toEqual([
      'TypeError',
      'BAKERY_INVALID_ARGUMENT',
    ]);
    expect(call(() => native.wake(buffer, 0, -1))).toEqual([
      'RangeError',
      'BAKERY_INVALID_ARGUMENT',
    ]);
  });

  test('a buffer that is not one of our mappings is BAKERY_BAD_HANDLE', () => {
    expect(codeOf(() => native.wait(new ArrayBuffer(64), 0, 0, 0))).toBe('BAKERY_BAD_HANDLE');
    expect(codeOf(() => native.wake(new Int32Array(16), 0, 1))).toBe('BAKERY_BAD_HANDLE');
  });

  test('a system-call failure is BAKERY_IO with the errno name and a Node-style cause', () => {
    // Run out of fds in a child limited to 64 of them: memfd_create fails with EMFILE.
    const script = `
      const n = require('node-gyp-build')(${JSON.stringify(packageRoot)});
      try { for (;;) n.create(64) } catch (e) {
        console.log(JSON.stringify({ plain: e.constructor === Error, code: e.code, message: e.message, cause: { code: e.cause.code, errno: e.cause.errno, syscall: e.cause.syscall } }));
      }`;
    const r = spawnSync(
      '/bin/sh',
      ['-c', 'ulimit -n 64 && exec "$0" -e "$1"', process.execPath, script],
      {
        encoding: 'utf8',
        cwd: packageRoot,
      },
    );
    // Loaded with node-gyp-build directly, nobody handed over BakeryError: a plain coded Error.
    expect(JSON.parse(r.stdout)).toEqual({
      plain: true,
      code: 'BAKERY_IO',
      message: 'memfd_create failed: EMFILE',
      cause: { code: 'EMFILE', errno: -24, syscall: 'memfd_create' },
    });
  });
});

describe('errors are BakeryErrors', () => {
  function caught(fn: () => unknown): Error {
    try {
      fn();
    } catch (err) {
      return err as Error;
    }
    throw new Error('no error');
  }

  test('a BAKERY_BAD_HANDLE from the binding is a BakeryError with the same code and message', () => {
    const err = caught(() => native.size(987_654));
    expect(err).toBeInstanceOf(BakeryError);
    expect(err.name).toBe('BakeryError');
    expect((err as BakeryError).code).toBe('BAKERY_BAD_HANDLE');
    expect(err.message).toBe('fd 987654 is not an open file descriptor');
    expect('cause' in err).toBe(false);
    // The stack starts at the native call, like any error thrown there.
    expect(err.stack).toContain('BakeryError: fd 987654 is not an open file descriptor');
    const wait = caught(() => native.wait(new ArrayBuffer(64), 0, 0, 0));
    expect(wait).toBeInstanceOf(BakeryError);
    expect((wait as BakeryError).code).toBe('BAKERY_BAD_HANDLE');
  });

  test('a BAKERY_IO from the binding is a BakeryError whose cause is the Node-style system error', () => {
    const fd = createFd();
    const a = native.reopen(fd);
    const b = native.reopen(fd);
    opened.push(a, b);
    native.leaseTake(a, 3);
    const err = caught(() => native.leaseTake(b, 3));
    expect(err).toBeInstanceOf(BakeryError);
    expect((err as BakeryError).code).toBe('BAKERY_IO');
    expect(err.message).toBe('lease busy: byte 3 is locked: EAGAIN');
    const cause = err.cause as NodeJS.ErrnoException;
    expect(cause).toBeInstanceOf(Error);
    expect(cause).not.toBeInstanceOf(BakeryError);
    expect({
      code: cause.code,
      errno: cause.errno,
      syscall: cause.syscall,
      message: cause.message,
    }).toEqual({
      code: 'EAGAIN',
      errno: -11,
      syscall: 'fcntl(F_OFD_SETLK)',
      message: 'EAGAIN: Resource temporarily unavailable, fcntl(F_OFD_SETLK)',
    });
  });

  test('argument errors stay TypeError/RangeError', () => {
    const err = caught(() => native.size(-1));
    expect(err).toBeInstanceOf(RangeError);
    expect(err).not.toBeInstanceOf(BakeryError);
    expect((err as { code?: unknown }).code).toBe('BAKERY_INVALID_ARGUMENT');
    const bad = caught(() => native.setErrorClass('BakeryError' as never));
    expect(bad).toBeInstanceOf(TypeError);
    expect((bad as { code?: unknown }).code).toBe('BAKERY_INVALID_ARGUMENT');
  });

  test('without a class, or with one whose constructor throws, errors are plain coded Errors', () => {
    try {
      native.setErrorClass(null);
      const plain = caught(() => native.size(987_654));
      expect(plain.constructor).toBe(Error);
      expect((plain as { code?: unknown }).code).toBe('BAKERY_BAD_HANDLE');
      expect(plain.message).toBe('fd 987654 is not an open file descriptor');
      native.setErrorClass(
        class Broken extends Error {
          constructor() {
            super('broken');
            throw new Error('broken');
          }
        },
      );
      const fallback = caught(() => native.size(987_654));
      expect(fallback.constructor).toBe(Error);
      expect((fallback as { code?: unknown }).code).toBe('BAKERY_BAD_HANDLE');
    } finally {
      native.setErrorClass(BakeryError);
    }
    expect(caught(() => native.size(987_654))).toBeInstanceOf(BakeryError);
  });
});

describe('memory', () => {
  test('the memfd is sealed: it can be neither shrunk nor grown', () => {
    const fd = createFd();
    const seals = native.seals(fd);
    expect(seals & (SEAL.SHRINK | SEAL.GROW)).toBe(SEAL.SHRINK | SEAL.GROW);
    expect(seals & SEAL.SEAL).toBe(SEAL.SEAL);
    expect(codeOf(() => ftruncateSync(fd, 0))).toBe('EPERM');
    expect(codeOf(() => ftruncateSync(fd, BYTES * 2))).toBe('EPERM');
    expect(native.size(fd)).toBe(BYTES);
  });

  test('a fresh memfd is zero-filled', () => {
    const cells = new Int32Array(native.map(createFd(), BYTES));
    expect(cells.every((v) => v === 0)).toBe(true);
  });

  test('two mappings of one fd see the same memory', () => {
    const fd = createFd();
    const a = new Int32Array(native.map(fd, BYTES));
    const b = new Int32Array(native.map(fd, BYTES));
    Atomics.store(a, 7, 0x524b4142);
    expect(Atomics.load(b, 7)).toBe(0x524b4142);
    expect(Atomics.compareExchange(b, 7, 0x524b4142, -1)).toBe(0x524b4142);
    expect(Atomics.load(a, 7)).toBe(-1);
  });

  test('a reopened fd is a new description of the same memory, and the mapping outlives the fd', () => {
    const fd = createFd();
    const again = native.reopen(fd);
    expect(again).not.toBe(fd);
    expect(native.size(again)).toBe(BYTES);
    const a = new Int32Array(native.map(fd, BYTES));
    const b = new Int32Array(native.map(again, BYTES));
    native.close(again);
    Atomics.store(b, 3, 99);
    expect(Atomics.load(a, 3)).toBe(99);
  });
});

describe('futex', () => {
  test('a wait on an unchanged cell times out', () => {
    const cells = new Int32Array(native.map(createFd(), BYTES));
    const t0 = performance.now();
    expect(native.wait(cells, 1, 0, 30)).toBe('timed-out');
    expect(performance.now() - t0).toBeGreaterThanOrEqual(29);
    expect(native.wait(cells, 1, 0, 0)).toBe('timed-out');
  });

  test('a wait on a cell that holds another value returns not-equal at once', () => {
    const cells = new Int32Array(native.map(createFd(), BYTES));
    Atomics.store(cells, 1, 5);
    expect(native.wait(cells, 1, 4, Number.POSITIVE_INFINITY)).toBe('not-equal');
    // expected is compared as int32, like Atomics.wait
    Atomics.store(cells, 1, -1);
    expect(native.wait(cells, 1, 0xffffffff, 0)).toBe('timed-out');
  });

  test('wake with nobody waiting wakes nobody', () => {
    const cells = new Int32Array(native.map(createFd(), BYTES));
    expect(native.wake(cells, 0, Number.POSITIVE_INFINITY)).toBe(0);
  });

  test('waitAsync times out and reports not-equal like wait', async () => {
    const cells = new Int32Array(native.map(createFd(), BYTES));
    Atomics.store(cells, 2, 1);
    await expect(native.waitAsync(cells, 2, 0, 1000)).resolves.toBe('not-equal');
    await expect(native.waitAsync(cells, 2, 1, 20)).resolves.toBe('timed-out');
  });

  test('a wake through a second mapping reaches a waiter on the first', async () => {
    const fd = createFd();
    const a = new Int32Array(native.map(fd, BYTES));
    const b = native.map(fd, BYTES);
    const pending = native.waitAsync(a, 9, 0, 30_000);
    let woken = 0;
    for (let i = 0; i < 1000 && woken === 0; i++) {
      await new Promise((r) => setTimeout(r, 2));
      woken = native.wake(b, 9, 1);
    }
    expect(woken).toBe(1);
    await expect(pending).resolves.toBe('ok');
  });

  test('cancelWaits ends pending async waits with ok', async () => {
    const cells = new Int32Array(native.map(createFd(), BYTES));
    const pending = [0, 1, 2].map((i) => native.waitAsync(cells, i, 0, Number.POSITIVE_INFINITY));
    expect(native.cancelWaits()).toBe(3);
    await expect(Promise.all(pending)).resolves.toEqual(['ok', 'ok', 'ok']);
  });

  test('fs keeps working while 16 async waits are pending, and all of them are then woken', async () => {
    const cells = new Int32Array(native.map(createFd(), BYTES));
    const settled: string[] = [];
    const pending = Array.from({ length: 16 }, (_, i) =>
      native.waitAsync(cells, 16 + i, 0, 60_000).then((r) => {
        settled.push(r);
        return r;
      }),
    );
    // libuv's pool has 4 threads: if each wait held one, this read would never run.
    const text = await Promise.race([
      fsp.readFile(fileURLToPath(import.meta.url), 'utf8'),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('fs starved')), 10_000)),
    ]);
    expect(text).toContain('fs keeps working');
    expect(settled).toEqual([]);
    // Wake until every waiter has been reached (a thread may not be in the futex yet).
    let total = 0;
    for (let round = 0; round < 1000 && total < 16; round++) {
      for (let i = 0; i < 16; i++) total += native.wake(cells, 16 + i, 1);
      if (total < 16) await new Promise((r) => setTimeout(r, 2));
    }
    expect(total).toBe(16);
    expect(await Promise.all(pending)).toEqual(Array(16).fill('ok'));
  });
});

describe('across processes', () => {
  test('a forked child maps the memfd from its stdio and wakes the parent waiting in waitAsync', async () => {
    const fd = createFd();
    const cells = new Int32Array(native.map(fd, BYTES));
    Atomics.store(cells, 0, 0x524b4142);
    const child = fork(fixture('native-child.cjs'), [], {
      stdio: ['inherit', 'inherit', 'inherit', 'ipc', fd],
      env: { ...process.env, BAKERY_TEST_FD: '4' },
    });
    const exited = new Promise<number | null>((resolve) =>
      child.on('exit', (code) => resolve(code)),
    );
    const messages: Array<Record<string, unknown>> = [];
    const next = () =>
      new Promise<Record<string, unknown>>((resolve) => {
        child.once('message', (m) => {
          messages.push(m as Record<string, unknown>);
          resolve(m as Record<string, unknown>);
        });
      });
    expect(await next()).toEqual({ ready: true, bytes: BYTES });
    const woke = native.waitAsync(cells, 5, 0, 30_000);
    // Give the waiter thread time to sleep so the child's wake has someone to count.
    await new Promise((r) => setTimeout(r, 50));
    const reply = next();
    child.send({ op: 'store-and-wake', index: 5, value: 1 });
    expect(await reply).toEqual({ bytes: BYTES, seen: 0x524b4142, woken: 1 });
    expect(await woke).toBe('ok');
    expect(Atomics.load(cells, 5)).toBe(1);
    expect(await exited).toBe(0);
  });

  const lifecycle = (scenario: string) =>
    spawnSync(process.execPath, [fixture('native-lifecycle.cjs'), scenario], {
      encoding: 'utf8',
      timeout: 30_000,
    });

  test('a pending waitAsync keeps the process alive until it settles; idle threads do not', () => {
    const r = lifecycle('keeps-alive');
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('result timed-out');
    expect(r.status).toBe(0);
  });

  test('process.exit with pending waits exits cleanly', () => {
    const r = lifecycle('exit-while-waiting');
    expect(r.signal).toBe(null);
    expect(r.status).toBe(0);
  });

  test('terminating a worker with pending waits neither hangs nor crashes', () => {
    const r = lifecycle('worker-terminated-while-waiting');
    expect(r.signal).toBe(null);
    expect(r.stdout.trim()).toBe('terminated');
    expect(r.status).toBe(0);
  });

  test('a worker that exits while holding a mapping tears down cleanly', () => {
    const r = lifecycle('worker-exits-with-live-mapping');
    expect(r.signal).toBe(null);
    expect(r.stdout.trim()).toBe('worker exit 0 cell 7');
    expect(r.status).toBe(0);
  });
});
