// Core's conformance run: the suite against the reference memory (Atomics on a
// SharedArrayBuffer, compareExchange but no blocking wait), participants as worker threads.
// It lives here rather than in packages/core so that core does not depend on its own suite.

// The built package: participants start from its dist/ entry files.
import { suite, threadFixture } from '@bakery/conformance';
import { createReference, openReference } from '@bakery/conformance/reference-backend';
import { ReferenceCells } from '@bakery/core/reference';
import { describe, test } from 'vitest';

suite({
  test,
  describe,
  factory: {
    name: 'reference memory',
    participants: 'threads',
    concurrency: 8,
    iterations: 1000,
    async create(slots) {
      const handle = createReference(slots);
      return threadFixture({
        cells: new ReferenceCells(handle.buffer),
        open: (options) => openReference(handle, options),
        participant: {
          module: new URL('../dist/reference-backend.js', import.meta.url).href,
          exportName: 'openReference',
          args: [handle],
        },
      });
    },
  },
});
