#!/usr/bin/env node
// The `bakery` executable that npm links. It is committed (not build output) so that the bin
// exists when `npm ci` links the workspace: node_modules/.bin/bakery then points here and
// `npx bakery` in this repository runs this package instead of fetching an unrelated `bakery`
// from the registry. It only runs the built entry, dist/bin.js.
import { existsSync } from 'node:fs';

const entry = new URL('../dist/bin.js', import.meta.url);
if (!existsSync(entry)) {
  console.error(
    'bakery: @bakery/cli is not built (dist/bin.js is missing): run npm run build first',
  );
  process.exit(1);
}
await import(entry.href);
