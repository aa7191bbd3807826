/**
 * The fleet (store.backend redis, docs/fleet.md): choosing the lease store, and the hosts
 * sharing one pool through it.
 */
import type { LoadedConfig } from '@wtpool/config';
import { FileLeaseStore } from './file-lease-store.js';
import type { LeaseStore } from './lease-store.js';
import { RedisLeaseStore } from './redis-lease-store.js';

/** The lease store the configuration names: files under .git/wtpool (default) or Redis. */
export function createStore(loaded: LoadedConfig): LeaseStore {
  return loaded.config.store.backend === 'redis'
    ? new RedisLeaseStore(loaded)
    : new FileLeaseStore(loaded.repo.stateDir);
}
