import { createHash } from 'node:crypto';
import { BakeryError } from '@bakery/core';

/** Longest lock name, in UTF-16 code units. */
export const MAX_NAME_LENGTH = 1024;

/**
 * The 64-bit advisory-lock key of a lock name: the first 8 bytes of SHA-256 of
 * `"bakery:" + name` (UTF-8), read big-endian as a signed integer. Stable across versions and
 * languages (it is part of the on-server format, see the package README). Two names that map to
 * the same key are told apart by the name column of the state table: the second gets
 * `BAKERY_NAME_COLLISION`.
 */
export function lockKey(name: string): bigint {
  checkName(name);
  const digest = createHash('sha256').update(`bakery:${name}`, 'utf8').digest();
  return digest.readBigInt64BE(0);
}

/** The key as PostgreSQL's pg_locks shows it: classid (high 32 bits) and objid (low 32 bits). */
export function keyParts(key: bigint): { classid: number; objid: number } {
  const u = BigInt.asUintN(64, key);
  return { classid: Number(u >> 32n), objid: Number(u & 0xffffffffn) };
}

/** A non-empty string of at most {@link MAX_NAME_LENGTH} code units without NUL; else BAKERY_BAD_NAME. */
export function checkName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_NAME_LENGTH) {
    throw new BakeryError(
      'BAKERY_BAD_NAME',
      `a lock name must be a string of 1 to ${MAX_NAME_LENGTH} characters, got ${describe(name)}`,
    );
  }
  if (name.includes('\0') || LONE_SURROGATE.test(name)) {
    throw new BakeryError(
      'BAKERY_BAD_NAME',
      `a lock name must be well-formed text without NUL characters, got ${JSON.stringify(name)}`,
    );
  }
}

/** Text that UTF-8 cannot carry (it would encode as U+FFFD, so two names would become one). */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function describe(x: unknown): string {
  if (typeof x === 'string') return `${x.length} characters`;
  return x === null ? 'null' : typeof x;
}
