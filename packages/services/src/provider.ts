/**
 * The contract between the pool and the per-slot services. The pool owns the slot lifecycle
 * (provisioning → ready → leased → releasing → ready, broken, retiring) and calls each enabled
 * provider at the matching step. Providers never touch the pool's registry; whatever state
 * they need (e.g. the Redis band) they keep in their own store under `repo.stateDir`.
 *
 * Slow work (cloning a database, installing dependencies) happens in provision/reset, which
 * the pool runs OUTSIDE its registry lock.
 */
import type { Config, RepoPaths, SlotNames } from '@wtpool/config';

export interface ProviderContext {
  config: Config;
  repo: RepoPaths;
  /** Everything derived from the slot, from the one naming function. */
  names: SlotNames;
  /** Appends an event to the pool's events.jsonl (type, details). */
  event(type: string, details: Record<string, unknown>): Promise<void>;
  /** Progress for humans (shown on a terminal only). */
  progress(message: string): void;
  warn(message: string): void;
  /** The slot's env as a lease sees it (pool keys, ports, database…), for setup commands. */
  slotEnv?(): Promise<Record<string, string>>;
}

export interface LeaseInfo {
  agent: string;
  task: string;
  token: number;
}

export interface SlotProvider {
  /** postgres | redis | ports | beads | deps | hooks | env … */
  readonly name: string;
  /** Once, when a slot is created or recreated (worktree exists). Idempotent. */
  provision?(ctx: ProviderContext): Promise<void>;
  /**
   * When a lease is granted: allocate per-lease resources and return the env keys this
   * service contributes (e.g. REDIS_DB, REDIS_URL). Throwing here fails the acquire; the pool
   * then calls release() on the providers that already leased, and frees the slot.
   */
  lease?(ctx: ProviderContext, lease: LeaseInfo): Promise<Record<string, string>>;
  /** Env keys of an existing lease (for status/run), without allocating anything. */
  env?(ctx: ProviderContext): Promise<Record<string, string>>;
  /** When a lease ends (release or reclaim): reset to pristine, free per-lease resources. */
  release?(ctx: ProviderContext): Promise<void>;
  /**
   * The slot's checkout moved to a new base commit: after a release's reset ('release', once
   * every provider released) or after an acquire switched to its lease branch ('acquire').
   * Bring derived state (dependencies, setup outputs) up to date; cheap when nothing changed.
   */
  refresh?(ctx: ProviderContext, why: 'release' | 'acquire'): Promise<void>;
  /** When a slot is retired: remove what provision created. */
  destroy?(ctx: ProviderContext): Promise<void>;
  /** Problems of this slot's service, for `pool doctor` and the monitor (empty = healthy). */
  check?(ctx: ProviderContext): Promise<string[]>;
}
