/**
 * What the monitor needs from the pool's registry, in the shape of `pool status --json`
 * (CLI.md) plus the lease holder's pid and host. Filled from the pool's own readers.
 */
import type { LoadedConfig } from '@wtpool/config';

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

/** The pool's registry, or null when the pool has no state yet. */
export async function readPoolView(_loaded: LoadedConfig): Promise<PoolView | null> {
  return null;
}
