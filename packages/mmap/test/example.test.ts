import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect, test } from 'vitest';

const run = promisify(execFile);

test('a parent forks 32 children through forkOptions(); 5,000 sync/async read–yield–write increments each end exact', async () => {
  const script = fileURLToPath(new URL('../examples/children.mjs', import.meta.url));
  const { stdout } = await run(process.execPath, [script, '32', '5000'], { maxBuffer: 1 << 20 });
  const result = JSON.parse(stdout.trim().split('\n').pop()!);
  console.log('examples/children.mjs:', stdout.trim());
  expect(result.count).toBe(160_000);
  expect(result.ticketsLeft).toBe(0);
  expect(result.maxTicket).toBeLessThanOrEqual(32);
}, 600_000);
