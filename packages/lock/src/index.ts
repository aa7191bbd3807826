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
export { createExclusive, writeFileAtomic, readJsonFile, writeTemp, tempPath } from './atomic.js';
export { FencingCounter } from './fencing.js';
