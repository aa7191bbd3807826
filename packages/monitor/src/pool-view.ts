/**
 * What the health sweep needs from the pool's registry, in the shape of `pool status --json`
 * (CLI.md) plus the lease holder's pid and host. Read with the pool's own reader.
 */
import type { LoadedConfig } from '@wtpool/config';
import { toStatus } from '@wtpool/pool';
import { readPoolState } from './pool-access.js';

export interface LeaseView {
  agent: string;
  task: string;
  priority?: number;
  token: number;
  acquiredAt: string;
  heartbeatAt: string;
  expiresAt: string;
  /** The holder process, when the lease names one. */
  pid?: number | null;
  host?: string | null;
}

export interface SlotView {
  id: string;
  state: string;
  path: string;
  branch?: string | null;
  lease?: LeaseView | null;
}

export interface PoolView {
  max: number;
  slots: SlotView[];
  queue: Array<{ agent: string; task: string; priority: number; enqueuedAt: string }>;
}

/** The pool's registry (the pool's own status shape), or null before the pool has slots or waiters. */
export async function readPoolView(loaded: LoadedConfig): Promise<PoolView | null> {
  const st = await readPoolState(loaded);
  const status = toStatus(st, loaded.config, null);
  if (!status.slots.length && !status.queue.length) return null;
  return {
    max: status.pool.max,
    queue: status.queue,
    slots: status.slots.map((s) => ({
      ...s,
      lease: s.lease && {
        ...s.lease,
        pid: s.lease.holderPid ?? null,
        host: st.slots[s.id]?.lease?.holder?.host ?? null,
      },
    })),
  };
}
