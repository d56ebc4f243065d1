import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { expect, test } from 'vitest';
import { openMutex, removeMutex } from '../src/index.js';
import { distEntry, freshDir } from './helpers.js';

test('a process killed while holding the lock is reaped: the next acquirer gets ownerDied and the dead slot is freed', async () => {
  const dir = freshDir();
  try {
    const mutex = openMutex('crash', { slots: 4, dir, staleAfterMs: 50 });
    const child = spawn(
      process.execPath,
      [new URL('./fixtures/hold-child.mjs', import.meta.url).pathname, distEntry, dir, 'crash'],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d) => String(d).includes('held') && resolve());
      child.on('exit', (code) => reject(new Error(`holder exited early with ${code}`)));
    });
    const dead = mutex.inspect().holder!;
    expect(mutex.inspect().slots[dead]!.owner!.pid).toBe(child.pid);
    expect(mutex.tryLock()).toBeNull();
    child.removeAllListeners('exit');
    const exited = new Promise((resolve) => child.on('exit', resolve));
    child.kill('SIGKILL');
    await exited;

    const lease = await mutex.lock({ timeout: 30_000 });
    expect(lease.ownerDied).toBe(true);
    lease.markConsistent();
    lease.release();
    const snap = mutex.inspect();
    expect(snap.slots[dead]!.owner).toBeNull();
    expect(snap.ownerDied).toBe('consistent');
    const again = mutex.lockSync({ timeout: 10_000 });
    expect(again.ownerDied).toBe(false);
    again.release();
    mutex.close();
    removeMutex('crash', { dir });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
