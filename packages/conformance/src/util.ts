/** Helpers shared by the conformance cases (suite.ts, faults.ts, damage.ts). */
import type { ConformanceFactory, Fixture } from './types.js';

/**
 * Slot counts every backend must refuse with `BAKERY_INVALID_ARGUMENT` (and change nothing):
 * 0, negative, non-integer, NaN, infinite, not a number, null, above the 4096 maximum. The one
 * list: the conformance suite and each backend's bad-input tests use it.
 */
export const BAD_SLOT_COUNTS: readonly unknown[] = [
  0,
  -1,
  -4096,
  1.5,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  '4',
  null,
  4097,
  2 ** 31,
];

/** Scale factor for the heavy cases: `BAKERY_CONFORMANCE_SCALE=10 npm test` for a long run. */
export function scale(): number {
  const s = Number(process.env.BAKERY_CONFORMANCE_SCALE ?? '1');
  return Number.isFinite(s) && s > 0 ? s : 1;
}

function codeOfError(err: unknown): string {
  return (err as { code?: string }).code ?? `uncoded ${(err as Error).name}`;
}

/** The `code` `fn` throws (undefined when it does not throw). */
export function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return codeOfError(err);
  }
  return undefined;
}

/** The `code` `p` rejects with (undefined when it resolves). */
export function codeOfAsync(p: Promise<unknown>): Promise<string | undefined> {
  return p.then(() => undefined, codeOfError);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Poll `cond` every millisecond; throw after `limitMs`. */
export async function until(what: string, cond: () => boolean, limitMs = 60_000): Promise<void> {
  const end = performance.now() + limitMs;
  while (!cond()) {
    if (performance.now() > end) throw new Error(`gave up waiting for ${what}`);
    await sleep(1);
  }
}

/**
 * A test body over a fresh fixture of `slots` slots from `factory`, disposed however the body
 * ends: `fixtureRunner(factory)(4, async (f) => { … })`.
 */
export function fixtureRunner(factory: ConformanceFactory) {
  return (slots: number, body: (f: Fixture) => Promise<void>) => async (): Promise<void> => {
    const f = await factory.create(slots);
    try {
      await body(f);
    } finally {
      await f.dispose();
    }
  };
}
