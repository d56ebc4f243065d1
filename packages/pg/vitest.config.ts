import { defineConfig } from 'vitest/config';

// One throwaway PostgreSQL server for the whole run (globalSetup starts and stops it); one test
// file at a time, since every file starts many node processes on a small machine.
export default defineConfig({
  test: {
    testTimeout: 120_000,
    hookTimeout: 60_000,
    pool: 'forks',
    fileParallelism: false,
    globalSetup: ['./test/global-setup.ts'],
  },
});
