import type { AsyncLease, AsyncMutex, Mutex, MutexOptions } from '@bakery/core';
import type { Scratch } from './scratch.js';
import { clockMs, PHASE, type Report, SCRATCH, type Workload } from './types.js';

const yieldCell = new Int32Array(new SharedArrayBuffer(4));

/** Give the CPU away between the read and the write of the counter (a real futex sleep). */
function yieldSync(k: number): void {
  if (k % 4 === 0) Atomics.wait(yieldCell, 0, 0, 0.001);
  else for (let s = (k * 2654435761) % 200; s > 0; s--) Atomics.load(yieldCell, 0);
}

function yieldAsync(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function describe(err: unknown): string {
  const e = err as { code?: string; message?: string };
  return `${e?.code ?? 'ERROR'}: ${e?.message ?? String(err)}`;
}

function now(): string {
  return process.hrtime.bigint().toString();
}

/** Doorway trace hooks for the FIFO workload, wired into the Mutex options by the runners. */
export function fifoTrace(): { options: MutexOptions; last: { start: string; end: string } } {
  const last = { start: '0', end: '0' };
  return {
    last,
    options: {
      trace: {
        doorwayStart() {
          last.start = now();
        },
        doorwayEnd() {
          last.end = now();
        },
      },
    },
  };
}

/**
 * The Mutex options every participant opens with: doorway timestamps for the FIFO workload
 * and, for the fault workload, phase reports (doorway, waiting) in `PHASE_OF + id`. Writes
 * STARTING there for the fault workload (before the lock is even opened).
 */
export function participantTrace(
  id: number,
  workload: Workload,
  scratch: Scratch,
): { options: MutexOptions; last: { start: string; end: string } } {
  const fifo = fifoTrace();
  if (workload.kind !== 'fault') return fifo;
  const cell = SCRATCH.PHASE_OF + id;
  scratch.write(cell, PHASE.STARTING);
  const { doorwayStart, doorwayEnd } = fifo.options.trace!;
  return {
    last: fifo.last,
    options: {
      trace: {
        doorwayStart() {
          doorwayStart?.();
          scratch.write(cell, PHASE.DOORWAY);
        },
        doorwayEnd(ticket) {
          doorwayEnd?.(ticket);
          scratch.write(cell, PHASE.WAITING);
        },
      },
    },
  };
}

/** Pause inside the critical section for up to `ms` (random), blocking or not. */
function pauseSync(ms: number): void {
  const t = Math.random() * ms;
  if (t > 0.05) Atomics.wait(yieldCell, 0, 0, t);
}

/**
 * The fault workload's transaction (see {@link Workload}), run holding `lease`. Every step is
 * a separate scratch access, so a participant killed anywhere in here leaves a half-done
 * transaction that only the undo log can repair.
 */
async function transaction(
  id: number,
  scratch: Scratch,
  lease: AsyncLease,
  report: Report,
  sync: boolean,
  holdMs: number,
): Promise<void> {
  const S = SCRATCH;
  scratch.write(S.ENTERED_AT, clockMs());
  if (lease.ownerDied) {
    scratch.write(S.REPAIRED_AT, clockMs());
    // The previous holder died inside: roll its transaction back, if it left one half done.
    if (scratch.read(S.PENDING) !== 0) {
      scratch.write(S.A, scratch.read(S.UNDO_A));
      scratch.write(S.B, scratch.read(S.UNDO_B));
      scratch.write(S.COMMITS, scratch.read(S.UNDO_COMMITS));
      scratch.write(S.CNT + scratch.read(S.UNDO_ID), scratch.read(S.UNDO_CNT));
      scratch.write(S.PENDING, 0);
    }
    // Whoever set the occupancy flag is dead: it means nothing now.
    scratch.write(S.OCCUPANCY, 0);
    scratch.write(S.REPAIRS, scratch.read(S.REPAIRS) + 1);
    report.repairs = (report.repairs ?? 0) + 1;
    lease.markConsistent();
  } else if (scratch.read(S.OCCUPANCY) !== 0) {
    report.violations++;
    scratch.write(S.FAULT_VIOLATIONS, scratch.read(S.FAULT_VIOLATIONS) + 1);
  }
  scratch.write(S.OCCUPANCY, id + 1);
  // Undo log first; PENDING = 1 only once it is complete.
  scratch.write(S.UNDO_A, scratch.read(S.A));
  scratch.write(S.UNDO_B, scratch.read(S.B));
  scratch.write(S.UNDO_COMMITS, scratch.read(S.COMMITS));
  scratch.write(S.UNDO_ID, id);
  scratch.write(S.UNDO_CNT, scratch.read(S.CNT + id));
  scratch.write(S.PENDING, 1);
  const a = scratch.read(S.A);
  if (sync) pauseSync(holdMs);
  else await sleep(Math.random() * holdMs);
  scratch.write(S.A, a + 1);
  scratch.write(S.B, scratch.read(S.B) - 1);
  scratch.write(S.COMMITS, scratch.read(S.COMMITS) + 1);
  scratch.write(S.CNT + id, scratch.read(S.CNT + id) + 1);
  scratch.write(S.PENDING, 0);
  scratch.write(S.PROGRESS, scratch.read(S.PROGRESS) + 1);
  scratch.write(S.OCCUPANCY, 0);
}

/**
 * Run one participant's workload on `mutex`. Called inside worker threads and child processes
 * by the runners; the mutex was opened by the participant itself.
 */
export async function runWorkload(
  id: number,
  subset: AsyncMutex,
  scratch: Scratch,
  workload: Workload,
  trace?: { start: string; end: string },
): Promise<Report> {
  const report: Report = { id, acquired: 0, violations: 0, unexpected: 0, errors: [] };
  // The synchronous calls are used only by workloads that a backend of the full interface runs.
  const mutex = subset as Mutex;

  /** The critical section: occupancy check plus a read–yield–write of the counter. */
  const critical = async (k: number, asyncYield: boolean) => {
    if (scratch.read(SCRATCH.OCCUPANCY) !== 0) report.violations++;
    scratch.write(SCRATCH.OCCUPANCY, 1);
    const c = scratch.read(SCRATCH.COUNTER);
    if (asyncYield) await yieldAsync();
    else yieldSync(k);
    scratch.write(SCRATCH.COUNTER, c + 1);
    scratch.write(SCRATCH.OCCUPANCY, 0);
    report.acquired++;
  };

  try {
    switch (workload.kind) {
      case 'count': {
        for (let k = 0; k < workload.iterations; k++) {
          const mode =
            workload.mode === 'mixed'
              ? (['sync', 'async', 'try'] as const)[(k + id) % 3]!
              : workload.mode;
          let lease: AsyncLease | null;
          if (mode === 'sync') lease = mutex.lockSync();
          else if (mode === 'async') lease = await subset.lock();
          else if (mode === 'async-try') lease = (await subset.tryLock()) ?? (await subset.lock());
          else {
            // tryLock first; when it fails (someone holds or waits), queue up like everyone else:
            // polling tryLock on a busy FIFO lock could wait for a quiet moment forever.
            lease = mutex.tryLock() ?? mutex.lockSync();
          }
          try {
            await critical(k, mode === 'async' || mode === 'async-try');
          } finally {
            await lease.release();
          }
        }
        break;
      }
      case 'fifo': {
        report.records = [];
        let lastEnd = '';
        for (let k = 0; k < workload.iterations; k++) {
          const lease = mutex.lockSync();
          const enter = now();
          // No new doorway stamp: this acquisition ran no doorway (a batched re-entry).
          const doorway = trace!.end !== lastEnd;
          lastEnd = trace!.end;
          try {
            await critical(k, false);
          } finally {
            report.records.push([
              doorway ? trace!.start : '',
              doorway ? trace!.end : '',
              enter,
              now(),
            ]);
            lease.release();
          }
        }
        break;
      }
      case 'retain': {
        mutex.lockSync().release();
        report.acquired++;
        scratch.write(SCRATCH.HELD, 1);
        while (scratch.read(SCRATCH.RELEASE) === 0) await sleep(1);
        break;
      }
      case 'hold': {
        const lease = await subset.lock();
        report.acquired++;
        scratch.write(SCRATCH.HELD, 1);
        while (scratch.read(SCRATCH.RELEASE) === 0) await sleep(1);
        scratch.write(SCRATCH.HELD, 0);
        await lease.release();
        break;
      }
      case 'fault': {
        const phase = SCRATCH.PHASE_OF + id;
        scratch.write(phase, PHASE.OUTSIDE);
        for (let k = 0; scratch.read(SCRATCH.STOP) === 0; k++) {
          const sync = !workload.async && (k + id) % 2 === 0;
          const lease: AsyncLease = sync ? mutex.lockSync() : await subset.lock();
          scratch.write(phase, PHASE.HOLDING);
          try {
            await transaction(id, scratch, lease, report, sync, workload.holdMs);
          } finally {
            // A synchronous lease is released synchronously, so the phase below is written in
            // the same turn, as before the async subset (the fault timing the suite was tuned on).
            if (sync) (lease as ReturnType<Mutex['lockSync']>).release();
            else await lease.release();
          }
          scratch.write(phase, PHASE.OUTSIDE);
          report.acquired++;
        }
        break;
      }
      case 'exit': {
        // Ends without close(): the entry files skip it for this workload.
        if (workload.holding) {
          await subset.lock();
          report.acquired++;
        }
        if (workload.how === 'process.exit') process.exit(0);
        break;
      }
      case 'die-holding': {
        await subset.lock();
        report.acquired++;
        scratch.write(SCRATCH.HELD, 1);
        while (scratch.read(SCRATCH.RELEASE) === 0) await sleep(1);
        process.kill(process.pid, 'SIGKILL');
        await sleep(60_000);
        break;
      }
      case 'storm': {
        for (let k = 0; k < workload.tries; k++) {
          const lease = workload.async ? await subset.tryLock() : mutex.tryLock();
          if (lease !== null) {
            report.unexpected++;
            await lease.release();
          }
        }
        for (let k = 0; k < workload.timeouts; k++) {
          try {
            const lease = workload.async
              ? await subset.lock({ timeout: 1 + (k % 4) })
              : k % 8 === 7
                ? await mutex.lock({ timeout: 1 })
                : mutex.lockSync({ timeout: 0 });
            report.unexpected++;
            await lease.release();
          } catch (err) {
            if ((err as { code?: string }).code !== 'BAKERY_TIMEOUT') throw err;
          }
        }
        scratch.write(SCRATCH.DONE + id, 1);
        const sync = !workload.async && id % 2 === 0;
        const lease: AsyncLease = sync ? mutex.lockSync() : await subset.lock();
        try {
          await critical(0, !sync);
        } finally {
          await lease.release();
        }
        break;
      }
    }
  } catch (err) {
    report.errors.push(describe(err));
  }
  return report;
}
