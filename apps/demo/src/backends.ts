import { type ChildProcess, fork } from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Mutex } from '@bakery/core';
import type { BackendName } from './options.js';
import {
  type FromParticipant,
  type ParticipantConfig,
  SCRATCH_BYTES,
  type ToParticipant,
} from './protocol.js';
import { FileScratch, MemoryScratch, type Scratch } from './scratch.js';
import { loadShm } from './shm.js';

/** The parent's handle on one participant, whether a child process or a worker thread. */
export interface Peer {
  readonly id: number;
  /** OS process id (for threads: the parent's pid). */
  readonly pid: number;
  send(msg: ToParticipant): void;
  /** End it now (SIGKILL for a process, terminate() for a thread). */
  kill(): void;
  onMessage(fn: (msg: FromParticipant) => void): void;
  /** Called once when it is gone: exit code, or the signal that killed it. */
  onExit(fn: (code: number | null, signal: string | null) => void): void;
}

/** A lock, the scratch data, and the means to start participants on one backend. */
export interface Backend {
  readonly name: BackendName;
  /** How participants run, for the summary. */
  readonly kind: string;
  /** The parent's own (idle) instance: it never locks, it only inspects. */
  readonly mutex: Mutex;
  readonly slots: number;
  /** Participants wait in the blocking lockSync (they read a stop message only once they get a turn). */
  readonly blocking: boolean;
  readonly scratch: Scratch;
  start(config: ParticipantConfig): Peer;
  /** Close the parent's handles and remove named files. Synchronous, idempotent. */
  cleanup(): void;
}

const entry = fileURLToPath(new URL('./participant.js', import.meta.url));

function processPeer(id: number, child: ChildProcess): Peer {
  return {
    id,
    pid: child.pid ?? -1,
    send: (msg) => {
      if (child.connected) child.send(msg, (err) => void err);
    },
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
    onMessage: (fn) => child.on('message', (m) => fn(m as FromParticipant)),
    onExit: (fn) => {
      // 'exit' can precede the last IPC message; 'close' comes after stdio and IPC are done.
      child.once('close', (code, signal) => fn(code, signal));
      child.once('error', () => {
        if (child.pid === undefined) fn(null, 'spawn-failed');
      });
    },
  };
}

function threadPeer(id: number, worker: Worker): Peer {
  let gone = false;
  worker.once('exit', () => (gone = true));
  return {
    id,
    pid: process.pid,
    send: (msg) => {
      if (!gone) worker.postMessage(msg);
    },
    kill: () => {
      if (!gone) void worker.terminate();
    },
    onMessage: (fn) => worker.on('message', fn),
    onExit: (fn) => {
      let error: Error | null = null;
      worker.on('error', (err) => (error = err));
      worker.once('exit', (code) => {
        if (error !== null) process.stderr.write(`participant ${id}: ${error.stack ?? error}\n`);
        fn(code, null);
      });
    },
  };
}

function forkChild(config: ParticipantConfig, options: import('node:child_process').ForkOptions) {
  return fork(entry, [], {
    ...options,
    serialization: 'advanced',
    env: { ...process.env, ...options.env, BAKERY_DEMO_CONFIG: JSON.stringify(config) },
  });
}

async function mmapBackend(slots: number): Promise<Backend> {
  const { createMutex, loadNative } = await import('@bakery/mmap');
  const native = loadNative();
  const mutex = createMutex({ slots, robust: 'auto' });
  const scratchFd = native.create(SCRATCH_BYTES);
  const scratch = new MemoryScratch(native.map(scratchFd, SCRATCH_BYTES));
  let closed = false;
  return {
    name: 'mmap',
    kind: 'processes (child_process.fork)',
    mutex,
    slots,
    blocking: true,
    scratch,
    start(config) {
      // The scratch memfd goes in at fd 4; forkOptions appends the lock's memfd after it.
      const base = { stdio: ['ignore', 'inherit', 'inherit', 'ipc', scratchFd] as const };
      const child = forkChild(
        { ...config, scratchFd: 4 },
        mutex.forkOptions({ stdio: [...base.stdio] }),
      );
      return processPeer(config.id, child);
    },
    cleanup() {
      if (closed) return;
      closed = true;
      native.close(scratchFd);
      try {
        mutex.close();
      } catch {}
    },
  };
}

async function sabBackend(slots: number): Promise<Backend> {
  const { createMutex } = await import('@bakery/sab');
  const mutex = createMutex({ slots, robust: 'auto' });
  const buffer = new SharedArrayBuffer(SCRATCH_BYTES);
  const scratch = new MemoryScratch(buffer);
  return {
    name: 'sab',
    kind: 'worker threads',
    mutex,
    slots,
    blocking: true,
    scratch,
    start(config) {
      const worker = new Worker(entry, {
        workerData: { config, handle: mutex.handle, scratch: buffer },
      });
      return threadPeer(config.id, worker);
    },
    cleanup() {
      try {
        mutex.close();
      } catch {}
    },
  };
}

async function shmBackend(slots: number): Promise<Backend> {
  const shm = await loadShm();
  const name = `bakery-demo-${process.pid}`;
  const mutex = shm.openMutex(name, { slots, create: true, robust: 'auto' });
  const base = fs.existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  const scratchPath = join(base, `bakery-demo-${process.pid}.counter`);
  let scratch: Scratch;
  try {
    FileScratch.create(scratchPath, SCRATCH_BYTES);
    scratch = new FileScratch(scratchPath);
  } catch (err) {
    mutex.close();
    shm.removeMutex(name);
    throw err;
  }
  let closed = false;
  return {
    name: 'shm',
    kind: 'processes (child_process.fork)',
    mutex,
    slots,
    blocking: false,
    scratch,
    start(config) {
      const child = forkChild(
        { ...config, scratchPath, shm: { name, slots } },
        { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] },
      );
      return processPeer(config.id, child);
    },
    cleanup() {
      if (closed) return;
      closed = true;
      try {
        scratch.close();
      } catch {}
      try {
        mutex.close();
      } catch {}
      try {
        shm.removeMutex(name);
      } catch {}
      fs.rmSync(scratchPath, { force: true });
    },
  };
}

/**
 * Create the lock (with one slot per participant plus the parent's) and the scratch data on
 * `name`. Backend modules load lazily, so `sab` runs where the mmap addon is not built.
 */
export function openBackend(name: BackendName, procs: number): Promise<Backend> {
  const slots = procs + 1;
  if (name === 'mmap') return mmapBackend(slots);
  if (name === 'sab') return sabBackend(slots);
  return shmBackend(slots);
}
