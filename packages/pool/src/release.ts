/**
 * The end of a lease: release (by its holder), heartbeat (renewal), and reclaim (an expired or
 * abandoned lease taken back). All three reset through resetSlot, which saves everything that
 * would be lost first: uncommitted work to a rescue ref, a branch with commits kept.
 */
import { checkName, slotId, slotNumber } from '@wtpool/config';
import { conflictError, serviceUnavailableError } from '@wtpool/core';
import { errMessage, event, names, tx, type PoolContext } from './context.js';
import { withGitLock } from './git.js';
import { procRef } from './proc.js';
import { provision, publish, markBroken } from './provision.js';
import { eachProvider, refreshProviders } from './slot-services.js';
import type { Reclaim } from './state.js';
import type { KeptBranch, Lease, ReleaseOptions, ReleaseResult, SlotRecord } from './types.js';
import {
  exactPattern,
  lostFiles,
  rescueLimits,
  saveWork,
  scanWorktree,
  type RemovalScan,
  type RescueOutcome,
} from './rescue/index.js';
import {
  commitsAhead,
  deleteBranch,
  deleteBranchAt,
  detachAt,
  detachAndDeleteBranch,
  readBranchCommit,
  cleanToBase,
  removePoolFiles,
  worktreeExists,
} from './worktree.js';
import { readEnded, recordEnded, withLeaseLock } from './lease-serial.js';
import { holderCheck } from './holder.js';
export { heartbeat } from './holder.js';
import { HOST } from './proc.js';
import { readLeaseCommand, runnerAlive, stopLeaseCommand } from './run-fence.js';

/**
 * Releases a lease: refuses a dirty worktree (exit 5) unless `force`, which first saves the
 * work to a rescue ref. Then back to the base; a branch with commits is kept for integration.
 */
export async function release(ctx: PoolContext, o: ReleaseOptions): Promise<ReleaseResult> {
  const id = slotId(slotNumber(o.slot));
  const agent = checkName(o.agent, 'agent');
  // One at a time per lease: of parallel releases one wins, the others say "already released".
  return withLeaseLock(ctx.repo.stateDir, id, `release ${id}`, async () => {
    const done = await alreadyReleased(ctx, id, agent, o.token);
    if (done) return done;
    const r = await releaseHeld(ctx, o);
    await recordEnded(ctx.repo.stateDir, id, {
      token: r.token,
      agent: r.agent,
      endedBy: 'release',
      result: r,
    });
    return r;
  });
}

/**
 * The answer to a release whose lease is already over by a release: the slot has no lease now,
 * and its last lease ended by a release, of this token (without one: of this agent; a lease
 * taken back by a reclaim is not "released"). Null otherwise
 * (then the holder check says what is wrong: a stale token, another holder, nothing leased).
 */
async function alreadyReleased(
  ctx: PoolContext,
  id: string,
  agent: string,
  token: number | null | undefined,
): Promise<ReleaseResult | null> {
  const slot = (await ctx.store.read()).slots[id];
  if (!slot || slot.lease || slot.state === 'leased' || slot.state === 'releasing') return null;
  const last = await readEnded(ctx.repo.stateDir, id);
  if (!last?.result || last.endedBy !== 'release' || last.agent !== agent) return null;
  if (token !== undefined && token !== null && last.token !== token) return null;
  return { ...last.result, alreadyReleased: true, releasedAt: last.at };
}

async function releaseHeld(ctx: PoolContext, o: ReleaseOptions): Promise<ReleaseResult> {
  const { id, slot, lease } = await holderCheck(ctx, o.slot, o.agent, o.token);
  const stateDir = ctx.repo.stateDir;
  // A `pool run` command works under this lease: it releases the slot when it ends. Only
  // --force stops it (below) before the worktree is looked at.
  const run = await readLeaseCommand(stateDir, id);
  if (
    run &&
    !o.force &&
    run.token === lease.token &&
    run.host === HOST &&
    run.runner !== process.pid &&
    runnerAlive(run)
  ) {
    throw conflictError(
      `${id} runs a \`pool run\` command under this lease (pid ${run.runner}); nothing was released`,
      {
        hint: `it releases the slot when its command ends; \`pool release ${id} ${lease.agent} --force\` stops the command, saves its work to a rescue ref and releases`,
      },
    );
  }
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
  // The lease's command (and every process it started, in or out of its group) is stopped
  // before the worktree is looked at: nothing of it writes into the slot after the rescue.
  // (Before the plan runs: none of this process's own children is in the slot then.)
  try {
    await stopLeaseCommand(stateDir, id, lease.token);
  } catch (e) {
    await unreserve(ctx, id, lease);
    await ctx.runPlan(plan);
    throw e;
  }
  const background = ctx.runPlan(plan);
  // One git process decides; the rescue below reuses it (nothing is scanned twice).
  const st = worktreeExists(slot.path)
    ? await scanWorktree(ctx, id, slot.path).catch(async (e) => {
        await unreserve(ctx, id, lease);
        throw e;
      })
    : null;
  const refuse = async (e: unknown) => {
    await unreserve(ctx, id, lease);
    await background;
    return e;
  };
  const forceHint = `commit them in ${slot.path}, or run \`pool release ${id} ${lease.agent} --force\` to save them to refs/wtpool/rescue/${id}/… and release`;
  if (st?.dirty && !o.force) {
    throw await refuse(
      conflictError(`${id} has uncommitted changes or untracked files; nothing was released`, {
        hint: forceHint,
      }),
    );
  }
  if (st?.needsClean && !o.force) {
    // Ignored files the clean would delete, and nested repositories: refused like dirty files.
    const lost = lostFiles(st);
    if (lost.length) {
      throw await refuse(
        conflictError(
          `${id} has ignored files or nested repositories a release would delete: ${listSome(lost)}; nothing was released`,
          { hint: `${forceHint} (or add build outputs to pool.disposable)` },
        ),
      );
    }
  }
  let saved: RescueOutcome | null = null;
  if (st && o.force && (st.dirty || st.needsClean)) {
    // Saved (or refused: a nested repository that cannot be saved) before anything changes.
    saved = await saveWork(
      slot.path,
      names(ctx, id).rescueRefPrefix,
      rescueMessage(id, 'release', lease),
      await rescueLimits(ctx, id, slot.path, o.discardNested === true),
      { scan: st },
    ).catch(async (e) => {
      throw await refuse(e);
    });
  }
  // A git step that fails leaves the lease held (and its work saved): the release can be retried.
  const resetStart = monotonicMs();
  const r = await resetSlot(ctx, id, lease, 'release', st, saved).catch(async (e) => {
    throw await refuse(e);
  });
  await event(ctx, 'release', {
    slot: id,
    agent: lease.agent,
    task: lease.task,
    token: lease.token,
    branch: lease.branch,
    kept: r.kept,
    rescueRef: r.rescueRef,
    resetMs: Math.round(monotonicMs() - resetStart), // the monitor's reset-duration metric
    ...(r.pendingReset ? { pendingReset: r.pendingReset } : {}),
  });
  await publishAfterReset(ctx, id, lease, r);
  await background;
  return {
    slot: id,
    agent: lease.agent,
    token: lease.token,
    branch: lease.branch,
    kept: r.kept,
    rescueRef: r.rescueRef,
    nested: r.saved?.nested ?? [],
    unsaved: r.saved?.unsaved ?? [],
    discarded: r.saved?.discarded ?? [],
    pendingReset: r.pendingReset,
  };
}

/** The first paths of a list, for a one-line message. */
function listSome(paths: string[], n = 8): string {
  return paths.length > n
    ? `${paths.slice(0, n).join(', ')} and ${paths.length - n} more`
    : paths.join(', ');
}

/** A monotonic clock in ms (process.hrtime: `performance` would load perf_hooks on every release). */
const monotonicMs = () => Number(process.hrtime.bigint()) / 1e6;

const rescueMessage = (id: string, reason: string, lease: Lease) =>
  `wtpool rescue of ${id} (${reason}): agent ${lease.agent}, task ${lease.task}`;

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

/**
 * Brings a slot whose lease ended back to the base. Anything that would be lost is saved first
 * (saveWork: uncommitted work, ignored files outside the caches and build outputs, nested
 * repositories, commits off the lease branch); a branch with commits not in the base is kept,
 * an empty one deleted. A service that cannot be reset does not undo the git side: the reset
 * is returned as `pendingReset` and the caller queues it (the slot goes broken, and its
 * services are reset before it is provisioned again).
 */
async function resetSlot(
  ctx: PoolContext,
  id: string,
  lease: Lease,
  reason: string,
  known: RemovalScan | null = null,
  presaved: RescueOutcome | null = null,
): Promise<Reset> {
  const n = names(ctx, id);
  const dir = n.path;
  const { base } = ctx.config.pool;
  let saved = presaved;
  let ahead: number;
  let done: 'both' | 'detached' | 'none' = 'none';
  const branchRef = `refs/heads/${lease.branch}`;
  const baseCommit = await readBranchCommit(ctx.repo.commonDir, base);
  // The lease's `pool run` command is stopped before its worktree is reset (a release did it
  // already; a reclaim does it here).
  await stopLeaseCommand(ctx.repo.stateDir, id, lease.token);
  if (worktreeExists(dir)) {
    const st = known ?? (await scanWorktree(ctx, id, dir));
    const onBranch = st.branch === lease.branch;
    const headAhead = async () =>
      st.head === null || st.head === baseCommit ? 0 : commitsAhead(dir, base, 'HEAD');
    // Commits made off the lease branch (detached HEAD, another branch) are saved too.
    const offBranch = !onBranch && (await headAhead()) > 0;
    if (!saved && (st.dirty || st.needsClean || offBranch)) {
      saved = await saveWork(
        dir,
        n.rescueRefPrefix,
        rescueMessage(id, reason, lease),
        await rescueLimits(ctx, id, dir),
        { always: offBranch, scan: st },
      );
    }
    if (saved && (saved.ref || saved.unsaved.length || saved.discarded.length)) {
      await event(ctx, 'rescue', {
        slot: id,
        agent: lease.agent,
        task: lease.task,
        token: lease.token,
        ref: saved.ref,
        reason,
        ignoredSaved: saved.ignoredSaved.length,
        nested: saved.nested,
        unsaved: saved.unsaved,
        discarded: saved.discarded,
      });
    }
    ahead = onBranch ? await headAhead() : await commitsAhead(dir, base, branchRef);
    // The common case, a clean lease still on the base commit, needs no checkout (D66), and
    // one git process detaches HEAD and deletes the empty branch (D384).
    const untouched =
      onBranch && !st.dirty && !st.needsClean && baseCommit !== null && st.head === baseCommit;
    if (untouched && ahead === 0) {
      done = await withGitLock(ctx.repo.stateDir, 'refs', () =>
        detachAndDeleteBranch(dir, ctx.repo.commonDir, lease.branch, baseCommit),
      );
    }
    if (!(untouched && (done !== 'none' || (await detachAt(dir, baseCommit))))) {
      // The slot's configuration files stay (the scan met them; a save lists them as well).
      const excludes = saved?.excludes ?? st.configuration.map(exactPattern);
      await cleanToBase(dir, base, ctx.config.pool.keep, excludes, st.needsClean);
    }
    await removePoolFiles(dir);
  } else {
    ahead = await commitsAhead(ctx.repo.mainRoot, base, branchRef);
  }
  if (ahead === 0 && done !== 'both') {
    await withGitLock(ctx.repo.stateDir, 'refs', async () => {
      const gone =
        baseCommit !== null && (await deleteBranchAt(ctx.repo.commonDir, lease.branch, baseCommit));
      if (!gone) await deleteBranch(ctx.repo.mainRoot, lease.branch);
    });
  }
  let pendingReset: string | null = null;
  let resetError: unknown = null;
  try {
    await eachProvider(ctx, id, 'release');
  } catch (e) {
    pendingReset = errMessage(e);
    resetError = e;
  } finally {
    // The lease is over even if a service could not be reset: no lease record may outlive it.
    await ctx.store.removeLease(id, lease.token);
  }
  // Back on the base: dependencies, included files and setup outputs brought up to date (setup
  // re-runs only when its inputs changed). A failure breaks the slot, not the release.
  let setupError: unknown = null;
  if (!pendingReset && worktreeExists(dir)) {
    await refreshProviders(ctx, id, 'release').catch((e: unknown) => {
      setupError = e;
    });
  }
  return {
    rescueRef: saved?.ref ?? null,
    kept: ahead > 0,
    saved,
    pendingReset,
    resetError,
    setupError,
  };
}

interface Reset {
  rescueRef: string | null;
  kept: boolean;
  saved: RescueOutcome | null;
  /** Why the services could not be reset (queued for the next acquire or doctor), or null. */
  pendingReset: string | null;
  resetError: unknown;
  /** The slot's refresh (dependencies, pool.setup) failed: it goes broken with this error. */
  setupError: unknown;
}

async function publishAfterReset(
  ctx: PoolContext,
  id: string,
  lease: Lease,
  r: Reset,
): Promise<void> {
  const keptRec: KeptBranch[] = r.kept
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
  if (r.pendingReset) {
    // The kept record is written now; the slot is not handed out before its services are
    // reset: broken (with failures > 0), it is reset by the next acquire or `pool doctor --fix`.
    await publish(ctx, [], keptRec);
    await markBroken(
      ctx,
      id,
      serviceUnavailableError(`service reset pending: ${r.pendingReset}`, { cause: r.resetError }),
    );
    return;
  }
  if (r.setupError) {
    await publish(ctx, [], keptRec);
    await markBroken(ctx, id, r.setupError);
    return;
  }
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
    const resetStart = monotonicMs();
    const res = await resetSlot(ctx, id, r.lease, r.reason);
    await event(ctx, 'reclaim', {
      slot: id,
      agent: r.lease.agent,
      task: r.lease.task,
      token: r.lease.token,
      reason: r.reason,
      rescueRef: res.rescueRef,
      kept: res.kept,
      resetMs: Math.round(monotonicMs() - resetStart),
      ...(res.pendingReset ? { pendingReset: res.pendingReset } : {}),
    });
    // Before the slot is ready again: a release of this lease is never told "already released".
    await recordEnded(ctx.repo.stateDir, id, {
      token: r.lease.token,
      agent: r.lease.agent,
      endedBy: 'reclaim',
    }).catch(() => {});
    await publishAfterReset(ctx, id, r.lease, res);
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
