import { runAsync } from './run.js';

process.exitCode = await runAsync(process.argv.slice(2));
