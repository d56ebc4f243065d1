import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect, test } from 'vitest';

const run = promisify(execFile);

test('16 workers × 20,000 mixed lockSync/lock increments through the public API end with the exact count and no ticket left', async () => {
  const script = fileURLToPath(new URL('../examples/sixteen-workers.mjs', import.meta.url));
  const { stdout } = await run(process.execPath, [script, '16', '20000'], { maxBuffer: 1 << 20 });
  const result = JSON.parse(stdout.trim().split('\n').pop()!);
  expect(result.count).toBe(320_000);
  expect(result.ticketsLeft).toBe(0);
  expect(result.maxTicket).toBeLessThanOrEqual(16);
}, 300_000);
