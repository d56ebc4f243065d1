import { defineConfig } from 'tsup';

export default defineConfig({
  // cli: the parent; participant: the entry of every forked child and worker thread.
  entry: ['src/cli.ts', 'src/participant.ts', 'src/index.ts'],
  format: ['esm'],
  dts: { entry: 'src/index.ts' },
  sourcemap: true,
  clean: true,
  target: 'node20',
});
