import { damageSuite } from './damage.js';
import { exclusionSuite } from './exclusion.js';
import { faultSuite } from './faults.js';
import type { ConformanceFactory, Fixture, SuiteOptions } from './types.js';
import { usageSuite } from './usage.js';
import { waitingSuite } from './waiting.js';

export { type Bypass, countBypass, findOvertaking } from './checks.js';

/**
 * The factory with `handoff: 'batched'` in the options of every participant it opens or starts
 * (a participant's own options still win).
 */
export function batchedFactory(factory: ConformanceFactory): ConformanceFactory {
  const mode = { handoff: 'batched' } as const;
  return {
    ...factory,
    name: `${factory.name} [handoff: batched]`,
    async create(slots) {
      const f: Fixture = await factory.create(slots);
      return {
        ...f,
        open: (options) => f.open({ ...mode, ...options }),
        run: (count, workload, options) => f.run(count, workload, { ...mode, ...options }),
        start: (count, workload, options) => f.start(count, workload, { ...mode, ...options }),
      };
    },
  };
}
export type { DescribeFn, SuiteOptions, TestFn } from './types.js';

/**
 * The bakery conformance suite. Call it from a backend's test file with the runner's `test` and
 * `describe` and a factory that creates locks and starts participants.
 *
 * @example
 * ```ts
 * import { describe, test } from 'vitest';
 * import { suite } from '@bakery/conformance';
 * suite({ test, describe, factory: myBackendFactory });
 * ```
 */
export function suite({ test, describe, factory }: SuiteOptions): void {
  describe(`bakery conformance: ${factory.name} (${factory.participants})`, () => {
    exclusionSuite({ test, factory });
    waitingSuite({ test, factory });
    usageSuite({ test, factory });
  });
  faultSuite({ test, describe, factory });
  damageSuite({ test, describe, factory });
  // Both handoffs: every case again with `handoff: 'batched'` for every participant (a backend
  // without compareExchange runs it as strict, and the bypass case checks that it says so) —
  // except the damage cases, which check layout validation and corrupted cells before any
  // handoff happens (they run once, above).
  const batched = batchedFactory(factory);
  describe(`bakery conformance: ${batched.name} (${factory.participants})`, () => {
    exclusionSuite({ test, factory: batched, handoff: 'batched' });
    waitingSuite({ test, factory: batched, handoff: 'batched' });
    usageSuite({ test, factory: batched, handoff: 'batched' });
  });
  faultSuite({ test, describe, factory: batched });
}
