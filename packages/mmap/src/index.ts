export {
  BakeryError,
  type BakeryErrorCode,
  isBakeryError,
  type Lease,
  type LockOptions,
  type LockSyncOptions,
  type Mutex,
  type MutexOptions,
  type SlotSnapshot,
  type Snapshot,
} from '@bakery/core';
export { loadNative, type Native, type WaitResult } from '@bakery/native';
export {
  type ClusterOptions,
  type CreateOptions,
  clusterOptions,
  createMutex,
  FD_ENV,
  forkOptions,
  MmapCells,
  type MmapMutex,
  type OpenOptions,
  openMutex,
  spawnOptions,
} from './mmap.js';
