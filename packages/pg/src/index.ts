export { inspectLock } from './inspect.js';
export { checkName, keyParts, lockKey, MAX_NAME_LENGTH } from './key.js';
export {
  DEFAULT_SESSION_TIMEOUT_MS,
  MIN_SESSION_TIMEOUT_MS,
  openMutex,
  type PgLease,
  PgMutex,
  type PgMutexOptions,
  type PgParticipant,
  type PgSnapshot,
} from './mutex.js';
export { type Connection, MIN_SERVER_VERSION, sessionSettings } from './session.js';
export { DEFAULT_TABLE } from './table.js';
