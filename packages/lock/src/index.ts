export {
  withLock,
  readLockHolder,
  inspectLock,
  pidAlive,
  LockTimeoutError,
  LockCompromisedError,
} from './lock.js';
export type { LockOptions, LockHandle, LockHolder } from './lock.js';
export { JsonStore, StoreCorruptError, StoreConflictError } from './store.js';
export type { JsonStoreOptions, Versioned } from './store.js';
export {
  createExclusive,
  writeFileAtomic,
  writePrivateFile,
  readJsonFile,
  writeTemp,
  tempPath,
} from './atomic.js';
export { ensurePrivateDir, PRIVATE_FILE_MODE, PRIVATE_DIR_MODE } from './private.js';
export { FencingCounter } from './fencing.js';
