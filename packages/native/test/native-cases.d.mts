import type { BakeryError } from '@bakery/core';
import type { Native, SEAL } from '../src/native.js';

/** What {@link nativeCases} takes: the runner's functions and the loaded binding. */
export interface NativeCaseOptions {
  test: (name: string, fn: () => unknown, timeout?: number) => void;
  describe: (name: string, fn: () => void) => void;
  afterEach: (fn: () => unknown) => void;
  native: Native;
  SEAL: typeof SEAL;
  BakeryError: typeof BakeryError;
  /** The node child processes run (default: process.execPath). */
  execPath?: string;
  /** Scales the pauses that let another thread or process reach a futex (default 1). */
  slowdown?: number;
}

export declare function nativeCases(options: NativeCaseOptions): void;
