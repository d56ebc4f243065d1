import { type ChildProcess, fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { S, slotBase } from '@bakery/core';
import { isAlive, pidNamespace } from '@bakery/core/node';
import { afterEach, describe, expect, test } from 'vitest';
import { createMutex, loadNative, type MmapMutex, openMutex } from '../src/index.js';

const native = loadNative();
const child = fileURLToPath(new URL('./fixtures/lease-child.cjs', import.meta.url));

const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const f of cleanup.splice(0).reverse()) {
    try {
      f();
    } catch {}
  }
});

function lock(slots = 4): { mutex: MmapMutex; cells: Int32Array; probe: number } {
  // Claiming at create (the creator's default is its first lock): these tests look at its lease.
  const mutex = createMutex({ slots, claim: 'open' });
  cleanup.push(() => mutex.close());
  const cells = new Int32Array(native.map(mutex.fd, native.size(mutex.fd)));
  // Our own description, holding no lease: it sees everyone's.
  const probe = native.reopen(mutex.fd);
  cleanup.push(() => native.close(probe));
  return { mutex, cells, probe };
}

type Msg = { slot?: number; pid?: number; done?: boolean };
function next(c: ChildProcess): Promise<Msg> {
  return new Promise((resolve, reject) => {
    c.once('message', (m) => resolve(m as Msg));
    c.once('exit', (code, sig) => reject(new Error(`child exited ${code} ${sig}`)));
  });
}

async function start(mutex: MmapMutex): Promise<{ c: ChildProcess; slot: number; pid: number }> {
  const c = fork(child, [], mutex.forkOptions({ stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  cleanup.push(() => c.kill('SIGKILL'));
  const m = await next(c);
  return { c, slot: m.slot!, pid: m.pid! };
}

async function kill(c: ChildProcess): Promise<void> {
  const gone = new Promise((resolve) => c.once('exit', resolve));
  c.kill('SIGKILL');
  await gone;
}

/** Start time (field 22 of /proc/<pid>/stat, after the last ')') of a live process. */
function startTimeOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
}

function writeOwner(cells: Int32Array, slot: number, pid: number, startTime: number): void {
  const b = slotBase(slot);
  Atomics.store(cells, b + S.OWNER_TID, pid);
  Atomics.store(cells, b + S.OWNER_START_LO, (startTime % 2 ** 32) | 0);
  Atomics.store(cells, b + S.OWNER_START_HI, Math.floor(startTime / 2 ** 32) | 0);
  Atomics.store(cells, b + S.OWNER_NS, pidNamespace() | 0);
  Atomics.store(cells, b + S.OWNER, pid);
}

describe('per-slot leases (OFD locks)', () => {
  test('an open participant holds the lease of its slot and flags it; close drops both', () => {
    const { mutex, cells, probe } = lock();
    const other = openMutex({ fd: mutex.fd });
    expect(other.slot).not.toBe(mutex.slot);
    for (const m of [mutex, other]) {
      expect(native.leaseHeld(probe, m.slot)).toBe(true);
      expect(Atomics.load(cells, slotBase(m.slot) + S.OWNER_LEASE)).toBe(1);
    }
    expect(native.leaseHeld(probe, 3)).toBe(false);
    const slot = other.slot;
    other.close();
    expect(native.leaseHeld(probe, slot)).toBe(false);
    expect(Atomics.load(cells, slotBase(slot) + S.OWNER_LEASE)).toBe(0);
    // The lock still works, sealed memfd and all.
    expect(native.seals(mutex.fd) & 1).toBe(1);
    mutex.lockSync().release();
  });

  test('a SIGKILLed child is dead through its lease although its pid looks alive (pid reuse)', async () => {
    const { mutex, cells, probe } = lock();
    const { c, slot } = await start(mutex);
    expect(native.leaseHeld(probe, slot)).toBe(true);
    await kill(c);
    expect(native.leaseHeld(probe, slot)).toBe(false);
    // Pretend the kernel handed the child's pid to a live process: the test runner's parent,
    // with its true start time. The pid-based check alone is fooled.
    const ppid = process.ppid;
    writeOwner(cells, slot, ppid, startTimeOf(ppid));
    const forged = { pid: ppid, tid: ppid, startTime: startTimeOf(ppid), ns: pidNamespace() };
    expect(isAlive(forged)).toBe(true);
    // An owner that did not record a lease is judged by pid only: not reaped.
    Atomics.store(cells, slotBase(slot) + S.OWNER_LEASE, 0);
    expect(mutex.reapDead()).toBe(0);
    // With the flag, "no lock on byte slot" is certain death.
    Atomics.store(cells, slotBase(slot) + S.OWNER_LEASE, 1);
    expect(mutex.reapDead()).toBe(1);
    expect(Atomics.load(cells, slotBase(slot) + S.OWNER)).toBe(0);
    expect(Atomics.load(cells, slotBase(slot) + S.OWNER_LEASE)).toBe(0);
  });

  test('a live child is alive through its lease even with a bogus recorded pid', async () => {
    const { mutex, cells } = lock();
    const { c, slot } = await start(mutex);
    // A pid above any pid_max (2^22) names no process: the pid-based check says dead.
    const bogus = 2 ** 22 + 12_345;
    writeOwner(cells, slot, bogus, 1);
    expect(isAlive({ pid: bogus, tid: bogus, startTime: 1, ns: pidNamespace() })).toBe(false);
    expect(mutex.reapDead()).toBe(0);
    expect(Atomics.load(cells, slotBase(slot) + S.OWNER)).toBe(bogus);
    await kill(c);
    expect(mutex.reapDead()).toBe(1);
  });

  test("a child's lease does not outlive it although the parent keeps the inherited fd", async () => {
    const { mutex, probe } = lock(8);
    const { c, slot } = await start(mutex);
    // For contrast, the trap itself: a lock taken through the inherited fd belongs to the
    // description the parent still holds open.
    c.send({ op: 'lease-through-inherited-fd', byte: 7 });
    expect((await next(c)).done).toBe(true);
    expect(native.leaseHeld(probe, slot)).toBe(true);
    expect(native.leaseHeld(probe, 7)).toBe(true);
    await kill(c);
    // The parent's mutex.fd (the same description the child inherited) is still open.
    expect(native.size(mutex.fd)).toBeGreaterThan(0);
    expect(native.leaseHeld(probe, slot)).toBe(false);
    expect(native.leaseHeld(probe, 7)).toBe(true);
  });

  test('leaseTake on a byte another description holds is BAKERY_IO "lease busy"', () => {
    const { mutex, probe } = lock();
    let err: { code?: string; message?: string } = {};
    try {
      native.leaseTake(probe, mutex.slot);
    } catch (e) {
      err = e as typeof err;
    }
    expect(err.code).toBe('BAKERY_IO');
    expect(err.message).toMatch(/lease busy/);
    expect(() => native.leaseHeld(987_654, 0)).toThrow(
      expect.objectContaining({ code: 'BAKERY_BAD_HANDLE' }),
    );
    expect(() => native.leaseTake(probe, -1)).toThrow(
      expect.objectContaining({ code: 'BAKERY_INVALID_ARGUMENT' }),
    );
  });
});
