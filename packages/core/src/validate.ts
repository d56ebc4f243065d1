/** Code carried by TypeError/RangeError for bad arguments (programmer errors). */
export const INVALID_ARGUMENT = 'BAKERY_INVALID_ARGUMENT';

/** A RangeError with `code = 'BAKERY_INVALID_ARGUMENT'`. */
export function rangeError(message: string): RangeError {
  return Object.assign(new RangeError(message), { code: INVALID_ARGUMENT });
}

/** A TypeError with `code = 'BAKERY_INVALID_ARGUMENT'`. */
export function typeError(message: string): TypeError {
  return Object.assign(new TypeError(message), { code: INVALID_ARGUMENT });
}

/** `undefined` → Infinity; else a non-negative number of milliseconds. */
export function checkTimeout(timeout: unknown): number {
  if (timeout === undefined) return Number.POSITIVE_INFINITY;
  if (typeof timeout !== 'number' || Number.isNaN(timeout) || timeout < 0) {
    throw rangeError(
      `timeout must be a non-negative number of milliseconds, got ${String(timeout)}`,
    );
  }
  return timeout;
}
