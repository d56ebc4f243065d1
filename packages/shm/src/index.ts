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
export { SHM_MAX_SLOTS, ShmCells } from './cells.js';
export { ACCESS_ENV, type ShmAccess } from './native.js';
export {
  checkName,
  DEFAULT_DIR,
  defaultLockDir,
  lockDir,
  lockPath,
  NAME_PATTERN,
  type OpenOptions,
  openMutex,
  type RemoveOptions,
  removeMutex,
  type ShmMutex,
  SLOTS_RULE,
} from './shm.js';
