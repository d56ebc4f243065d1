import { defineConfig } from 'tsup';

export default defineConfig([
  {
    entry: ['src/index.ts'],
    format: ['esm', 'cjs'],
    dts: true,
    sourcemap: true,
    // import.meta.url in the CJS build (createRequire of the optional binding).
    shims: true,
    // An optional dependency: loaded at run time when present, never bundled.
    external: ['@bakery/native'],
    target: 'node20',
  },
  {
    // The executable: ESM only, one file next to index.js.
    entry: ['src/bin.ts'],
    format: ['esm'],
    sourcemap: true,
    external: ['@bakery/native'],
    target: 'node20',
    banner: { js: '#!/usr/bin/env node' },
  },
]);
