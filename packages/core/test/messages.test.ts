// Error messages carry their context: which call, on which lock, after how long, and what to do.
// The codes are the contract; these check that a user reading the message is not left guessing.
import { describe, expect, test } from 'vitest';
import { BakeryError, openOn } from '../src/index.js';
import { createReferenceCells } from '../src/reference.js';

function caught(fn: () => unknown): BakeryError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(BakeryError);
    return err as BakeryError;
  }
  throw new Error('expected a throw');
}

async function rejected(p: Promise<unknown>): Promise<BakeryError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(BakeryError);
    return err as BakeryError;
  }
  throw new Error('expected a rejection');
}

describe('error messages name the call, the lock, the timeout and the remedy', () => {
  const open = (cells: ReturnType<typeof createReferenceCells>, claim?: 'lock') =>
    openOn({ cells, description: 'test lock 7' }, claim ? { claim } : undefined);

  test('a lockSync/lock timeout names the call, the lock and the timeout', async () => {
    const cells = createReferenceCells(3);
    const a = open(cells);
    const b = open(cells);
    const lease = a.lockSync();
    const sync = caught(() => b.lockSync({ timeout: 30 }));
    expect(sync.code).toBe('BAKERY_TIMEOUT');
    expect(sync.message).toMatch(/^lockSync\(\) on the lock \(test lock 7\) timed out after 30 ms/);
    expect(sync.message).toMatch(/inspect\(\)/);
    const async = await rejected(b.lock({ timeout: 40 }));
    expect(async.code).toBe('BAKERY_TIMEOUT');
    expect(async.message).toMatch(/^lock\(\) on the lock \(test lock 7\) timed out after 40 ms/);
    // Queued locally behind this instance's own holder: the same message.
    const queued = a.lock({ timeout: 20 });
    const local = await rejected(queued);
    expect(local.code).toBe('BAKERY_TIMEOUT');
    expect(local.message).toMatch(/^lock\(\) on the lock \(test lock 7\) timed out after 20 ms/);
    lease.release();
  });

  test('an abort keeps its cause and names the lock', async () => {
    const cells = createReferenceCells(2);
    const a = open(cells);
    const b = open(cells);
    const lease = a.lockSync();
    const ac = new AbortController();
    const p = b.lock({ signal: ac.signal });
    const reason = new Error('shutting down');
    ac.abort(reason);
    const err = await rejected(p);
    expect(err.code).toBe('BAKERY_ABORTED');
    expect(err.message).toBe('lock() on the lock (test lock 7) was aborted');
    expect(err.cause).toBe(reason);
    const pre = await rejected(b.lock({ signal: ac.signal }));
    expect(pre.cause).toBe(reason);
    lease.release();
  });

  test('no free slot: the count, the lock and three ways out', async () => {
    const cells = createReferenceCells(1);
    const a = open(cells);
    const b = open(cells, 'lock');
    const e = caught(() => b.tryLock());
    expect(e.code).toBe('BAKERY_NO_FREE_SLOT');
    expect(e.message).toMatch(
      /^tryLock\(\) on the lock \(test lock 7\): the lock is free, but all 1 slots/,
    );
    expect(e.message).toMatch(/close\(\).*more slots.*claim: 'lock'/);
    const w = caught(() => b.lockSync({ timeout: 30 }));
    expect(w.code).toBe('BAKERY_NO_FREE_SLOT');
    expect(w.message).toMatch(
      /^lockSync\(\) on the lock \(test lock 7\) timed out after 30 ms waiting for a free slot/,
    );
    a.close();
  });

  test('lockSync re-entry, close while held and a closed instance say what to do instead', () => {
    const cells = createReferenceCells(2);
    const a = open(cells);
    const lease = a.lockSync();
    const again = caught(() => a.lockSync());
    expect(again.code).toBe('BAKERY_ALREADY_HELD');
    expect(again.message).toMatch(
      /^lockSync\(\) on the lock \(test lock 7\): this Mutex instance already holds it/,
    );
    expect(again.message).toMatch(/use lock\(\)/);
    // tryLock on the holding instance is null, by design (see Mutex.tryLock).
    expect(a.tryLock()).toBeNull();
    const closing = caught(() => a.close());
    expect(closing.code).toBe('BAKERY_ALREADY_HELD');
    expect(closing.message).toMatch(
      /^close\(\) on the lock \(test lock 7\) while this instance holds it/,
    );
    lease.release();
    a.close();
    const closed = caught(() => a.tryLock());
    expect(closed.code).toBe('BAKERY_CLOSED');
    expect(closed.message).toMatch(/the lock \(test lock 7\) is closed/);
  });
});
