// Every ```js block of the root README is a runnable example: run each one as an ES module from
// inside this workspace (so '@bakery/*' resolves to the built packages) and check what it prints.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { startPgServer } from './pg-server.js';

const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const readme = fs.readFileSync(path.join(here, '../../../README.md'), 'utf8');
const blocks = [...readme.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]!);
const dir = fs.mkdtempSync(path.join(here, '../.readme-'));
const shmDir = fs.mkdtempSync('/dev/shm/bakery-readme-');
afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.rmSync(shmDir, { recursive: true, force: true });
});

// The @bakery/pg example needs a server: a throwaway one (see packages/pg/README.md, "Tests").
let pgServer: { url: string; stop(): void } | null = null;
let pgSkip = '';
beforeAll(async () => {
  if (!blocks.some((b) => b.includes("from '@bakery/pg'"))) return;
  ({ server: pgServer, skip: pgSkip } = await startPgServer());
}, 120_000);
afterAll(() => pgServer?.stop());

/** What each example must print (in order of appearance in the README). */
const expectations: [RegExp, RegExp][] = [
  [/const \{ release \} = await mutex\.lock\(\)/, /^null true\nBAKERY_CLOSED$/],
  [
    /createMutex\(\{ slots: 8 \}\)/,
    /^(?=[\s\S]*main has the lock)(?:[\s\S]*worker has the lock){4}/,
  ],
  [/forkOptions\(\)/, /(?:[\s\S]*------ \d+ ------){4}/],
  [/clusterOptions\(\)/, /^(?:worker [1-4] has the lock\n){4}workers done; primary slot -1$/],
  [/openMutex\('demo'/, /^mapped$/],
  [/openMutex\('paths-demo'/, /^mapped pure-js\nBAKERY_ACCESS_MISMATCH$/],
  [/openMutex\('slots-demo'/, /^0 -1\nBAKERY_NO_FREE_SLOT\n-1 0$/],
  [/handoff: 'batched'/, /^batched strict\ntrue\ntrue false$/],
  [/runIfFree/, /^ran\nbusy\nran$/],
  [/openMutex\('invoice-run'/, /^null\ntrue false$/],
  [/markConsistent\(\{ timeout: 5_000 \}\)/, /^BAKERY_NOT_RECOVERABLE\ncleared: true$/],
  [/terminate\(\)/, /ownerDied: true/],
  [/isBakeryError/, /timed out, as expected: BAKERY_TIMEOUT/],
];

test('the README has the examples this test knows about', () => {
  expect(blocks.length).toBe(expectations.length);
  for (const [k, b] of blocks.entries()) expect(b).toMatch(expectations[k]![0]);
});

blocks.forEach((block, k) => {
  test(`README example ${k + 1} runs and prints what it promises`, async () => {
    const needsPg = block.includes("from '@bakery/pg'");
    if (needsPg && pgServer === null) {
      console.warn(`SKIPPED README example ${k + 1} (printed reason): ${pgSkip}`);
      return;
    }
    const file = path.join(dir, `example-${k}.mjs`);
    // The shm example appends to /tmp/out.txt in the README; keep the test's output private.
    const out = path.join(dir, `out-${k}.txt`);
    fs.writeFileSync(file, block.replaceAll('/tmp/out.txt', out));
    const { stdout } = await run(process.execPath, [file], {
      cwd: dir,
      env: {
        ...process.env,
        BAKERY_SHM_DIR: shmDir,
        ...(needsPg ? { DATABASE_URL: pgServer!.url } : {}),
      },
      timeout: 60_000,
    });
    expect(stdout.trim()).toMatch(expectations[k]![1]);
    if (block.includes("openMutex('demo'")) {
      expect(fs.readFileSync(out, 'utf8').trim().split('\n')).toHaveLength(2000);
    }
  }, 90_000);
});
