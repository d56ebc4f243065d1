import type { Lease, Mutex, MutexOptions } from '@bakery/core';
import type { Scratch } from './scratch.js';
import { type Report, SCRATCH, type Workload } from './types.js';

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
 * Run one participant's workload on `mutex`. Called inside worker threads and child processes
 * by the runners; the mutex was opened by the participant itself.
 */
export async function runWorkload(
  id: number,
  mutex: Mutex,
  scratch: Scratch,
  workload: Workload,
  trace?: { start: string; end: string },
): Promise<Report> {
  const report: Report = { id, acquired: 0, violations: 0, unexpected: 0, errors: [] };

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
          let lease: Lease | null;
          if (mode === 'sync') lease = mutex.lockSync();
          else if (mode === 'async') lease = await mutex.lock();
          else {
            // tryLock first; when it fails (someone holds or waits), queue up like everyone else:
            // polling tryLock on a busy FIFO lock could wait for a quiet moment forever.
            lease = mutex.tryLock() ?? mutex.lockSync();
          }
          try {
            await critical(k, mode === 'async');
          } finally {
            lease.release();
          }
        }
        break;
      }
      case 'fifo': {
        report.records = [];
        for (let k = 0; k < workload.iterations; k++) {
          const lease = mutex.lockSync();
          const enter = now();
          report.records.push([trace!.start, trace!.end, enter]);
          try {
            await critical(k, false);
          } finally {
            lease.release();
          }
        }
        break;
      }
      case 'hold': {
        const lease = await mutex.lock();
        report.acquired++;
        scratch.write(SCRATCH.HELD, 1);
        while (scratch.read(SCRATCH.RELEASE) === 0) await sleep(1);
        scratch.write(SCRATCH.HELD, 0);
        lease.release();
        break;
      }
      case 'storm': {
        for (let k = 0; k < workload.tries; k++) {
          const lease = mutex.tryLock();
          if (lease !== null) {
            report.unexpected++;
            lease.release();
          }
        }
        for (let k = 0; k < workload.timeouts; k++) {
          try {
            const lease =
              k % 8 === 7 ? await mutex.lock({ timeout: 1 }) : mutex.lockSync({ timeout: 0 });
            report.unexpected++;
            lease.release();
          } catch (err) {
            if ((err as { code?: string }).code !== 'BAKERY_TIMEOUT') throw err;
          }
        }
        scratch.write(SCRATCH.DONE + id, 1);
        const lease = id % 2 === 0 ? mutex.lockSync() : await mutex.lock();
        try {
          await critical(0, id % 2 === 1);
        } finally {
          lease.release();
        }
        break;
      }
    }
  } catch (err) {
    report.errors.push(describe(err));
  }
  return report;
}
