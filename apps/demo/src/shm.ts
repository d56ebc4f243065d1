import type { Mutex, MutexOptions } from '@bakery/core';

/** The part of @bakery/shm the demo uses. */
export interface ShmModule {
  openMutex(
    name: string,
    options: MutexOptions & { slots: number; create?: boolean; dir?: string },
  ): Mutex;
  removeMutex(name: string, options?: { dir?: string }): void;
}

/** Load @bakery/shm only when the shm backend is chosen. */
export async function loadShm(): Promise<ShmModule> {
  const specifier = '@bakery/shm';
  return (await import(specifier)) as ShmModule;
}
