import type { ForkOptions } from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { type AsyncMutex, type Cells, type Mutex, type MutexOptions, snapshot } from '@bakery/core';
import {
  type ParticipantConfig,
  type ProcessLaunch,
  runProcesses,
  runThreads,
  startProcesses,
  startThreads,
} from './runners.js';
import { FileScratch, SabScratch } from './scratch.js';
import type { AsyncFixture, Fixture } from './types.js';

/** What a backend supplies to build a fixture around one fresh lock. */
export interface FixtureParts {
  /** Raw view of the lock's memory, used only by the test process for bytes/poke/inspect. */
  cells: Cells;
  /** Open a participant in the test process. */
  open(options?: MutexOptions): Mutex;
  /** How a participant opens the lock (see {@link ParticipantConfig}). */
  participant: Omit<ParticipantConfig, 'id' | 'workload'>;
  /** Release the lock's resources. */
  dispose?(): void | Promise<void>;
}

function rawFixture(parts: FixtureParts, opened: Mutex[]) {
  const { cells } = parts;
  return {
    open(options?: MutexOptions) {
      const m = parts.open(options);
      opened.push(m);
      return m;
    },
    bytes() {
      const out = new Uint8Array(cells.length * 4);
      const view = new DataView(out.buffer);
      for (let i = 0; i < cells.length; i++) view.setInt32(i * 4, cells.load(i), true);
      return out;
    },
    poke(cell: number, value: number) {
      cells.store(cell, value);
    },
    inspect() {
      return snapshot(cells);
    },
  };
}

function withOptions(
  parts: Pick<FixtureParts, 'participant'>,
  options: MutexOptions | undefined,
): Omit<ParticipantConfig, 'id' | 'workload'> {
  const p = parts.participant;
  return options === undefined ? p : { ...p, options: { ...p.options, ...options } };
}

function closeAll(opened: Mutex[]): void {
  for (const m of opened) {
    try {
      m.close();
    } catch {
      // still held by a failed test: the lock is thrown away with the fixture anyway
    }
  }
}

/** A fixture whose participants are worker threads sharing a SharedArrayBuffer scratch. */
export function threadFixture(parts: FixtureParts): Fixture {
  const scratchBuffer = SabScratch.create();
  const scratch = new Int32Array(scratchBuffer);
  const opened: Mutex[] = [];
  return {
    ...rawFixture(parts, opened),
    run: (count, workload, options) =>
      runThreads(count, withOptions(parts, options), workload, scratchBuffer),
    start: (count, workload, options) =>
      startThreads(count, withOptions(parts, options), workload, scratchBuffer),
    scratchGet: (i) => Atomics.load(scratch, i),
    scratchSet: (i, v) => void Atomics.store(scratch, i, v),
    async dispose() {
      closeAll(opened);
      await parts.dispose?.();
    },
  };
}

/**
 * A fixture whose participants are child processes (`child_process.fork`, or `spawn` without
 * IPC when `launch = 'spawn'`) sharing a scratch file. `forkOptions(id)` hands each child what
 * it needs to open the lock (for `'spawn'` only its `env`, `cwd` and `execPath` are used).
 */
export function processFixture(
  parts: FixtureParts,
  forkOptions?: (id: number) => ForkOptions,
  launch?: ProcessLaunch,
): Fixture {
  const dir = fs.mkdtempSync(path.join(tmpdir(), 'bakery-conformance-'));
  const file = path.join(dir, 'scratch');
  FileScratch.create(file);
  const scratch = new FileScratch(file);
  const opened: Mutex[] = [];
  return {
    ...rawFixture(parts, opened),
    run: (count, workload, options) =>
      runProcesses(count, withOptions(parts, options), workload, file, forkOptions, launch),
    start: (count, workload, options) =>
      startProcesses(count, withOptions(parts, options), workload, file, forkOptions, launch),
    scratchGet: (i) => scratch.read(i),
    scratchSet: (i, v) => scratch.write(i, v),
    async dispose() {
      closeAll(opened);
      scratch.close();
      fs.rmSync(dir, { recursive: true, force: true });
      await parts.dispose?.();
    },
  };
}

/** What a backend of the asynchronous subset supplies to build a fixture around one fresh lock. */
export interface AsyncFixtureParts {
  /** Open a participant in the test process. */
  open(options?: MutexOptions): Promise<AsyncMutex>;
  /** How a participant opens the lock (see {@link ParticipantConfig}; the export may be async). */
  participant: Omit<ParticipantConfig, 'id' | 'workload'>;
  /** Release the lock's resources. */
  dispose?(): void | Promise<void>;
}

/**
 * A fixture of the asynchronous subset: participants are child processes sharing a scratch
 * file; no cells (see {@link AsyncFixture}).
 */
export function asyncProcessFixture(
  parts: AsyncFixtureParts,
  forkOptions?: (id: number) => ForkOptions,
): AsyncFixture {
  const dir = fs.mkdtempSync(path.join(tmpdir(), 'bakery-conformance-'));
  const file = path.join(dir, 'scratch');
  FileScratch.create(file);
  const scratch = new FileScratch(file);
  const opened: AsyncMutex[] = [];
  return {
    async open(options) {
      const m = await parts.open(options);
      opened.push(m);
      return m;
    },
    run: (count, workload, options) =>
      runProcesses(count, withOptions(parts, options), workload, file, forkOptions),
    start: (count, workload, options) =>
      startProcesses(count, withOptions(parts, options), workload, file, forkOptions),
    scratchGet: (i) => scratch.read(i),
    scratchSet: (i, v) => scratch.write(i, v),
    async dispose() {
      for (const m of opened) {
        try {
          await m.close();
        } catch {
          // still held by a failed test: the lock is thrown away with the fixture anyway
        }
      }
      scratch.close();
      fs.rmSync(dir, { recursive: true, force: true });
      await parts.dispose?.();
    },
  };
}
