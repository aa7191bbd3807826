// Public surface of @wtpool/services.

export type { SlotProvider, ProviderContext, LeaseInfo } from './provider.js';
export type { Capacity, BandEvent } from './redis.js';
export { redisCapacity, flushIndex } from './redis.js';
export { bandStore, type BandState } from './band-store.js';
export { RedisBandStore, bandFor, bandOwner } from './fleet-band.js';
export type { BandStore } from './fleet-band.js';
export { provisionRedis, withDatabases } from './provision-redis.js';
export type { ProvisionRedisOptions, ProvisionRedisResult } from './provision-redis.js';
export {
  checkTemplate,
  cloneDatabase,
  dropDatabase,
  ensureTemplate,
  migrationsHash,
  quoteIdent,
  rebuildTemplate,
  withAdmin,
} from './postgres.js';
export type { TemplateDrift } from './postgres.js';
export { armHooks } from './hooks.js';
export type { ArmResult } from './hooks.js';
export { boundPorts, portEnv, portSquatters, squatterProblems } from './ports.js';
export type { PortSquatter } from './ports.js';
export { beadsBasePrefix } from './beads.js';
export { installDeps, lockfileHash, hardlinkClone } from './deps.js';
export type { DepsResult } from './deps.js';
export * from './slots.js';
export { readSlotConfig, slotConfigFile } from './slot-config.js';
export type { SlotConfigRecord } from './slot-config.js';
export { listIncludes, WORKTREEINCLUDE } from './include.js';
export { setupLogFile } from './setup-commands.js';
export {
  insideNodeModules,
  measureTree,
  RACY_MS,
  type DirRecord,
  type DiskCache,
  type MeasureOptions,
  type TreeMeasure,
} from './disk-measure.js';
export {
  diskRecordsDir,
  loadDiskRecords,
  loadTreeRecords,
  primeDiskRecords,
  saveDiskRecords,
} from './disk-records.js';

// The socket-level Redis client, reused by the monitor (no second client library).
export { redisPipeline, redisCommand, RedisReplyError } from './resp.js';
export type { Reply } from './resp.js';
