/**
 * Choosing the lease store the configuration names: files under .git/wtpool (default) or Redis
 * (docs/fleet.md). Kept apart from fleet.ts: this is on every command's static path, and the
 * fleet's reclaim of lost hosts needs the services package (pg), loaded only when it runs.
 */
import type { LoadedConfig } from '@wtpool/config';
import { FileLeaseStore } from './file-lease-store.js';
import type { LeaseStore } from './lease-store.js';
import { RedisLeaseStore } from './redis-lease-store.js';

export function createStore(loaded: LoadedConfig): LeaseStore {
  if (loaded.config.store.backend !== 'redis') return new FileLeaseStore(loaded.repo.stateDir);
  const store = new RedisLeaseStore(loaded);
  store.housekeeping = () =>
    import('./fleet.js').then((m) => m.reclaimLostHosts(loaded, store)).then(() => undefined);
  store.registerBand = () => import('./fleet.js').then((m) => m.registerBand(loaded, store));
  const { postgres } = loaded.config;
  if (postgres.url) {
    // The server's default budget: asked of Redis (its fleet-wide cache) at most once a minute.
    let known: { n: number; at: number } | undefined;
    store.connBudget = async () => {
      if (postgres.connectionBudget !== null) return postgres.connectionBudget;
      if (!known || Date.now() - known.at > 60_000) {
        const m = await import('./fleet.js');
        known = { n: await m.serverConnectionBudget(loaded), at: Date.now() };
      }
      return known.n;
    };
  }
  return store;
}
