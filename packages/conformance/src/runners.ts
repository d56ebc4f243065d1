import { type ChildProcess, type ForkOptions, fork, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { MutexOptions } from '@bakery/core';
import type { Crew, Exit, Report, Workload } from './types.js';

/** How a participant opens the lock: `(await import(module))[exportName](...args, options)`. */
export interface ParticipantConfig {
  id: number;
  /** A module specifier or file URL the participant can import (the backend's built entry). */
  module: string;
  exportName: string;
  /** Structured-cloneable (threads) or JSON (processes) arguments before the options object. */
  args: unknown[];
  options?: MutexOptions;
  workload: Workload;
}

const here = new URL('.', import.meta.url);

/**
 * Start `count` worker-thread participants that each open the lock themselves and run
 * `workload`. Resolves with every report once all threads have exited; rejects if a thread
 * dies without reporting.
 */
export function runThreads(
  count: number,
  base: Omit<ParticipantConfig, 'id' | 'workload'>,
  workload: Workload,
  scratch: SharedArrayBuffer,
): Promise<Report[]> {
  const entry = new URL('./thread-entry.js', here);
  return Promise.all(
    Array.from({ length: count }, (_, id) => {
      return new Promise<Report>((resolve, reject) => {
        let report: Report | undefined;
        const w = new Worker(entry, { workerData: { ...base, id, workload, scratch } });
        w.on('message', (r: Report) => {
          report = r;
        });
        w.on('error', (err) =>
          reject(new Error(`thread participant ${id} failed: ${err.stack ?? err}`)),
        );
        w.on('exit', (code) => {
          if (report !== undefined) resolve(report);
          else
            reject(new Error(`thread participant ${id} exited with code ${code} without a report`));
        });
      });
    }),
  );
}

/**
 * How process participants are started. `'fork'` (default): `child_process.fork` with an IPC
 * channel for the report. `'spawn'`: `child_process.spawn` of node with no IPC channel and no
 * extra fds — a participant that knows only what its config says (e.g. a lock's name), like an
 * unrelated process would; it writes its report to a file named in its config.
 */
export type ProcessLaunch = 'fork' | 'spawn';

/**
 * Start one process participant with its config in BAKERY_CONFORMANCE_CONFIG: `fork` (with an
 * IPC channel for the report), or `spawn` of node with nothing but that config (no parent
 * relation: the report goes to a file).
 */
function launchParticipant(
  launch: 'fork' | 'spawn',
  entry: URL,
  opts: ForkOptions,
  config: object,
): ChildProcess {
  const env = { ...process.env, ...opts.env, BAKERY_CONFORMANCE_CONFIG: JSON.stringify(config) };
  return launch === 'spawn'
    ? spawn(opts.execPath ?? process.execPath, [fileURLToPath(entry)], {
        cwd: opts.cwd,
        env,
        stdio: ['ignore', 'inherit', 'inherit'],
      })
    : fork(entry, [], {
        ...opts,
        env,
        stdio: opts.stdio ?? ['ignore', 'inherit', 'inherit', 'ipc'],
      });
}

/**
 * Start `count` child-process participants (`child_process.fork` of the conformance process
 * entry, or `spawn` with `launch = 'spawn'`) that each open the lock themselves and run
 * `workload`. `forkOptions(id)` lets the backend hand over what the child needs (an fd in the
 * stdio array, an env var); a forked entry always gets an IPC channel for its report.
 * Resolves once all have exited with code 0.
 */
export function runProcesses(
  count: number,
  base: Omit<ParticipantConfig, 'id' | 'workload'>,
  workload: Workload,
  scratch: string,
  forkOptions: (id: number) => ForkOptions = () => ({}),
  launch: ProcessLaunch = 'fork',
): Promise<Report[]> {
  const entry = new URL('./process-entry.js', here);
  const children: ChildProcess[] = [];
  const all = Promise.all(
    Array.from({ length: count }, (_, id) => {
      return new Promise<Report>((resolve, reject) => {
        const opts = forkOptions(id);
        const reportFile = launch === 'spawn' ? `${scratch}.report-${id}` : undefined;
        const config = { ...base, id, workload, scratch, reportFile };
        let report: Report | undefined;
        const child = launchParticipant(launch, entry, opts, config);
        children.push(child);
        child.on('message', (r: Report) => {
          report = r;
        });
        if (reportFile !== undefined) {
          child.on('close', () => {
            try {
              report = JSON.parse(fs.readFileSync(reportFile, 'utf8')) as Report;
              fs.rmSync(reportFile, { force: true });
            } catch {
              // no report: the exit handler below rejects
            }
          });
        }
        child.on('error', (err) =>
          reject(new Error(`process participant ${id} failed: ${err.message}`)),
        );
        // 'close', not 'exit': 'exit' can come before the last IPC message (the report) has
        // been read; 'close' waits for the channel too.
        child.on('close', (code, signal) => {
          if (report !== undefined && (code === 0 || report.errors.length > 0)) resolve(report);
          else
            reject(
              new Error(`process participant ${id} exited with ${signal ?? code} without a report`),
            );
        });
      });
    }),
  );
  // Never leave orphans behind when one participant fails.
  return all.catch((err) => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    throw err;
  });
}

/** One running incarnation of a participant, as {@link startCrew} drives it. */
interface Incarnation {
  exit: Promise<Exit>;
  running: boolean;
  kill(): void;
  killed: boolean;
}

/**
 * A {@link Crew} over a launcher that starts one incarnation of participant `id`. Killed
 * incarnations are replaced by `respawn`; `reports()` waits for the current ones.
 */
function startCrew(count: number, launch: (id: number) => Incarnation): Crew {
  const current: Incarnation[] = Array.from({ length: count }, (_, id) => launch(id));
  const check = (id: number) => {
    if (!Number.isInteger(id) || id < 0 || id >= count)
      throw new RangeError(`no participant ${id}`);
    return current[id]!;
  };
  return {
    count,
    running: (id) => check(id).running,
    kill(id) {
      const inc = check(id);
      if (inc.running) {
        inc.killed = true;
        inc.kill();
      }
      return inc.exit;
    },
    respawn(id) {
      if (check(id).running) throw new Error(`participant ${id} is still running`);
      current[id] = launch(id);
    },
    exit: (id) => check(id).exit,
    async reports() {
      const exits = await Promise.all(current.map((inc) => inc.exit));
      return exits.map((e) => {
        if (e.report === undefined || (e.report.errors.length === 0 && e.code !== 0)) {
          throw new Error(
            `participant ${e.id} ended (${e.signal ?? e.code}${e.killed ? ', killed' : ''}) without a clean report${e.error ? `: ${e.error}` : ''}`,
          );
        }
        return e.report;
      });
    },
    async stop() {
      for (const inc of current) {
        if (inc.running) {
          inc.killed = true;
          inc.kill();
        }
      }
      await Promise.all(current.map((inc) => inc.exit));
    },
  };
}

/**
 * Like {@link runThreads}, but the threads stay under the caller's control (kill with
 * `worker.terminate()`, which runs no exit handlers; respawn under the same id).
 */
export function startThreads(
  count: number,
  base: Omit<ParticipantConfig, 'id' | 'workload'>,
  workload: Workload,
  scratch: SharedArrayBuffer,
): Crew {
  const entry = new URL('./thread-entry.js', here);
  return startCrew(count, (id) => {
    let report: Report | undefined;
    let error: string | undefined;
    const w = new Worker(entry, { workerData: { ...base, id, workload, scratch } });
    const inc: Incarnation = {
      running: true,
      killed: false,
      kill: () => void w.terminate(),
      exit: new Promise<Exit>((resolve) => {
        w.on('message', (r: Report) => {
          report = r;
        });
        w.on('error', (err) => {
          error = String(err.stack ?? err);
        });
        w.on('exit', (code) => {
          inc.running = false;
          resolve({ id, report, code, signal: null, killed: inc.killed, error });
        });
      }),
    };
    return inc;
  });
}

/**
 * Like {@link runProcesses}, but the processes stay under the caller's control (kill with
 * SIGKILL; respawn under the same id).
 */
export function startProcesses(
  count: number,
  base: Omit<ParticipantConfig, 'id' | 'workload'>,
  workload: Workload,
  scratch: string,
  forkOptions: (id: number) => ForkOptions = () => ({}),
  launch: ProcessLaunch = 'fork',
): Crew {
  const entry = new URL('./process-entry.js', here);
  let serial = 0;
  return startCrew(count, (id) => {
    const opts = forkOptions(id);
    const reportFile = launch === 'spawn' ? `${scratch}.report-${id}-${serial++}` : undefined;
    const config = { ...base, id, workload, scratch, reportFile };
    const child = launchParticipant(launch, entry, opts, config);
    let report: Report | undefined;
    let error: string | undefined;
    const inc: Incarnation = {
      running: true,
      killed: false,
      kill: () => void child.kill('SIGKILL'),
      exit: new Promise<Exit>((resolve) => {
        child.on('message', (r: Report) => {
          report = r;
        });
        child.on('error', (err) => {
          error = err.message;
        });
        child.on('close', (code, signal) => {
          inc.running = false;
          if (reportFile !== undefined) {
            try {
              report = JSON.parse(fs.readFileSync(reportFile, 'utf8')) as Report;
            } catch {
              // killed, or exited before writing it
            }
            fs.rmSync(reportFile, { force: true });
          }
          resolve({ id, report, code, signal, killed: inc.killed, error });
        });
      }),
    };
    return inc;
  });
}
