export type { TraceHooks } from './acquirer.js';
export {
  type AsyncLease,
  type AsyncMutex,
  checkMutexOptions,
  DEFAULT_MAX_BATCH,
  DEFAULT_MAX_BATCH_MS,
  type Lease,
  type LockOptions,
  type LockSyncOptions,
  type Mutex,
  type MutexOptions,
  type SlotSnapshot,
  type Snapshot,
} from './api.js';
export { AtomicCells } from './atomic-cells.js';
export type { Backend, Cells, Identity, OutsiderLock } from './backend.js';
export { creatorOptions } from './creator.js';
export { BakeryError, type BakeryErrorCode, isBakeryError } from './errors.js';
export {
  ACCESS,
  type AccessMode,
  BLACK,
  bytesFor,
  CLAIM_GEN_MASK,
  cellsFor,
  H,
  HEADER_CELLS,
  isRetained,
  LAYOUT_VERSION,
  MAGIC,
  MAX_SLOTS,
  OUTSIDER_SLOT,
  packTicket,
  reaperClaim,
  reaperToken,
  S,
  SLOT_CELLS,
  SLOT_WANTED_FRESH_MS,
  slotBase,
  TICKET_RETAINED,
  ticketColour,
  ticketNumber,
  WHITE,
} from './layout.js';
export { accessName, checkSlots, initLayout, layoutAccess, validateLayout } from './memory.js';
export { openOn } from './mutex.js';
export { readOwner, sameOwner } from './owner.js';
export { snapshot } from './snapshot.js';
export { checkTimeout, INVALID_ARGUMENT, rangeError, typeError } from './validate.js';
export { sleepSync } from './waiting.js';
