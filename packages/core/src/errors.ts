/**
 * Stable error codes. Messages may change between versions; codes never do.
 *
 * - `BAKERY_TIMEOUT` — `lock`/`lockSync` gave up after `timeout` ms; the caller's ticket was withdrawn.
 * - `BAKERY_ABORTED` — the `AbortSignal` passed to `lock` fired; the ticket was withdrawn.
 * - `BAKERY_NOT_HELD` — a lease was released twice, or an operation needed the lock to be held.
 * - `BAKERY_ALREADY_HELD` — the instance already holds (or is acquiring) the lock and the call
 *   would deadlock or cannot proceed (`lockSync` re-entry, `close()` while held).
 * - `BAKERY_CLOSED` — the Mutex instance was closed.
 * - `BAKERY_NO_FREE_SLOT` — `lock`/`lockSync` waited their timeout for a free slot and every
 *   slot stayed claimed, or `tryLock` found the lock free but no slot (an open on a full table
 *   is no error: the instance waits for a slot at its first lock).
 * - `BAKERY_BAD_LAYOUT` — the shared memory is not a bakery lock of this layout version/capacity.
 * - `BAKERY_BAD_NAME` — a lock name that is not allowed.
 * - `BAKERY_FOREIGN_OWNER` — the lock's file belongs to another user.
 * - `BAKERY_NOT_RECOVERABLE` — a holder died and its successor released without `markConsistent()`.
 * - `BAKERY_NATIVE_UNAVAILABLE` — the native binding cannot be loaded on this platform.
 * - `BAKERY_ACCESS_MISMATCH` — the lock was created for another access mode (mapped memory
 *   versus positional file I/O) than this participant can or was told to use; mixing the two on
 *   one lock would be unsafe, so it is refused and the lock is left untouched.
 * - `BAKERY_BAD_HANDLE` — a handle, fd or mapping given to `openMutex` is not a bakery lock.
 * - `BAKERY_IO` — an operating-system call failed (the `cause` carries the errno error).
 * - `BAKERY_LOCK_LOST` — a held lease stopped being the lock (a network backend's session
 *   ended or its heartbeat deadline passed): `lease.signal` aborts with it and `release()`
 *   rejects with it. Whatever the critical section was doing is no longer protected.
 * - `BAKERY_UNSUPPORTED` — the backend cannot offer this call or this server (`lockSync` over a
 *   network, a PostgreSQL that is too old or a read-only standby).
 * - `BAKERY_SHARED_SESSION` — the database session is shared with other clients (a
 *   transaction-pooling proxy such as pgbouncer), so a lock taken in it would not exclude them.
 * - `BAKERY_NAME_COLLISION` — two lock names map to the same 64-bit key; the one recorded first
 *   keeps it.
 * - `BAKERY_NOT_FOUND` — the named lock does not exist (a tool asked to read it without creating it).
 * - `BAKERY_CONNECTION` — the connection to the database failed or ended (the `cause` carries
 *   the driver's error).
 */
export type BakeryErrorCode =
  | 'BAKERY_TIMEOUT'
  | 'BAKERY_ABORTED'
  | 'BAKERY_NOT_HELD'
  | 'BAKERY_ALREADY_HELD'
  | 'BAKERY_CLOSED'
  | 'BAKERY_NO_FREE_SLOT'
  | 'BAKERY_BAD_LAYOUT'
  | 'BAKERY_BAD_NAME'
  | 'BAKERY_FOREIGN_OWNER'
  | 'BAKERY_NOT_RECOVERABLE'
  | 'BAKERY_NATIVE_UNAVAILABLE'
  | 'BAKERY_ACCESS_MISMATCH'
  | 'BAKERY_BAD_HANDLE'
  | 'BAKERY_IO'
  | 'BAKERY_LOCK_LOST'
  | 'BAKERY_UNSUPPORTED'
  | 'BAKERY_SHARED_SESSION'
  | 'BAKERY_NAME_COLLISION'
  | 'BAKERY_NOT_FOUND'
  | 'BAKERY_CONNECTION';

/** Marks every BakeryError, whichever copy of core made it (see {@link BakeryError}). */
const BRAND: unique symbol = Symbol.for('@bakery/core.BakeryError');

/**
 * The one error class of bakery. Always created fresh at the throw site, with a stable
 * {@link BakeryErrorCode} in `code` and the underlying error (if any) in `cause`.
 *
 * @example
 * ```ts
 * try {
 *   mutex.lockSync({ timeout: 100 });
 * } catch (err) {
 *   if (err instanceof BakeryError && err.code === 'BAKERY_TIMEOUT') retryLater();
 *   else throw err;
 * }
 * ```
 */
export class BakeryError extends Error {
  /** The stable code; compare against this, never against the message. */
  readonly code: BakeryErrorCode;

  constructor(code: BakeryErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    Object.defineProperty(this, BRAND, { value: true });
  }

  /**
   * `err instanceof BakeryError` holds for a BakeryError of ANY copy of this package in the
   * process. A process can hold two — the ES module and the CommonJS build, e.g. when an ES
   * module app uses @bakery/shm, which loads its optional native binding with require — and a
   * class check alone would then miss half the errors. The brand is a registered symbol.
   */
  static override [Symbol.hasInstance](x: unknown): boolean {
    return (
      (typeof x === 'object' && x !== null && (x as Record<symbol, unknown>)[BRAND] === true) ||
      Function.prototype[Symbol.hasInstance].call(BakeryError, x)
    );
  }

  override get name(): string {
    return 'BakeryError';
  }
}

/** True when `err` is a {@link BakeryError}, optionally with the given code. */
export function isBakeryError(err: unknown, code?: BakeryErrorCode): err is BakeryError {
  // Duck-typed so that an error from the other module format (ESM vs CJS copy of core) or
  // from native code still counts.
  if (!(err instanceof Error)) return false;
  const c = (err as { code?: unknown }).code;
  return typeof c === 'string' && c.startsWith('BAKERY_') && (code === undefined || c === code);
}
