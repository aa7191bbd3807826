// Public surface of @wtpool/services.
export type { SlotProvider, ProviderContext, LeaseInfo } from './provider.js';
import type { LoadedConfig } from '@wtpool/config';
import { failure } from '@wtpool/core';
import type { SlotProvider } from './provider.js';

/**
 * The providers enabled by the configuration, in the order the pool runs them. With no
 * service configured this is empty and the pool works with worktrees alone.
 * (Filled in by the services issue; service clients are imported lazily so hot commands
 * do not pay for pg/ioredis when they are not configured.)
 */
export async function createProviders(_loaded: LoadedConfig): Promise<SlotProvider[]> {
  return [];
}

/** The Redis band's capacity block for status/snapshot (`null` when Redis is disabled). */
export interface Capacity {
  floor: number;
  step: number;
  current: number;
  used: number;
  free: number;
  physical_max: number;
}

export async function redisCapacity(_loaded: LoadedConfig): Promise<Capacity | null> {
  return null;
}

/**
 * Raises Redis `databases` to `target` with exactly one restart (`pool scale --provision`).
 * Stub until the services issue lands.
 */
export async function provisionRedis(
  _loaded: LoadedConfig,
  _opts: {
    target?: number | undefined;
    yes: boolean;
    out: { warn(m: string): void; info(m: string): void };
  },
): Promise<{ restarted: boolean; before: number; after: number }> {
  throw failure(
    'ERR_NOT_CONFIGURED',
    'redis is not configured (redis.url, redis.confFile, redis.restartCommand)',
    {
      hint: 'set them in pool.config.yaml',
    },
  );
}
