import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BakeryError, type BakeryErrorCode } from '@bakery/core';

/** What a futex wait ended with: woken, the cell did not hold `expected`, or the timeout passed. */
export type WaitResult = 'ok' | 'not-equal' | 'timed-out';

/** The memory `wait`/`wake`/`waitAsync` accept: a buffer from {@link Native.map} or an Int32Array over one. */
export type Cells32 = ArrayBuffer | Int32Array;

/** Seal bits as returned by {@link Native.seals} (`F_SEAL_*` of fcntl(2)). */
export const SEAL = {
  SEAL: 0x1,
  SHRINK: 0x2,
  GROW: 0x4,
  WRITE: 0x8,
  FUTURE_WRITE: 0x10,
  EXEC: 0x20,
} as const;

/**
 * The constructor the binding builds its coded errors with: `new ErrorClass(code, message,
 * { cause })` (@bakery/core's {@link BakeryError}).
 */
export type ErrorClass = new (
  code: BakeryErrorCode,
  message: string,
  options?: { cause?: unknown },
) => Error;

/**
 * The native binding shared by every bakery backend that maps memory (@bakery/mmap,
 * @bakery/shm's mapped path). Linux only. Every error it throws carries a stable `code`:
 * `BAKERY_BAD_HANDLE` (the fd is not open, not a shared-memory file, has the wrong size, or the
 * buffer is not one of our mappings) and `BAKERY_IO` (a system call failed; the message ends with
 * the errno name and `cause` is a Node-style system error `{ code: 'EMFILE', errno, syscall }`)
 * are {@link BakeryError}s — {@link loadNative} hands the binding @bakery/core's class right after
 * loading it (a binary loaded some other way, e.g. with node-gyp-build directly, throws plain
 * `Error`s with the same `code`, message and `cause`); `BAKERY_INVALID_ARGUMENT` is a
 * `TypeError`/`RangeError` for a bad argument. With both module formats of @bakery/core in one
 * process (an ES module and a `require` of the CJS build), the errors are instances of the class
 * of the copy of this package that loaded the binding last; `isBakeryError` (duck-typed) holds
 * for either.
 *
 * A cell `index` always counts 32-bit cells: from the buffer's start for an ArrayBuffer, from
 * the view's start for an Int32Array.
 */
export interface Native {
  /**
   * A fresh zero-filled memfd of `bytes` bytes (close-on-exec), sealed with
   * F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL so no one can truncate it under a mapper (on kernels
   * without memfd: an unlinked unsealed /dev/shm file). Returns the fd.
   */
  create(bytes: number): number;
  /**
   * Maps the whole of `fd` shared and read/write. `fd` must be a regular file of exactly `bytes`
   * bytes, open read/write, and — unless `anyFile` — on tmpfs (a memfd or a /dev/shm file). The
   * mapping lives until the returned buffer is collected and no wait on it is pending; closing
   * the fd does not unmap it. A file that is truncated under the mapping raises SIGBUS in the
   * process that next touches the lost pages (memfds from {@link Native.create} are sealed
   * against that).
   */
  map(fd: number, bytes: number, anyFile?: boolean): ArrayBuffer;
  /** The size of the file behind `fd` in bytes (a child learns the size before mapping). */
  size(fd: number): number;
  /** The seals of a memfd (see {@link SEAL}). */
  seals(fd: number): number;
  /**
   * Opens `/proc/self/fd/<fd>` read/write, close-on-exec: a new fd on a NEW open file description
   * of the same memory, so locks owned by a description (OFD locks) taken through it belong to
   * this process alone, not to every process that inherited `fd`.
   */
  reopen(fd: number): number;
  /**
   * Takes an OFD write lock (F_OFD_SETLK) on the one byte at `byte` of `fd`'s file: the per-slot
   * lease (byte = slot). It belongs to `fd`'s open file description and ends when the last fd of
   * that description is closed, at the latest when the process dies. Use an fd from
   * {@link Native.reopen}: an inherited fd shares the parent's description. Throws `BAKERY_IO`
   * ("lease busy") when another description holds a lock on that byte.
   */
  leaseTake(fd: number, byte: number): void;
  /**
   * Whether another open file description holds a lock on the byte at `byte` (F_OFD_GETLK
   * through `fd`; locks of `fd`'s own description do not count).
   */
  leaseHeld(fd: number, byte: number): boolean;
  /** Releases `fd`'s description's lock on the byte at `byte` (F_UNLCK; none held is no error). */
  leaseDrop(fd: number, byte: number): void;
  /** Sets or clears FD_CLOEXEC. Passing the fd in a spawn's `stdio` array does not need this. */
  setCloexec(fd: number, on: boolean): void;
  /** Closes `fd`. Mappings made from it stay valid. */
  close(fd: number): void;
  /**
   * Blocks the calling thread while cell `index` holds `expected` (compared as int32), at most
   * `timeoutMs` (fractions allowed, `Infinity` = no limit, negative = 0). A non-private futex: any
   * process mapping the same memory wakes it with {@link Native.wake}. `'ok'` may be a spurious
   * wake-up; the caller re-checks.
   */
  wait(buffer: Cells32, index: number, expected: number, timeoutMs: number): WaitResult;
  /** Wakes up to `count` (`Infinity` = all) waiters on cell `index`, in any process. Returns how many woke. */
  wake(buffer: Cells32, index: number, count: number): number;
  /**
   * {@link Native.wait} without blocking: the wait runs on a dedicated native thread (never a
   * libuv pool thread), and the promise keeps the event loop alive while pending. The timeout
   * starts at the call.
   */
  waitAsync(
    buffer: Cells32,
    index: number,
    expected: number,
    timeoutMs: number,
  ): Promise<WaitResult>;
  /** Ends every pending `waitAsync` of this thread at once; they resolve `'ok'`. Returns how many. */
  cancelWaits(): number;
  /**
   * The class this thread's coded errors are built with from now on (`null`: plain `Error`s with
   * a `code`). {@link loadNative} and {@link probeNative} call it with @bakery/core's
   * {@link BakeryError} right after loading; there is no need to call it yourself. If the
   * constructor throws, that error is dropped and a plain `Error` is thrown instead.
   */
  setErrorClass(errorClass: ErrorClass | null): void;
}

let loaded: Native | undefined;
let failure: BakeryError | undefined;

/**
 * Loads the binding: a prebuild from `prebuilds/` if one matches, else the local
 * `build/Release/bakery_native.node`. The result (the binding, or why it cannot load) is
 * cached for the life of the process.
 *
 * @throws BakeryError `BAKERY_NATIVE_UNAVAILABLE` (with the loader's error as `cause`) when there
 * is no usable binary.
 *
 * @example
 * ```ts
 * const native = loadNative();
 * const fd = native.create(4096);
 * const cells = new Int32Array(native.map(fd, 4096));
 * ```
 */
export function loadNative(): Native {
  const r = probeNative();
  if ('native' in r) return r.native;
  // A fresh error at each throw (the cached one is its cause's carrier only).
  throw new BakeryError('BAKERY_NATIVE_UNAVAILABLE', r.error.message, { cause: r.error.cause });
}

/**
 * Like {@link loadNative} without throwing: the binding, or the `BAKERY_NATIVE_UNAVAILABLE`
 * error that says why it cannot load (for backends with a pure-JS fallback).
 */
export function probeNative(): { native: Native } | { error: BakeryError } {
  if (loaded !== undefined) return { native: loaded };
  if (failure !== undefined) return { error: failure };
  const root = packageRoot();
  try {
    const nodeGypBuild = createRequire(join(root, 'package.json'))('node-gyp-build') as (
      dir: string,
    ) => unknown;
    const candidate = nodeGypBuild(root) as Partial<Native>;
    if (
      typeof candidate?.map !== 'function' ||
      typeof candidate.leaseHeld !== 'function' ||
      typeof candidate.leaseDrop !== 'function' ||
      typeof candidate.setErrorClass !== 'function'
    ) {
      throw new Error(
        'the binary loaded but is not the bakery binding of this version (no map/leaseHeld/leaseDrop/setErrorClass)',
      );
    }
    // From here on the binding's BAKERY_BAD_HANDLE/BAKERY_IO errors are this core's BakeryError.
    candidate.setErrorClass(BakeryError);
    loaded = candidate as Native;
    return { native: loaded };
  } catch (cause) {
    const rebuild =
      'Build it with `npm rebuild @bakery/native` (needs a C++17 compiler, make and python3; install scripts must be allowed, i.e. not --ignore-scripts)';
    const message = (cause as Error | undefined)?.message ?? String(cause);
    const why =
      process.platform !== 'linux'
        ? `it works on Linux only (this is ${process.platform})`
        : /No native build was found/.test(message)
          ? `no prebuilt binary matches and no local build was found. ${rebuild}`
          : `the binary was found but did not load (${message.split('\n')[0]}). ${rebuild}`;
    failure = new BakeryError(
      'BAKERY_NATIVE_UNAVAILABLE',
      `@bakery/native cannot load its binary: ${why}`,
      { cause },
    );
    return { error: failure };
  }
}

/**
 * The directory of @bakery/native's package.json. tsup bundles src/ into dist/, so the module's
 * own directory is src/ in tests and dist/ when built: walk up rather than assume a depth.
 */
function packageRoot(): string {
  // __dirname exists in the CJS build; the ESM build has import.meta.url.
  const start = typeof __dirname === 'string' ? __dirname : dirname(fileURLToPath(import.meta.url));
  let fallback: string | undefined;
  for (let dir = start; ; dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) {
      fallback ??= dir;
      try {
        if (
          (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: unknown }).name ===
          '@bakery/native'
        )
          return dir;
      } catch {
        // an unreadable manifest is not ours; keep walking
      }
    }
    if (dirname(dir) === dir) return fallback ?? start;
  }
}
