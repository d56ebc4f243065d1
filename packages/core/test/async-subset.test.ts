import { describe, expect, test } from 'vitest';
import { type AsyncLease, type AsyncMutex, type Mutex, openOn } from '../src/index.js';
import { createReferenceCells } from '../src/reference.js';
import { codeOf } from './helpers.js';

/**
 * Written against the asynchronous subset only — every call awaited, no lockSync — as code
 * meant to run on any backend (the network ones included) would be.
 */
async function exclusiveCounter(mutexes: AsyncMutex[], rounds: number): Promise<number[]> {
  const shared = { counter: 0, inside: 0, overlaps: 0 };
  const critical = async () => {
    if (shared.inside++ !== 0) shared.overlaps++;
    const c = shared.counter;
    await new Promise((r) => setImmediate(r));
    shared.counter = c + 1;
    shared.inside--;
  };
  await Promise.all(
    mutexes.map(async (m, i) => {
      for (let k = 0; k < rounds; k++) {
        const way = (k + i) % 3;
        if (way === 0) {
          const lease = await m.lock({ timeout: 10_000 });
          try {
            await critical();
          } finally {
            await lease.release();
          }
        } else if (way === 1) {
          let lease: AsyncLease | null = await m.tryLock();
          lease ??= await m.lock();
          await using _ = lease;
          await critical();
        } else {
          await m.withLock(critical);
        }
      }
    }),
  );
  return [shared.counter, shared.overlaps];
}

describe('the asynchronous subset (AsyncMutex / AsyncLease)', () => {
  test('code written against it runs unchanged on a local Mutex: exact count, no overlap, every way of locking', async () => {
    const cells = createReferenceCells(4);
    const mutexes: Mutex[] = [0, 1, 2, 3].map(() => openOn({ cells }));
    // A local Mutex is an AsyncMutex (this assignment is the type check).
    const subset: AsyncMutex[] = mutexes;
    const [counter, overlaps] = await exclusiveCounter(subset, 300);
    expect(counter).toBe(4 * 300);
    expect(overlaps).toBe(0);
    for (const m of mutexes) expect(m.held).toBe(false);
    for (const m of mutexes) await m.close();
  });

  test('await using releases a lease; a second release of it is BAKERY_NOT_HELD', async () => {
    const cells = createReferenceCells(2);
    const a = openOn({ cells });
    const b = openOn({ cells });
    let kept: AsyncLease | undefined;
    {
      await using lease = await a.lock();
      kept = lease;
      expect(b.tryLock()).toBe(null);
    }
    expect(a.held).toBe(false);
    expect(codeOf(() => kept!.release())).toBe('BAKERY_NOT_HELD');
    b.tryLock()!.release();
    a.close();
    b.close();
  });

  test('using / await using a Mutex closes it (its slot is free again), and refuses while it holds', async () => {
    const cells = createReferenceCells(1);
    {
      using m = openOn({ cells });
      expect(m.slot).toBe(0);
    }
    {
      await using m = openOn({ cells });
      // The only slot was freed by the block above.
      expect(m.slot).toBe(0);
    }
    const held = openOn({ cells });
    const lease = held.lockSync();
    expect(codeOf(() => held[Symbol.dispose]())).toBe('BAKERY_ALREADY_HELD');
    await expect(held[Symbol.asyncDispose]()).rejects.toMatchObject({
      code: 'BAKERY_ALREADY_HELD',
    });
    lease.release();
    held[Symbol.dispose]();
    // Closed: the slot is free for the next participant.
    expect(openOn({ cells }).slot).toBe(0);
  });

  test('release and markConsistent are bound: a detached release() releases its own lease, once', async () => {
    const cells = createReferenceCells(2);
    const a = openOn({ cells });
    const b = openOn({ cells });
    const { release, markConsistent } = a.lockSync();
    markConsistent(); // nobody died: a no-op, but callable detached
    expect(b.tryLock()).toBe(null);
    release();
    expect(a.held).toBe(false);
    expect(codeOf(release)).toBe('BAKERY_NOT_HELD');
    // Handed to a timer as a bare function, as other lock libraries allow.
    const lease = await a.lock();
    await new Promise<void>((resolve) =>
      setTimeout(() => {
        lease.release.call(undefined);
        resolve();
      }, 1),
    );
    expect(a.held).toBe(false);
    b.lockSync().release();
    a.close();
    b.close();
  });
});
