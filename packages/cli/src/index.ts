export {
  type DirOptions,
  inspectLock,
  inspectPgLock,
  inspectProcess,
  type ListEntry,
  listLocks,
  MARK_CONSISTENT_TIMEOUT,
  type MarkConsistentOptions,
  type MarkConsistentResult,
  markConsistentLock,
  type Participant,
  PG_CONNECT_TIMEOUT,
  type PgInspectOptions,
  type PgLockView,
  type RemoveLockOptions,
  type RemoveResult,
  reapLock,
  removeLock,
} from './commands.js';
export { CliError, type CliErrorCode, codeOf, EXIT, exitCodeFor } from './errors.js';
export { formatList, formatLock, formatPgLock, formatProcess, ownerDiedText } from './format.js';
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
export { HELP, type Io, run, runAsync, VERSION } from './run.js';
