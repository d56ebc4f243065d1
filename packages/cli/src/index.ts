export {
  type DirOptions,
  inspectLock,
  inspectProcess,
  type ListEntry,
  listLocks,
  reapLock,
  removeLock,
} from './commands.js';
export { CliError, type CliErrorCode, codeOf, EXIT, exitCodeFor } from './errors.js';
export { formatList, formatLock, formatProcess } from './format.js';
export {
  findProcessLocks,
  type LockView,
  type ProcessLock,
  readLock,
  type SlotView,
  viewOf,
} from './read.js';
export { HELP, type Io, run, VERSION } from './run.js';
