// The asynchronous subset's cases on a local backend: code written against AsyncMutex (every
// call awaited) runs here exactly as on @bakery/pg. Participants are unrelated processes that
// know only the lock's name.

import * as fs from 'node:fs';
import { asyncProcessFixture, asyncSuite } from '@bakery/conformance';
import { describe, test } from 'vitest';
import { openMutex } from '../dist/index.js';
import { distEntry, freshDir } from './helpers.js';

asyncSuite({
  test,
  describe,
  factory: {
    name: '@bakery/shm (mapped)',
    concurrency: 8,
    iterations: 200,
    async create() {
      const dir = freshDir();
      const name = 'conformance-async';
      openMutex(name, { slots: 16, dir, access: 'mapped' }).close();
      return asyncProcessFixture(
        {
          open: async (options) => openMutex(name, { ...options, dir, access: 'mapped' }),
          participant: { module: distEntry, exportName: 'openMutex', args: [name] },
          dispose: () => fs.rmSync(dir, { recursive: true, force: true }),
        },
        () => ({ env: { BAKERY_SHM_DIR: dir, BAKERY_SHM_ACCESS: 'mapped' } }),
      );
    },
  },
});
