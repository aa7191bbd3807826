/**
 * The end of a lease: release (by its holder), heartbeat (renewal), and reclaim (an expired or
 * abandoned lease taken back). All three reset through resetSlot, which saves everything that
 * would be lost first: uncommitted work to a rescue ref, a branch with commits kept.
 */
import { checkName, slotId, slotNumber } from '@wtpool/config';
import { conflictError, notFoundError } from '@wtpool/core';
import { errMessage, event, names, tx, type PoolContext } from './context.js';
import { withGitLock } from './git.js';
import { procRef } from './proc.js';
import { provision, publish, markBroken } from './provision.js';
import { eachProvider } from './slot-services.js';
import type { Reclaim } from './state.js';
import type { KeptBranch, Lease, ReleaseOptions, ReleaseResult, SlotRecord } from './types.js';
import {
  commitsAhead,
  deleteBranch,
  deleteBranchAt,
  detachAt,
  readBranchCommit,
  removePoolFiles,
  resetToBase,
  saveRescue,
  worktreeExists,
  worktreeStatus,
  type WorktreeStatus,
} from './worktree.js';

/** Checks that `agent` holds `slot` (registry and lease record agree on the token). */
async function holderCheck(
  ctx: PoolContext,
  slotArg: string,
  agentArg: string,
): Promise<{ id: string; slot: SlotRecord; lease: Lease }> {
  const id = slotId(slotNumber(slotArg));
  const agent = checkName(agentArg, 'agent');
  const slot = (await ctx.store.read()).slots[id];
  if (!slot)
    throw notFoundError(`there is no slot ${id} in the pool`, { hint: 'see `pool status`' });
  const lease = slot.lease;
  if (slot.state !== 'leased' || !lease) {
    throw notFoundError(`${id} is not leased (state: ${slot.state})`, {
      hint: 'see `pool status`',
    });
  }
  if (lease.agent !== agent) {
    throw conflictError(`${id} is held by ${lease.agent}, not ${agent}`, {
      hint: 'only the holder can release or renew it; an expired lease is reclaimed automatically',
    });
  }
  const lf = await ctx.store.readLease(id);
  if (!lf || lf.token !== lease.token || lf.agent !== agent) {
    throw conflictError(
      `the lease file of ${id} does not match the registry (token ${lf?.token ?? 'none'} vs ${lease.token})`,
      {
        hint: 'the acquire may still be completing; otherwise run `pool doctor --fix`',
      },
    );
  }
  return { id, slot, lease };
}

/**
 * Releases a lease: refuses a dirty worktree (exit 5) unless `force`, which first saves the
 * work to a rescue ref. Then back to the base; a branch with commits is kept for integration.
 */
export async function release(ctx: PoolContext, o: ReleaseOptions): Promise<ReleaseResult> {
  const { id, slot, lease } = await holderCheck(ctx, o.slot, o.agent);
  const me = procRef();
  const { plan } = await tx(
    ctx,
    (draft) => {
      const s = draft.slots[id];
      if (!s || s.state !== 'leased' || s.lease?.token !== lease.token) {
        throw conflictError(`the lease of ${id} changed while releasing (reclaimed?)`, {
          hint: 'see `pool status`',
        });
      }
      // Reserved: no reclaim or second release can reset this worktree while we do.
      s.state = 'releasing';
      s.owner = me;
    },
    { shrink: true },
  );
  const background = ctx.runPlan(plan);
  const keep = ctx.config.pool.keep;
  const st = worktreeExists(slot.path)
    ? await worktreeStatus(slot.path, keep).catch(async (e) => {
        await unreserve(ctx, id, lease);
        throw e;
      })
    : null;
  if (st?.dirty && !o.force) {
    await unreserve(ctx, id, lease);
    await background;
    throw conflictError(`${id} has uncommitted changes or untracked files; nothing was released`, {
      hint: `commit them in ${slot.path}, or run \`pool release ${id} ${lease.agent} --force\` to save them to refs/wtpool/rescue/${id}/… and release`,
    });
  }
  const r = await resetSlot(ctx, id, lease, 'release', st);
  await event(ctx, 'release', {
    slot: id,
    agent: lease.agent,
    task: lease.task,
    token: lease.token,
    branch: lease.branch,
    kept: r.kept,
    rescueRef: r.rescueRef,
  });
  await publishAfterReset(ctx, id, lease, r.kept);
  await background;
  return {
    slot: id,
    agent: lease.agent,
    token: lease.token,
    branch: lease.branch,
    kept: r.kept,
    rescueRef: r.rescueRef,
  };
}

/** Gives a slot reserved for release back to its lease (a refused release changes nothing). */
async function unreserve(ctx: PoolContext, id: string, lease: Lease): Promise<void> {
  await ctx.store.transact((draft) => {
    const s = draft.slots[id];
    if (
      s?.state === 'releasing' &&
      s.owner?.pid === process.pid &&
      s.lease?.token === lease.token
    ) {
      s.state = 'leased';
      s.owner = null;
    }
  });
}

/** Renews a lease's TTL (heartbeat). */
export async function heartbeat(
  ctx: PoolContext,
  o: { slot: string; agent: string },
): Promise<{ slot: string; agent: string; token: number; heartbeatAt: string; expiresAt: string }> {
  const { id, lease } = await holderCheck(ctx, o.slot, o.agent);
  const { result } = await tx(ctx, (draft, _plan, now) => {
    const s = draft.slots[id];
    if (!s?.lease || s.state !== 'leased' || s.lease.token !== lease.token) {
      throw conflictError(`the lease of ${id} is gone (expired and reclaimed?)`, {
        hint: 'acquire a new slot',
      });
    }
    s.lease.heartbeatAt = new Date(now).toISOString();
    s.lease.expiresAt = new Date(now + s.lease.ttlMs).toISOString();
    return s.lease;
  });
  return {
    slot: id,
    agent: result.agent,
    token: result.token,
    heartbeatAt: result.heartbeatAt,
    expiresAt: result.expiresAt,
  };
}

/**
 * Brings a slot whose lease ended back to the base. Anything that would be lost is saved first:
 * uncommitted work and commits off the lease branch go to a rescue ref; a branch with commits
 * not in the base is kept, an empty one deleted.
 */
async function resetSlot(
  ctx: PoolContext,
  id: string,
  lease: Lease,
  reason: string,
  known: WorktreeStatus | null = null,
): Promise<{ rescueRef: string | null; kept: boolean }> {
  const n = names(ctx, id);
  const dir = n.path;
  const { base, keep } = ctx.config.pool;
  let rescueRef: string | null = null;
  let ahead: number;
  const branchRef = `refs/heads/${lease.branch}`;
  const baseCommit = await readBranchCommit(ctx.repo.commonDir, base);
  if (worktreeExists(dir)) {
    const st = known ?? (await worktreeStatus(dir, keep));
    const onBranch = st.branch === lease.branch;
    const save = async () => {
      rescueRef = await saveRescue(
        dir,
        n.rescueRefPrefix,
        `wtpool rescue of ${id} (${reason}): agent ${lease.agent}, task ${lease.task}`,
      );
      await event(ctx, 'rescue', {
        slot: id,
        agent: lease.agent,
        task: lease.task,
        token: lease.token,
        ref: rescueRef,
        reason,
      });
    };
    const headAhead = async () =>
      st.head === null || st.head === baseCommit ? 0 : commitsAhead(dir, base, 'HEAD');
    if (st.dirty) await save();
    // Commits made off the lease branch (detached HEAD, another branch) are saved too.
    else if (!onBranch && (await headAhead()) > 0) await save();
    ahead = onBranch ? await headAhead() : await commitsAhead(dir, base, branchRef);
    // The common case, a clean lease still on the base commit, needs no checkout (D66).
    const untouched =
      onBranch && !st.dirty && !st.needsClean && baseCommit !== null && st.head === baseCommit;
    if (!(untouched && (await detachAt(dir, baseCommit)))) {
      await resetToBase(dir, base, keep, st.needsClean);
    }
    await removePoolFiles(dir);
  } else {
    ahead = await commitsAhead(ctx.repo.mainRoot, base, branchRef);
  }
  if (ahead === 0) {
    await withGitLock(ctx.repo.stateDir, 'refs', async () => {
      const gone =
        baseCommit !== null && (await deleteBranchAt(ctx.repo.commonDir, lease.branch, baseCommit));
      if (!gone) await deleteBranch(ctx.repo.mainRoot, lease.branch);
    });
  }
  try {
    await eachProvider(ctx, id, 'release');
  } finally {
    // The lease is over even if a service could not be reset (the slot then goes broken and
    // its services are reset when it is provisioned again): no lease record may outlive it.
    await ctx.store.removeLease(id, lease.token);
  }
  return { rescueRef, kept: ahead > 0 };
}

async function publishAfterReset(
  ctx: PoolContext,
  id: string,
  lease: Lease,
  kept: boolean,
): Promise<void> {
  const keptRec: KeptBranch[] = kept
    ? [
        {
          branch: lease.branch,
          slot: id,
          agent: lease.agent,
          task: lease.task,
          token: lease.token,
          releasedAt: new Date().toISOString(),
        },
      ]
    : [];
  if (worktreeExists(names(ctx, id).path)) return publish(ctx, [id], keptRec);
  // The worktree vanished while leased: recreate it before it becomes ready again.
  await publish(ctx, [], keptRec);
  await ctx.store.transact((draft) => {
    const s = draft.slots[id];
    if (s && s.owner?.pid === process.pid) {
      s.state = 'provisioning';
      s.lease = null;
      s.branch = null;
    }
  });
  await provision(ctx, [id]);
}

/** Takes back an expired/abandoned lease (rescue first), then publishes the slot ready. */
export async function reclaim(ctx: PoolContext, r: Reclaim): Promise<void> {
  const id = r.slot.id;
  try {
    const res = await resetSlot(ctx, id, r.lease, r.reason);
    await event(ctx, 'reclaim', {
      slot: id,
      agent: r.lease.agent,
      task: r.lease.task,
      token: r.lease.token,
      reason: r.reason,
      rescueRef: res.rescueRef,
      kept: res.kept,
    });
    await publishAfterReset(ctx, id, r.lease, res.kept);
  } catch (e) {
    await markBroken(ctx, id, e);
    throw e;
  }
}

/** Reserves a slot whose claim failed for reclaim, if the registry still gives it to `lease`. */
export async function giveBack(
  ctx: PoolContext,
  id: string,
  lease: Lease,
  e: unknown,
): Promise<void> {
  const me = procRef();
  const ours = await ctx.store.transact((draft) => {
    const s = draft.slots[id];
    if (s?.state !== 'leased' || s.lease?.token !== lease.token) return false;
    s.state = 'releasing';
    s.owner = me;
    return true;
  });
  if (!ours) return;
  await reclaim(ctx, {
    slot: { id } as SlotRecord,
    lease,
    reason: `claim failed: ${errMessage(e)}`,
  }).catch(() => {});
}
