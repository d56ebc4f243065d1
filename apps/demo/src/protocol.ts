import type { BackendName } from './options.js';

/** Cells of the demo's scratch region (the data the lock protects, plus the occupancy probe). */
export const CELL = {
  /** The shared counter: read, yield, write +1 inside the critical section. */
  COUNTER: 0,
  /** Participants inside the critical section right now; must never exceed 1. */
  OCCUPANCY: 1,
} as const;

/** Bytes of the scratch region. */
export const SCRATCH_BYTES = 64;

/** Samples kept per participant (3 float64 each); acquisitions beyond it are counted only. */
export const SAMPLE_CAP = 20_000;

/** What a participant needs to know; JSON in `BAKERY_DEMO_CONFIG` (processes) or workerData. */
export interface ParticipantConfig {
  id: number;
  backend: BackendName;
  quiet: boolean;
  /** Die while holding the lock after a few acquisitions (test hook). */
  crash: boolean;
  /** mmap: the fd number of the scratch memfd in the child. */
  scratchFd?: number;
  /** shm: the scratch file. */
  scratchPath?: string;
  /** shm: the lock's name and slot count. */
  shm?: { name: string; slots: number; dir?: string };
}

/** Parent → participant: start now (sent once everyone has opened the lock). */
export interface GoMessage {
  type: 'go';
  /** process.hrtime.bigint() of the start; sample times are relative to it. */
  t0: bigint;
  /** Stop taking the lock once hrtime passes this (null: no time limit). */
  endAt: bigint | null;
  /** Take the lock this many times (null: no count limit). */
  iterations: number | null;
}

/** Parent → participant: stop as soon as possible (Ctrl-C, or another participant crashed). */
export interface StopMessage {
  type: 'stop';
}

/** Participant → parent: the lock is open; waiting for go. */
export interface ReadyMessage {
  type: 'ready';
  id: number;
  pid: number;
  /** The participant's slot in the lock. */
  slot: number;
}

/** Participant → parent, once at the end: everything measured, in one batch. */
export interface DoneMessage {
  type: 'done';
  id: number;
  acquisitions: number;
  /** Times the occupancy probe found someone else inside. */
  violations: number;
  /** Per kept acquisition: enter (µs after t0), hold (µs), wait (µs). */
  samples: Float64Array;
  /** µs after t0 when this participant stopped. */
  finishedUs: number;
  /** True when a stop message cut the run short. */
  stopped: boolean;
  error: string | null;
}

export type ToParticipant = GoMessage | StopMessage;
export type FromParticipant = ReadyMessage | DoneMessage;
