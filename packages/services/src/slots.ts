/**
 * The slot-side entry point of @wtpool/services (`@wtpool/services/slots`): what the pool needs
 * on every acquire and release, the enabled providers and their lifecycle steps. Importing it
 * loads no Redis or PostgreSQL client code (the package's main entry re-exports those, and
 * with them `node:tls`: a fifth of a warm `pool acquire`, issue 26); their providers are
 * imported only when the configuration enables them.
 */
import type { LoadedConfig } from '@wtpool/config';
import type { SlotProvider } from './provider.js';
import { beadsBasePrefix, beadsProvider } from './beads.js';
import { portsProvider } from './ports.js';
import { hooksProvider } from './hooks.js';
import { depsProvider } from './deps.js';
import { hasWorktreeInclude } from './include.js';
import { slotConfigProvider } from './slot-config.js';

export {
  leaseSlot,
  releaseSlot,
  provisionSlot,
  refreshSlot,
  destroySlot,
  checkSlot,
} from './lifecycle.js';
export { keptPaths } from './slot-config.js';

/**
 * The providers enabled by the configuration, in the order the pool runs them: hooks (always),
 * dependencies (unless deps.strategy is none), PostgreSQL, Redis, ports, beads (each when
 * configured), then the slot's own configuration (pool.include / .worktreeinclude, pool.setup).
 * pg is imported only when PostgreSQL is configured; Redis uses a socket-level client (D20).
 * The env keys they return are written to `.env.worktree` by the pool (D60).
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
