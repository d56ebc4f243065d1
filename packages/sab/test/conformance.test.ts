import { suite, threadFixture } from '@bakery/conformance';
import { describe, test } from 'vitest';
// The build, as the participants load it: the suite's two sides run the same code.
import { createMutex, openMutex, SabCells } from '../dist/index.js';

suite({
  test,
  describe,
  factory: {
    name: '@bakery/sab',
    participants: 'threads',
    concurrency: 8,
    iterations: 2000,
    async create(slots) {
      const creator = createMutex({ slots });
      const { handle } = creator;
      creator.close();
      return threadFixture({
        cells: new SabCells(handle.buffer),
        open: (options) => openMutex(handle, options),
        participant: {
          module: new URL('../dist/index.js', import.meta.url).href,
          exportName: 'openMutex',
          args: [handle],
        },
      });
    },
  },
});
