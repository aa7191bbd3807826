/**
 * The local record of this host's Redis band (`redis-band.json` in the state dir): band size,
 * the last physical `databases` read, and DB index → slot. Shared by the single-host band
 * (redis.ts) and the fleet band (fleet-band.ts); its own module so neither imports the other.
 */
import path from 'node:path';
import type { RepoPaths } from '@wtpool/config';
import { JsonStore } from '@wtpool/lock';

export interface BandState {
  /** Band size (number of allocatable DBs above bandStart); 0 until first used. */
  current: number;
  /** Last `databases` read from Redis. */
  physical: number | null;
  /** DB index → slot id. */
  alloc: Record<string, string>;
}

export function bandStore(repo: RepoPaths): JsonStore<BandState> {
  return new JsonStore<BandState>(path.join(repo.stateDir, 'redis-band.json'), {
    initial: { current: 0, physical: null, alloc: {} },
  });
}
