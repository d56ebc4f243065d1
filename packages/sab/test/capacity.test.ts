import { codeOf } from '@bakery/conformance';
import { expect, test } from 'vitest';
import { createMutex, openMutex } from '../src/index.js';

test('the creator claims its slot at its first lock: slots: 2 fits two workers of a thread that only hands the lock out', () => {
  const creator = createMutex({ slots: 2 });
  expect(creator.slot).toBe(-1);
  const a = openMutex(creator.handle);
  const b = openMutex(creator.handle);
  expect([a.slot, b.slot]).toEqual([0, 1]);
  // Now the creator is one participant too many: the lock is free, no slot is.
  expect(codeOf(() => creator.tryLock())).toBe('BAKERY_NO_FREE_SLOT');
  b.close();
  creator.lockSync().release();
  expect(creator.slot).toBe(1);
  for (const m of [a, creator]) m.close();
});

test("claim: 'open' claims at create, as before", () => {
  const creator = createMutex({ slots: 1, claim: 'open' });
  expect(creator.slot).toBe(0);
  const late = openMutex(creator.handle);
  expect(late.slot).toBe(-1);
  for (const m of [late, creator]) m.close();
});
