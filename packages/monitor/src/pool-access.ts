/**
 * Everything the monitor needs from the pool, in one place: its registry reader, its lease
 * rule, its git helpers (rescue, worktree removal, branch deletion, under its git locks) and
 * its event log. Nothing here re-implements the pool.
 */
import type { LoadedConfig } from '@wtpool/config';
import { gitRun } from '@wtpool/core';
import {
  RedisLeaseStore,
  WorktreePool,
  appendEvent,
  commitsAhead,
  deleteBranch,
  listWorktrees,
  removeWorktree,
  withGitLock,
  isDirty,
  type PoolState,
  type SlotRecord,
} from '@wtpool/pool';

export type { PoolState, SlotRecord };
export { listWorktrees };

/** One pool handle per loaded config (the pool caches its providers). */
const pools = new WeakMap<LoadedConfig, WorktreePool>();
export function poolOf(loaded: LoadedConfig): WorktreePool {
  let p = pools.get(loaded);
  if (!p) pools.set(loaded, (p = new WorktreePool(loaded)));
  return p;
}

/** The registry as it is now (lock-free read of the atomically replaced state file). */
export function readPoolState(loaded: LoadedConfig): Promise<PoolState> {
  return poolOf(loaded).readState();
}

/** Why a slot's lease is over (expired, holder-dead, abandoned), by the pool's own rule. */
export function leaseOver(loaded: LoadedConfig, slot: SlotRecord): string | null {
  return poolOf(loaded).leaseOver(slot);
}

/** The pool operations cleanup-leaks performs. */
export interface PoolOps {
  /** Reclaims every lease that is over (rescue, reset, providers released); the slots reclaimed. */
  reclaimExpired(): Promise<string[]>;
  /** Recreates the worktrees of registered ready/broken slots whose directory is gone. */
  recreateMissing(): Promise<void>;
  /** Does removing this worktree lose anything (uncommitted changes, commits no ref holds)? */
  needsRescue(dir: string): Promise<boolean>;
  removeWorktree(dir: string): Promise<void>;
  deleteBranch(branch: string): Promise<void>;
  commitsAhead(base: string, ref: string): Promise<number>;
  event(type: string, details: Record<string, unknown>): Promise<void>;
  /**
   * In a fleet: the pool's own housekeeping now (marks hosts silent past hostTtl lost and
   * reclaims them: leases expired, Redis DBs flushed, slot databases dropped). No-op otherwise.
   */
  reclaimLostHosts(): Promise<void>;
}

export function poolOps(loaded: LoadedConfig): PoolOps {
  const pool = poolOf(loaded);
  const { mainRoot, stateDir } = loaded.repo;
  return {
    async reclaimExpired() {
      return (await pool.cleanup()).reclaimed;
    },
    async recreateMissing() {
      // initialize() keeps the size and re-provisions registered slots whose worktree is gone.
      const size = Object.keys((await pool.readState()).slots).length;
      await pool.initialize({ size });
    },
    async needsRescue(dir) {
      if (await isDirty(dir)) return true;
      // A detached HEAD with commits no ref contains would be lost with the worktree.
      const r = await gitRun(['for-each-ref', '--count=1', '--contains', 'HEAD', 'refs/'], {
        cwd: dir,
      });
      return r.code !== 0 || r.stdout.trim() === '';
    },
    removeWorktree: (dir) =>
      withGitLock(stateDir, 'worktrees', () => removeWorktree(mainRoot, dir)),
    deleteBranch: (branch) => withGitLock(stateDir, 'refs', () => deleteBranch(mainRoot, branch)),
    commitsAhead: (base, ref) => commitsAhead(mainRoot, base, ref),
    event: (type, details) => appendEvent(stateDir, type, details),
    async reclaimLostHosts() {
      if (pool.store instanceof RedisLeaseStore) await pool.store.housekeep(true);
    },
  };
}
