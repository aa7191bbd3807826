/**
 * What the health sweep needs from the pool's registry, in the shape of `pool status --json`
 * (CLI.md) plus the lease holder's pid and host. Read with the pool's own reader.
 */
import type { LoadedConfig } from '@wtpool/config';
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

/** The pool's registry, or null when the pool has no slots and no waiters yet. */
export async function readPoolView(loaded: LoadedConfig): Promise<PoolView | null> {
  const st = await readPoolState(loaded);
  const slots = Object.values(st.slots).sort((a, b) => a.n - b.n);
  if (!slots.length && !st.queue.length) return null;
  return {
    max: loaded.config.scale.max,
    slots: slots.map((s) => ({
      id: s.id,
      state: s.state,
      path: s.path,
      branch: s.branch,
      lease: s.lease && {
        agent: s.lease.agent,
        task: s.lease.task,
        priority: s.lease.priority,
        token: s.lease.token,
        acquiredAt: s.lease.acquiredAt,
        heartbeatAt: s.lease.heartbeatAt,
        expiresAt: s.lease.expiresAt,
        pid: s.lease.holder?.pid ?? null,
        host: s.lease.holder?.host ?? s.lease.host,
      },
    })),
    queue: st.queue.map((t) => ({
      agent: t.agent,
      task: t.task,
      priority: t.priority,
      enqueuedAt: t.enqueuedAt,
    })),
  };
}
