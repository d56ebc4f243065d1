import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect, test } from 'vitest';
import { openMutex, removeMutex } from '../src/index.js';
import { freshDir } from './helpers.js';

const packageRoot = new URL('..', import.meta.url).pathname;

function run(args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, args, {
      cwd: packageRoot,
      env,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    p.stdout.on('data', (d) => {
      out += d;
    });
    p.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`exit ${code}`))));
  });
}

test('two independently started processes running examples/append.mjs on one name write exactly 4,000 intact lines', async () => {
  const dir = freshDir();
  try {
    const out = path.join(dir, 'out.txt');
    const env = { ...process.env, BAKERY_SHM_DIR: dir };
    const args = ['examples/append.mjs', 'demo', out];
    // Hold the lock until both runs wait for it, so that they certainly overlap (a run can
    // finish before the other one has even started otherwise, and then prove nothing).
    const gate = openMutex('demo', { slots: 16, dir });
    const lease = gate.lockSync();
    const runs = Promise.all([run(args, env), run(args, env)]);
    let failed: unknown;
    runs.catch((err) => {
      failed = err;
    });
    const waiting = () => gate.inspect().slots.filter((s) => s.slot !== gate.slot && s.ticket > 0);
    while (waiting().length < 2 && failed === undefined) {
      await new Promise((r) => setTimeout(r, 5));
    }
    lease.release();
    gate.close();
    await runs;

    const lines = fs.readFileSync(out, 'utf8').split('\n');
    expect(lines.pop()).toBe('');
    expect(lines).toHaveLength(4000);
    const perPid = new Map<string, number[]>();
    for (const line of lines) {
      const m = /^(\d+) (\d{5}) -{40} end$/.exec(line);
      expect(m, `torn line: ${JSON.stringify(line)}`).not.toBeNull();
      const seq = perPid.get(m![1]!) ?? [];
      seq.push(Number(m![2]));
      perPid.set(m![1]!, seq);
    }
    expect(perPid.size).toBe(2);
    // Both were queued when the gate opened: first come, first served makes them alternate.
    expect(lines[0]!.split(' ')[0]).not.toBe(lines[1]!.split(' ')[0]);
    for (const seq of perPid.values()) {
      expect(seq).toEqual(Array.from({ length: 2000 }, (_, i) => i));
    }
    expect(removeMutex('demo', { dir })).toBe(true);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
