import { defineConfig } from 'vitest/config';

// One test file at a time: every file starts many node processes, and on a small machine
// files running side by side starve each other's participants (the shared suite's crash
// cases bound how long survivors may stall).
export default defineConfig({
  test: { testTimeout: 120_000, hookTimeout: 60_000, pool: 'forks', fileParallelism: false },
});
