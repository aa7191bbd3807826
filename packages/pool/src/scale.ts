/**
 * Pool size: init (at least N slots, self-healing), scale out/in, refresh, retirement of idle
 * slots, and the housekeeping pass (`cleanup`) mutating commands run.
 */
import {
  ExitCode,
  WtpoolError,
  configError,
  gitRun,
  poolFullError,
  usageError,
} from '@wtpool/core';
import { event, names, pathOf, pathOfId, tx, type PoolContext } from './context.js';
import { withGitLock } from './git.js';
import { procRef } from './proc.js';
import { markBroken, provision } from './provision.js';
import { rescueUnsaved } from './rescue/index.js';
import { eachProvider } from './slot-services.js';
import { counts, reserveGrowth, retireIdle, slotList } from './state.js';
import { ensureExcludes, removeWorktree, worktreeExists } from './worktree.js';

/** Housekeeping pass: reclaim expired leases, recover slots of dead workers, drop dead tickets, retire idle slots. */
export async function cleanup(ctx: PoolContext): Promise<{
  reclaimed: string[];
  recovered: string[];
  retired: string[];
  dropped: number;
}> {
  const { plan } = await tx(ctx, () => null, { shrink: true });
  await ctx.runPlan(plan);
  return {
    reclaimed: plan.reclaim.map((r) => r.slot.id),
    recovered: plan.provision.map((s) => s.id),
    retired: plan.retire.map((s) => s.id),
    dropped: plan.dropped.length,
  };
}

/**
 * Makes the pool hold at least `size` slots, all ready: creates missing ones, recreates
 * registered slots whose worktree was deleted or pruned. Idempotent.
 */
/**
 * A pool.base that names no branch would break every slot with git's "invalid reference"
 * (a repository whose default branch is not main, a config written by hand): say so first.
 */
async function baseExists(ctx: PoolContext): Promise<void> {
  const base = ctx.config.pool.base;
  const cwd = ctx.repo.mainRoot;
  const r = await gitRun(['rev-parse', '-q', '--verify', `refs/heads/${base}^{commit}`], { cwd });
  if (r.code === 0) return;
  const head = await gitRun(['symbolic-ref', '-q', '--short', 'HEAD'], { cwd });
  const current = head.code === 0 ? head.stdout.trim() : '';
  throw configError(`pool.base is ${base}, but this repository has no branch ${base}`, {
    hint: current
      ? `set pool.base to ${current} in pool.config.yaml (the branch the main checkout is on), or create ${base}`
      : `set pool.base in pool.config.yaml to the branch leases start from`,
  });
}

export async function initialize(ctx: PoolContext, size: number): Promise<void> {
  if (!Number.isInteger(size) || size < 0) throw usageError(`invalid size ${size}`);
  if (size > ctx.config.scale.max) {
    throw usageError(`--size ${size} is above scale.max (${ctx.config.scale.max})`, {
      hint: 'raise scale.max in pool.config.yaml, or ask for fewer slots',
    });
  }
  await baseExists(ctx);
  await ensureExcludes(ctx.repo.commonDir);
  const me = procRef();
  // Which registered worktrees exist is decided before the transaction (fn stays pure).
  const st = await ctx.store.read();
  const missing = new Set(
    slotList(st)
      .filter((s) => s.path !== pathOfId(ctx)(s.id) || !worktreeExists(s.path))
      .map((s) => s.id),
  );
  const { plan } = await tx(ctx, (draft, plan, _now, f) => {
    for (const s of slotList(draft)) {
      // Self-healing: broken slots (whatever their backoff) and idle slots whose worktree is
      // gone or moved are provisioned again.
      if (s.state === 'broken' || (s.state === 'ready' && missing.has(s.id))) {
        s.state = 'provisioning';
        s.owner = me;
        plan.provision.push(s);
      }
    }
    const want = size - counts(draft).size;
    const one = { ...ctx.config, scale: { ...ctx.config.scale, step: 1 } };
    for (let i = 0; i < want; i++) {
      const n = plan.provision.length;
      reserveGrowth(draft, one, pathOf(ctx), f, plan, true);
      if (plan.provision.length === n) break;
    }
  });
  await ctx.runPlan(plan);
  await failIfNoneReady(
    ctx,
    plan.provision.map((s) => s.id),
    'pool init',
  );
}

/**
 * Honest exits (issue 13): a command that provisioned slots and got none of them ready fails
 * with one line naming the cause (the first broken slot's error, which names its log), instead
 * of printing a status full of broken slots and exiting 0.
 */
async function failIfNoneReady(ctx: PoolContext, ids: string[], what: string): Promise<void> {
  if (!ids.length) return;
  const st = await ctx.store.read();
  const mine = ids.map((id) => st.slots[id]).filter((s) => s !== undefined);
  if (mine.some((s) => s.state === 'ready' || s.state === 'leased')) return;
  const broken = mine.filter((s) => s.state === 'broken');
  if (!broken.length) return;
  const first = broken[0]!;
  const list = broken.map((s) => s.id).join(', ');
  // Broken by configuration alone (exit 3, issue 11's errorExit): say so with the config exit code.
  // Likewise a service that is down (exit 6): the fix is to start it, not to debug the slots.
  const exit = broken.every((s) => s.errorExit === ExitCode.CONFIG)
    ? ExitCode.CONFIG
    : broken.every((s) => s.errorCode === 'ERR_SERVICE_UNAVAILABLE')
      ? ExitCode.SERVICE_UNAVAILABLE
      : ExitCode.FAILURE;
  throw new WtpoolError(
    'ERR_POOL',
    exit,
    `${what}: no slot is ready; ${broken.length} broken (${list}): ${first.error ?? 'unknown error'}`,
    {
      hint: `fix the cause above, then run \`pool doctor --fix\` (or \`pool init\` again); \`pool status\` lists the broken slots`,
      details: { broken: broken.map((s) => ({ slot: s.id, error: s.error ?? null })) },
    },
  );
}

/** Grows by one `scale.step` now (up to max). */
export async function scaleOut(ctx: PoolContext): Promise<{ added: string[]; size: number }> {
  const { plan } = await tx(ctx, (draft, plan, _now, f) =>
    reserveGrowth(draft, ctx.config, pathOf(ctx), f, plan, true),
  );
  if (!plan.grown.length) {
    // Not a usage error: the command was right, the pool is full at its configured ceiling (D93).
    throw poolFullError(`the pool is already at scale.max (${ctx.config.scale.max})`, {
      hint: 'raise scale.max in pool.config.yaml',
    });
  }
  await ctx.runPlan(plan);
  await failIfNoneReady(ctx, plan.grown, 'pool scale out');
  return { added: plan.grown, size: counts(await ctx.store.read()).size };
}

/** Retires up to one `scale.step` of ready slots above min now. */
export async function scaleIn(
  ctx: PoolContext,
): Promise<{ removed: string[]; failed: string[]; size: number }> {
  const { plan } = await tx(ctx, (draft, plan, _now, f) =>
    retireIdle(draft, ctx.config, 0, f, plan, ctx.config.scale.step),
  );
  await ctx.runPlan(plan);
  // Only what is gone: a slot whose work could not be saved stays, broken (never reported removed).
  const after = await ctx.store.read();
  const ids = plan.retire.map((s) => s.id);
  return {
    removed: ids.filter((id) => !after.slots[id]),
    failed: ids.filter((id) => after.slots[id]),
    size: counts(after).size,
  };
}

/** Moves every ready slot to the base's current commit (clean, caches kept), re-provisioning it. */
export async function refresh(ctx: PoolContext): Promise<{ refreshed: string[] }> {
  const me = procRef();
  const { result: ids } = await tx(ctx, (draft) => {
    const ids: string[] = [];
    for (const s of slotList(draft)) {
      if (s.state !== 'ready') continue;
      s.state = 'provisioning';
      s.owner = me;
      ids.push(s.id);
    }
    return ids;
  });
  await provision(ctx, ids);
  return { refreshed: ids };
}

/** Removes a slot this process reserved as retiring (saving any work first). */
export async function retire(ctx: PoolContext, id: string): Promise<void> {
  const n = names(ctx, id);
  try {
    if (worktreeExists(n.path)) {
      await rescueUnsaved(ctx, n.path, n.rescueRefPrefix, { slot: id, reason: 'retire' });
    }
    await eachProvider(ctx, id, 'destroy');
    await withGitLock(ctx.repo.stateDir, 'worktrees', () =>
      removeWorktree(ctx.repo.mainRoot, n.path),
    );
    await ctx.store.transact((draft) => {
      const s = draft.slots[id];
      if (s?.state === 'retiring' && s.owner?.pid === process.pid) delete draft.slots[id];
      for (const [k, v] of Object.entries(draft.identities))
        if (v === id) delete draft.identities[k];
    });
    await event(ctx, 'shrink', { slot: id });
  } catch (e) {
    await markBroken(ctx, id, e);
    throw e;
  }
}
