// Public surface of @wtpool/services.
import type { LoadedConfig } from '@wtpool/config';
import type { SlotProvider } from './provider.js';
import { beadsBasePrefix, beadsProvider } from './beads.js';
import { portsProvider } from './ports.js';
import { hooksProvider } from './hooks.js';
import { depsProvider } from './deps.js';
import { hasWorktreeInclude } from './include.js';
import { slotConfigProvider } from './slot-config.js';

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
export {
  leaseSlot,
  releaseSlot,
  provisionSlot,
  refreshSlot,
  destroySlot,
  checkSlot,
} from './lifecycle.js';
export { keptPaths, readSlotConfig, slotConfigFile } from './slot-config.js';
export type { SlotConfigRecord } from './slot-config.js';
export { listIncludes, WORKTREEINCLUDE } from './include.js';
export { setupLogFile } from './setup-commands.js';

/**
 * The providers enabled by the configuration, in the order the pool runs them: hooks (always),
 * dependencies (unless deps.strategy is none), PostgreSQL, Redis, ports, beads (each when
 * configured), then the slot's own configuration (pool.include / .worktreeinclude, pool.setup). pg is imported only when PostgreSQL is configured; Redis uses a socket-level
 * client (D20). The env keys they return are written to `.env.worktree` by the pool (D60).
 */
export async function createProviders(loaded: LoadedConfig): Promise<SlotProvider[]> {
  const { config, repo } = loaded;
  const services: SlotProvider[] = [];
  if (config.postgres.url) services.push((await import('./postgres.js')).postgresProvider(config));
  if (config.redis.url) services.push((await import('./redis.js')).redisProvider(config));
  if (config.ports.base !== null) services.push(portsProvider(config));
  const beads = beadsBasePrefix(config, repo);
  if (beads) services.push(beadsProvider(beads));
  const setup = [hooksProvider()];
  if (config.deps.strategy !== 'none') setup.push(depsProvider(config));
  // Last: the repository's own setup may need the dependencies and the database.
  const own =
    config.pool.include.length ||
    config.pool.setup.length ||
    (await hasWorktreeInclude(repo.mainRoot));
  return [...setup, ...services, ...(own ? [slotConfigProvider(config)] : [])];
}
// The socket-level Redis client, reused by the monitor (no second client library).
export { redisPipeline, redisCommand, RedisReplyError } from './resp.js';
export type { Reply } from './resp.js';
