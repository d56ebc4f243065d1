export type { TraceHooks } from './acquirer.js';
export type { Backend, Cells, Identity } from './backend.js';
export { BakeryError, isBakeryError, type BakeryErrorCode } from './errors.js';
export {
  BLACK,
  H,
  HEADER_CELLS,
  LAYOUT_VERSION,
  MAGIC,
  MAX_SLOTS,
  S,
  SLOT_CELLS,
  WHITE,
  bytesFor,
  cellsFor,
  packTicket,
  slotBase,
  ticketColour,
  ticketNumber,
} from './layout.js';
export { checkSlots, initLayout, validateLayout } from './memory.js';
export {
  openOn,
  snapshot,
  type Lease,
  type LockOptions,
  type LockSyncOptions,
  type Mutex,
  type MutexOptions,
  type SlotSnapshot,
  type Snapshot,
} from './mutex.js';
export { INVALID_ARGUMENT, checkTimeout, rangeError, typeError } from './validate.js';
