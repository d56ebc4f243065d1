import { rangeError } from '@bakery/core';
import { type Session, sqlState } from './session.js';

/** The state table, as SQL (quoted) and as shown in messages. */
export interface Table {
  sql: string;
  display: string;
}

/** Default state table. */
export const DEFAULT_TABLE = 'bakery_locks';

const IDENT = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/** `table` or `schema.table`, each an unquoted identifier; else BAKERY_INVALID_ARGUMENT. */
export function checkTable(table: unknown = DEFAULT_TABLE): Table {
  const parts = typeof table === 'string' ? table.split('.') : [];
  if (parts.length < 1 || parts.length > 2 || !parts.every((p) => IDENT.test(p))) {
    throw rangeError(
      `table must be a name like bakery_locks or ops.bakery_locks (letters, digits, _; at most 63 each), got ${JSON.stringify(table)}`,
    );
  }
  return { sql: parts.map((p) => `"${p.toLowerCase()}"`).join('.'), display: parts.join('.') };
}

/**
 * The state table: one row per lock name. `fence` is the last fencing token handed out, `held`
 * is true from an acquisition until its release is recorded (so a holder that ends without
 * releasing leaves it true: the next acquirer sees ownerDied), `state` is 'not-recoverable' once
 * a successor of a dead holder released without markConsistent() (robust: 'manual').
 */
export async function ensureTable(session: Session, table: Table): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await session.query(
        `CREATE TABLE IF NOT EXISTS ${table.sql} (
           key int8 PRIMARY KEY,
           name text NOT NULL,
           fence int8 NOT NULL DEFAULT 0,
           held boolean NOT NULL DEFAULT false,
           state text NOT NULL DEFAULT 'consistent' CHECK (state IN ('consistent', 'not-recoverable')),
           holder text,
           holder_pid int4,
           acquired_at timestamptz
         )`,
      );
      return;
    } catch (err) {
      // Two clients creating it at once: one of them gets a unique violation on the catalog.
      const state = sqlState(err);
      if (attempt < 3 && (state === '23505' || state === '42P07')) continue;
      throw err;
    }
  }
}
