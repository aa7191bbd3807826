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
    store.connBudget = async () =>
      postgres.connectionBudget ??
      (await import('./fleet.js').then((m) => m.serverConnectionBudget(loaded)));
  }
  return store;
}
