/**
 * Provisioning: creating (or re-creating) a slot's worktree and services, marking a slot
 * broken when that fails, and publishing slots ready. Slots are reserved (state
 * `provisioning`, owner = this process) in a transaction before this slow work runs.
 */
import { promises as fs } from 'node:fs';
import { failure, isWtpoolError } from '@wtpool/core';
import { errMessage, event, names, tx, type PoolContext } from './context.js';
import { withGitLock } from './git.js';
import { eachProvider } from './slot-services.js';
import { markBroken as markBrokenState, markReady, planIsEmpty } from './state.js';
import type { KeptBranch } from './types.js';
import { rescueBefore, rescueUnsaved } from './rescue/index.js';
import {
  addWorktree,
  cleanToBase,
  ensureExcludes,
  removeWorktree,
  worktreeExists,
} from './worktree.js';

/** How many kept-branch records the registry remembers. */
const KEPT_MAX = 500;

/** Creates (or re-creates) the worktrees of slots reserved by this process, then publishes them ready. */
export async function provision(ctx: PoolContext, ids: string[]): Promise<void> {
  await ensureExcludes(ctx.repo.commonDir);
  const registered = (await ctx.store.read()).slots;
  const ready: string[] = [];
  const services = async (id: string) => {
    try {
      // A slot that failed before (broken) may hold a half-reset database or an unflushed
      // Redis DB: reset its services before provisioning them again.
      if (registered[id]?.failures) await eachProvider(ctx, id, 'release');
      await eachProvider(ctx, id, 'provision');
      ready.push(id);
    } catch (e) {
      await markBroken(ctx, id, e);
    }
  };
  // A slot's services start as soon as its worktree exists, while git creates the next one.
  const started: Promise<void>[] = [];
  try {
    await withGitLock(ctx.repo.stateDir, 'worktrees', async () => {
      for (const id of ids) {
        ctx.reporter.progress(`creating worktree ${id}…`);
        try {
          const old = registered[id]?.path;
          if (old && old !== names(ctx, id).path) await removeMoved(ctx, id, old);
          await createWorktree(ctx, id);
          started.push(services(id));
        } catch (e) {
          await markBroken(ctx, id, e);
        }
      }
    });
  } finally {
    await Promise.all(started); // never throws: services() reports its own failures
  }
  for (const id of ready) await event(ctx, 'provision', { slot: id, path: names(ctx, id).path });
  await publish(ctx, ready);
}

/** pool.root changed: the slot's old worktree goes (its work saved first). Under the worktrees lock. */
async function removeMoved(ctx: PoolContext, id: string, old: string): Promise<void> {
  if (worktreeExists(old)) {
    await rescueUnsaved(ctx, old, names(ctx, id).rescueRefPrefix, { slot: id, reason: 'moved' });
    await removeWorktree(ctx.repo.mainRoot, old);
  }
}

async function createWorktree(ctx: PoolContext, id: string): Promise<void> {
  const n = names(ctx, id);
  const dir = n.path;
  if (worktreeExists(dir)) {
    // A worktree is already there (registry lost, refresh): keep nothing of it unsaved (but
    // its own configuration nobody changed: included files, setup outputs; rescueLimits).
    // What cannot be saved refuses: the slot goes broken with its files where they are.
    const saved = await rescueBefore(ctx, dir, n.rescueRefPrefix, {
      slot: id,
      reason: 'provision',
    });
    await cleanToBase(dir, ctx.config.pool.base, ctx.config.pool.keep, saved.excludes);
    return;
  }
  const entries = await fs.readdir(dir).catch(() => [] as string[]);
  if (entries.length) {
    throw failure('ERR_SLOT_PATH', `${dir} exists and is not a worktree of this repository`, {
      hint: `move it away, then run \`pool doctor --fix\``,
    });
  }
  await addWorktree(ctx.repo.mainRoot, dir, ctx.config.pool.base);
}

/** Slow work on a slot failed: the slot goes broken (retried later by an acquire or doctor). */
export async function markBroken(ctx: PoolContext, id: string, e: unknown): Promise<void> {
  const message = errMessage(e);
  const code = isWtpoolError(e) ? e.code : null;
  const exit = isWtpoolError(e) ? e.exitCode : null;
  const now = ctx.clock();
  const slot = await ctx.store.transact((draft) => {
    const s = draft.slots[id];
    if (s) markBrokenState(s, message, code, now, exit);
    return s;
  });
  await event(ctx, 'error', { slot: id, message, code, failures: slot?.failures ?? null });
  ctx.reporter.warn(
    `${id} is broken: ${message} (an acquire retries it${slot?.retryAt ? ` from ${slot.retryAt}` : ''}; \`pool doctor --fix\` now)`,
  );
}

/** Publishes slots this process worked on as ready (and hands them to queued waiters). */
export async function publish(
  ctx: PoolContext,
  ids: string[],
  kept: KeptBranch[] = [],
): Promise<void> {
  if (!ids.length && !kept.length) return;
  const { plan } = await tx(ctx, (draft, _plan, now) => {
    for (const id of ids) {
      const s = draft.slots[id];
      // Only if nobody took the work over from us (they would own it now).
      if (
        s &&
        s.owner?.pid === process.pid &&
        (s.state === 'provisioning' || s.state === 'releasing')
      ) {
        markReady(s, now);
        s.path = names(ctx, id).path;
      }
    }
    draft.kept.push(...kept);
    if (draft.kept.length > KEPT_MAX) draft.kept.splice(0, draft.kept.length - KEPT_MAX);
  });
  if (!planIsEmpty(plan)) await ctx.runPlan(plan);
}
