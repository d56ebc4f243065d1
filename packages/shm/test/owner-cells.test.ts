// Owner cells rewritten under a live participant must not get it reaped: on the mapped path the
// slot's kernel lease decides; on the pure-JS path the owner's descriptors on the lock's file
// give the pid check a second opinion. A pid reused by another participant with a slot of its
// own is still judged dead, so the dead owner's slot is reaped.
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cellsFor, S, slotBase } from '@bakery/core';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { openMutex, ShmCells } from '../src/index.js';
import { codeOf, distEntry, freshDir } from './helpers.js';

const holdChild = fileURLToPath(new URL('./fixtures/hold-child.mjs', import.meta.url));
let dir: string;
const children: ChildProcess[] = [];
beforeEach(() => {
  dir = freshDir();
});
afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A child process that opens `name`, takes it and keeps it; resolves once it holds it. */
function holder(name: string, access: 'mapped' | 'pure-js'): Promise<ChildProcess> {
  const child = spawn(process.execPath, [holdChild, distEntry, dir, name], {
    env: { ...process.env, BAKERY_SHM_ACCESS: access },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes('held')) resolve(child);
    });
    child.once('exit', (code) => reject(new Error(`holder exited with ${code}`)));
  });
}

/** Positional access to the lock file from the test (as any process of the same user can). */
function raw(name: string): ShmCells {
  return new ShmCells(fs.openSync(path.join(dir, `bakery.${name}`), 'r+'), cellsFor(4));
}

for (const access of ['mapped', 'pure-js'] as const) {
  test(`a live holder whose recorded start time is rewritten is never reaped (${access}): reapDead frees nothing, and nobody else enters`, async () => {
    openMutex('victim', { slots: 4, dir, access }).close();
    const child = await holder('victim', access);
    const cells = raw('victim');
    const b = slotBase(0);
    expect(cells.load(b + S.OWNER)).toBe(child.pid);
    cells.store(b + S.OWNER_START_LO, cells.load(b + S.OWNER_START_LO) + 12345);
    const other = openMutex('victim', { dir, access, staleAfterMs: 20 });
    expect(other.reapDead()).toBe(0);
    expect(other.inspect().holder).toBe(0);
    // A waiter stuck behind it for many staleAfterMs checks it again and again: still alive.
    expect(codeOf(() => other.lockSync({ timeout: 300 }))).toBe('BAKERY_TIMEOUT');
    expect(cells.load(b + S.OWNER)).toBe(child.pid);
    other.close();
  }, 30_000);
}

test("a dead owner whose pid now belongs to another participant with a slot of its own is still reaped (pure-js): that participant's descriptor is explained by its own slot", async () => {
  openMutex('reused', { slots: 4, dir, access: 'pure-js' }).close();
  const child = await holder('reused', 'pure-js'); // slot 0, holding
  const cells = raw('reused');
  // Slot 1: a crashed owner recorded with the child's pid but another start time — what a pid
  // reused by the child looks like. Give it a ticket, as a dead waiter would leave.
  const b = slotBase(1);
  cells.store(b + S.OWNER, child.pid!);
  cells.store(b + S.OWNER_TID, child.pid!);
  cells.store(b + S.OWNER_START_LO, 1);
  cells.store(b + S.TICKET, (2 << 1) | 0);
  cells.store(6 /* HIGH_WATER */, 2);
  const other = openMutex('reused', { dir, access: 'pure-js' });
  expect(other.reapDead()).toBe(1);
  expect(cells.load(b + S.OWNER)).toBe(0);
  expect(cells.load(b + S.TICKET)).toBe(0);
  expect(cells.load(slotBase(0) + S.OWNER)).toBe(child.pid); // the live one stays
  other.close();
}, 30_000);
