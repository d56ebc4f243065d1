import { damageSuite } from './damage.js';
import { exclusionSuite } from './exclusion.js';
import { faultSuite } from './faults.js';
import type { SuiteOptions } from './types.js';
import { usageSuite } from './usage.js';
import { waitingSuite } from './waiting.js';

export { findOvertaking } from './checks.js';
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
}
