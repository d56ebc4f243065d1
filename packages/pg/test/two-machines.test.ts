// The package README's script: separate processes of two "machines" over TCP take turns in
// arrival order with exact counts.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect } from 'vitest';
import { server, pgTest as test } from './helpers.js';

const script = fileURLToPath(new URL('../scripts/two-machines.mjs', import.meta.url));

describe('scripts/two-machines.mjs', () => {
  test('2 machines × 3 processes: 2 rounds granted in arrival order, exact counter, increasing tokens', async () => {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [script, '--url', server!.url, '--per-machine', '3', '--rounds', '2', '--increments', '10'],
      { timeout: 60_000 },
    );
    console.log(stdout);
    expect(stdout).toContain('all checks hold');
    expect(stdout).not.toContain('FAIL');
    expect(stdout).toMatch(/ok {3}round 2: arrived B0 A1 B1 A2 B2 A0 → granted B0 A1 B1 A2 B2 A0/);
    expect(stdout).toMatch(/ok {3}counter 72 = 72 increments/);
  });
});
