// The optional native binding: @bakery/shm maps its lock files through @bakery/native where that
// package is installed and its binary loads, and runs pure JS everywhere else. Nothing here may
// throw at import time: installing @bakery/shm must never fail because of the native part.
import { createRequire } from 'node:module';
import { BakeryError, rangeError } from '@bakery/core';
import type * as NativeModule from '@bakery/native';

/** How a participant reaches a lock's cells: see {@link OpenOptions.access}. */
export type ShmAccess = 'auto' | 'mapped' | 'pure-js';

/** Environment variable that sets the default of the `access` option (`auto`, `mapped`, `pure-js`). */
export const ACCESS_ENV = 'BAKERY_SHM_ACCESS';

const ACCESSES: readonly string[] = ['auto', 'mapped', 'pure-js'];

/** The binding and the library around it, or why there is none (`error` undefined: not asked for). */
export type Binding =
  | { native: NativeModule.Native; lib: typeof NativeModule }
  | { error: BakeryError | undefined };

let cached: Binding | undefined;

/** Loads @bakery/native once per process; a failure is a value, not an exception. */
export function nativeBinding(): Binding {
  if (cached !== undefined) return cached;
  let lib: typeof NativeModule;
  try {
    lib = createRequire(import.meta.url)('@bakery/native') as typeof NativeModule;
  } catch (cause) {
    cached = {
      error: new BakeryError(
        'BAKERY_NATIVE_UNAVAILABLE',
        '@bakery/native is not installed (an optional dependency of @bakery/shm: npm leaves it out where it cannot install it)',
        { cause },
      ),
    };
    return cached;
  }
  const r = lib.probeNative();
  cached = 'native' in r ? { native: r.native, lib } : { error: r.error };
  return cached;
}

/** The `access` a call asked for: the option, else env {@link ACCESS_ENV}, else `'auto'`. */
export function wantedAccess(option: unknown): ShmAccess {
  if (option !== undefined) {
    if (typeof option !== 'string' || !ACCESSES.includes(option)) {
      throw rangeError(`access must be 'auto', 'mapped' or 'pure-js', got ${String(option)}`);
    }
    return option as ShmAccess;
  }
  const env = process.env[ACCESS_ENV];
  if (env === undefined || env === '') return 'auto';
  if (!ACCESSES.includes(env)) {
    throw rangeError(`${ACCESS_ENV} must be 'auto', 'mapped' or 'pure-js', got "${env}"`);
  }
  return env as ShmAccess;
}
