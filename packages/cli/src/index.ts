export {
  type DirOptions,
  inspectLock,
  inspectProcess,
  type ListEntry,
  listLocks,
  MARK_CONSISTENT_TIMEOUT,
  type MarkConsistentOptions,
  type MarkConsistentResult,
  markConsistentLock,
  type Participant,
  type RemoveLockOptions,
  type RemoveResult,
  reapLock,
  removeLock,
} from './commands.js';
export { CliError, type CliErrorCode, codeOf, EXIT, exitCodeFor } from './errors.js';
export { formatList, formatLock, formatProcess, ownerDiedText } from './format.js';
export {
  fileKind,
  findProcessLocks,
  type LockView,
  type ProcessLock,
  type RawHeader,
  rawHeader,
  readLock,
  type SlotView,
  viewOf,
} from './read.js';
export { HELP, type Io, run, VERSION } from './run.js';
