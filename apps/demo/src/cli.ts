#!/usr/bin/env node
import { parseOptions, USAGE, UsageError } from './options.js';
import { runDemo } from './run.js';

try {
  const opts = parseOptions(process.argv.slice(2));
  if (opts.help) {
    process.stdout.write(`${USAGE}\n`);
  } else {
    const { exitCode } = await runDemo(opts);
    process.exitCode = exitCode;
  }
} catch (err) {
  if (err instanceof UsageError) {
    process.stderr.write(`bakery-demo: ${err.message}\n\n${USAGE}\n`);
    process.exitCode = 2;
  } else {
    process.stderr.write(`bakery-demo: ${(err as Error).stack ?? err}\n`);
    process.exitCode = 1;
  }
}
