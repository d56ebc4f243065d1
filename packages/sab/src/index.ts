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
export {
  type CreateOptions,
  createMutex,
  openMutex,
  SabCells,
  type SabHandle,
  type SabMutex,
} from './sab.js';
