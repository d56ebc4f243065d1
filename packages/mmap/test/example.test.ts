import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect, test } from 'vitest';

const run = promisify(execFile);

test('a parent forks 32 children through forkOptions(); 5,000 sync/async read–yield–write increments each end exact, waiters asleep', async () => {
  const script = fileURLToPath(new URL('../examples/children.mjs', import.meta.url));
  const { stdout } = await run(process.execPath, [script, '32', '5000'], { maxBuffer: 1 << 20 });
  const result = JSON.parse(stdout.trim().split('\n').pop()!);
  console.log('examples/children.mjs:', stdout.trim());
  expect(result.count).toBe(160_000);
  expect(result.ticketsLeft).toBe(0);
  expect(result.maxTicket).toBeLessThanOrEqual(32);
  // Waiters sleep in the futex: while the children lock, they leave cores idle. Waiters that
  // spun would keep every core busy (the example with spin = 1,000,000 measures 0.99 here);
  // sleeping ones leave only the serial chain of holders and handoffs running (0.5–0.65 on 2
  // cores). Other load on the machine only lowers this share.
  expect(result.locking.cpuShare).toBeLessThan(0.8);
}, 600_000);
