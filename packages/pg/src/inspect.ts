import { BakeryError } from '@bakery/core';
import { checkName } from './key.js';
import { type PgSnapshot, readSnapshot } from './mutex.js';
import { type Connection, Session, sqlState } from './session.js';
import { checkTable } from './table.js';

/**
 * Read a lock's state without opening it (creates nothing, takes nothing): the state row
 * (fencing token, held, recovery state, recorded holder) and the server's queue from pg_locks.
 * `BAKERY_NOT_FOUND` when the table or the lock's row does not exist. `bakery inspect --pg`
 * calls it.
 */
export async function inspectLock(
  name: string,
  options: { connection?: Connection; table?: string } = {},
): Promise<PgSnapshot> {
  checkName(name);
  const table = checkTable(options.table);
  const session = await Session.connect(options.connection, 10_000, name);
  try {
    return await readSnapshot((t, v) => session.query(t, v), table, name);
  } catch (err) {
    if (sqlState(err) === '42P01')
      throw new BakeryError(
        'BAKERY_NOT_FOUND',
        `there is no table ${table.display}: no bakery lock was ever opened in this database`,
      );
    throw err;
  } finally {
    await session.end();
  }
}
