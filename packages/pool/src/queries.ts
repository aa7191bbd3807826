/**
 * Reading the pool: status, the registry snapshot, kept branches (rescue refs: rescue/). Read-only:
 * nothing here changes the registry, a lease record or a worktree (reclaiming expired leases
 * is the job of mutating commands and `pool doctor --fix`); status only *shows* a lease whose
 * holder is gone or whose TTL ran out (`lease.over`).
 */
import { integrationWorktrees } from '@wtpool/config';
import { liveFacts, type PoolContext } from './context.js';
import { capacity } from './slot-services.js';
import { leaseOver, slotList } from './state.js';
import { toStatus } from './status.js';
import type { KeptBranch, PoolState, PoolStatus } from './types.js';
import { listRefs, listWorktrees } from './worktree.js';

/** Slots, leases, queue and capacity (CLI.md shape). Changes nothing. */
export async function getStatus(ctx: PoolContext): Promise<PoolStatus> {
  const st = await ctx.store.read();
  const f = liveFacts(ctx);
  const status = toStatus(st, ctx.config, await capacity(ctx), (lease) => leaseOver(lease, f));
  // The merge queue's worktree is part of the pool too (`integrate run` works there).
  const git = new Map((await listWorktrees(ctx.repo.mainRoot)).map((w) => [w.path, w]));
  status.integration = integrationWorktrees(ctx.config, ctx.repo)
    .filter((p) => git.has(p))
    .map((p) => ({
      path: p,
      branch: git.get(p)!.branch?.replace(/^refs\/heads\//, '') ?? null,
      head: git.get(p)!.head,
    }));
  return status;
}

/** The registry snapshot: the status shape plus the raw registry and where it lives. */
export async function snapshot(
  ctx: PoolContext,
): Promise<PoolStatus & { takenAt: string; version: number; stateDir: string; state: PoolState }> {
  const status = await getStatus(ctx);
  const v = await ctx.store.readVersioned();
  return {
    ...status,
    takenAt: new Date().toISOString(),
    version: v.version,
    stateDir: ctx.repo.stateDir,
    state: v.data,
  };
}

/** Branches released leases kept for integration (they have commits not in the base), oldest first. */
export async function keptBranches(ctx: PoolContext): Promise<(KeptBranch & { commit: string })[]> {
  const st = await ctx.store.read();
  const refs = await listRefs(ctx.repo.mainRoot, `refs/heads/${ctx.config.pool.branchPrefix}/`);
  const live = new Map(refs.map((r) => [r.ref.slice('refs/heads/'.length), r.commit]));
  const leased = new Set(
    slotList(st)
      .map((s) => s.branch)
      .filter(Boolean),
  );
  const seen = new Set<string>();
  const out: (KeptBranch & { commit: string })[] = [];
  for (const k of st.kept) {
    const commit = live.get(k.branch);
    if (!commit || leased.has(k.branch) || seen.has(k.branch)) continue;
    seen.add(k.branch);
    out.push({ ...k, commit });
  }
  return out;
}
