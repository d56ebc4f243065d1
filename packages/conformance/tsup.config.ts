import { defineConfig } from 'tsup';

export default defineConfig([
  {
    entry: ['src/index.ts', 'src/reference-backend.ts'],
    format: ['esm', 'cjs'],
    dts: true,
    sourcemap: true,
    shims: true,
    target: 'node20',
  },
  {
    // Participants: files of their own next to index.js, started as worker threads and child
    // processes (ESM only: they use top-level await).
    entry: ['src/thread-entry.ts', 'src/process-entry.ts'],
    format: ['esm'],
    sourcemap: true,
    target: 'node20',
  },
]);
