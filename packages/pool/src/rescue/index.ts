/**
 * Rescue: the pool's promise that nothing an agent left in a worktree is lost. One API for
 * every path that removes a worktree's files (release, reclaim, refresh, scale in and
 * retirement, doctor, the monitor's cleanup) and for reading the work back:
 *
 * - `scanWorktree` / `lostFiles`: what a reset would destroy (one git process when clean);
 * - `saveWork`: save it (a rescue commit, nested repositories and submodules beside it), or
 *   refuse before anything is written;
 * - `listRescues`, `showRescue`, `restoreRescue`: read it back, byte for byte.
 *
 * The files: scan.ts (what is there), save.ts (saving), manifest.ts (what a rescue commit
 * records beyond its tree), show.ts (listing, showing), restore.ts (restoring).
 */
import path from 'node:path';
import { slotId, slotNumber } from '@wtpool/config';
import { conflictError, notFoundError } from '@wtpool/core';
import { event, names, type PoolContext } from '../context.js';
import { slotConfiguration } from '../slot-services.js';
import { commitsAhead } from '../worktree.js';
import { limitsOf, saveWork, type RescueLimits, type RescueOutcome } from './save.js';
import { scanRemovals, type RemovalScan } from './scan.js';
import { listRescues, showRescue, type RescueShow } from './show.js';
import { restoreRescue, type RestoreResult } from './restore.js';

export { limitsOf, saveWork, refStamp, exactPattern, NESTED_PREFIX } from './save.js';
export type { RescueLimits, RescueOutcome, SaveOptions } from './save.js';
export { scanRemovals, underList } from './scan.js';
export type { RemovalScan, ScanRules } from './scan.js';
export { listRescues, showRescue, resolveRescue, RESCUE_PREFIX } from './show.js';
export type { RescueShow, FileChange } from './show.js';
export { restoreRescue } from './restore.js';
export type { RestoreResult } from './restore.js';
export { readManifest } from './manifest.js';
export type { Manifest, NestedEntry } from './manifest.js';

/**
 * The rescue limits of one slot's worktree (`slot`/`dir` null: a worktree outside the pool's
 * slots). The slot's own configuration (issue 24: included files, setup outputs nobody
 * changed) is a `configuration` predicate: every rescue path of the pool (release, reclaim,
 * refresh, scale in, doctor) neither saves nor refuses for those files, and the clean keeps them.
 */
export async function rescueLimits(
  ctx: PoolContext,
  slot: string | null,
  dir: string | null,
  discardNested = false,
): Promise<RescueLimits> {
  const own = slot && dir ? await slotConfiguration(ctx, slot, dir) : [];
  const configuration = own.length
    ? (rel: string) => own.some((e) => rel === e || rel.startsWith(`${e}/`))
    : undefined;
  return limitsOf(ctx.config.pool, discardNested, configuration);
}

/** What a release needs to know about a slot's worktree (one git process when there is nothing to save). */
export async function scanWorktree(
  ctx: PoolContext,
  slot: string,
  dir: string,
): Promise<RemovalScan> {
  return scanRemovals(dir, await rescueLimits(ctx, slot, dir));
}

/** The paths a reset would delete unsaved, for a refusal's message (ignored files, nested repositories). */
export function lostFiles(scan: RemovalScan): string[] {
  return [
    ...scan.ignored.map((f) => f.path),
    ...scan.nested.map((n) => `${n}/ (nested repository)`),
  ];
}

/**
 * Before a worktree is reset or removed outside a release: uncommitted work, ignored files
 * outside the caches and build outputs, nested repositories, and commits on a HEAD not in the
 * base (a detached HEAD's commits would become unreachable) go to rescue refs (saveWork).
 * What cannot be saved refuses (exit 5, nothing removed): the caller marks the slot broken.
 */
export async function rescueBefore(
  ctx: PoolContext,
  dir: string,
  refPrefix: string,
  details: { slot?: string; path?: string; reason: string },
): Promise<RescueOutcome> {
  const ahead = (await commitsAhead(dir, ctx.config.pool.base, 'HEAD')) > 0;
  const out = await saveWork(
    dir,
    refPrefix,
    `wtpool rescue of ${details.slot ?? dir} (${details.reason})`,
    await rescueLimits(ctx, details.slot ?? null, dir),
    { always: ahead },
  );
  if (out.ref) {
    await event(ctx, 'rescue', {
      ...details,
      ref: out.ref,
      ignoredSaved: out.ignoredSaved.length,
      nested: out.nested,
      unsaved: out.unsaved,
    });
  }
  return out;
}

/** rescueBefore: the rescue ref, or null when nothing needed saving. */
export async function rescueUnsaved(
  ctx: PoolContext,
  dir: string,
  refPrefix: string,
  details: { slot?: string; path?: string; reason: string },
): Promise<string | null> {
  return (await rescueBefore(ctx, dir, refPrefix, details)).ref;
}

/** Saved work refs (`refs/wtpool/rescue/<slot>/<timestamp>`), newest first. */
export function rescueList(ctx: PoolContext) {
  return listRescues(ctx.repo.mainRoot);
}

/** What a rescue holds (commits not in the pool's base, files, nested repositories). */
export function rescueShow(ctx: PoolContext, ref: string): Promise<RescueShow> {
  return showRescue(ctx.repo.mainRoot, ref, ctx.config.pool.base);
}

export interface RestoreTarget {
  /** A directory (created if missing). Inside a slot's worktree, it is that slot. */
  into?: string;
  /** A slot: only into a lease of the caller (`agent` or `token`), never a ready slot. */
  slot?: string;
  agent?: string;
  token?: number | null;
  force?: boolean;
}

/**
 * Restores a rescue into a directory or a slot. A slot (or a directory inside one) must be
 * leased, by the caller: a ready slot would be handed out with someone else's files, and
 * another agent's lease is not ours to write into (exit 5).
 */
export async function rescueRestore(
  ctx: PoolContext,
  ref: string,
  t: RestoreTarget,
): Promise<RestoreResult> {
  let dest: string;
  let slotOf: string | null = null;
  const st = await ctx.store.read();
  if (t.slot !== undefined) {
    slotOf = slotId(slotNumber(t.slot));
    if (!st.slots[slotOf])
      throw notFoundError(`there is no slot ${slotOf} in the pool`, { hint: 'see `pool status`' });
    dest = names(ctx, slotOf).path;
  } else {
    dest = path.resolve(t.into ?? '.');
    for (const s of Object.values(st.slots)) {
      const p = path.resolve(s.path);
      if (dest === p || dest.startsWith(p + path.sep)) slotOf = s.id;
    }
  }
  if (slotOf !== null) {
    const s = st.slots[slotOf]!;
    const lease = s.state === 'leased' ? s.lease : null;
    if (!lease) {
      throw conflictError(
        `${slotOf} is ${s.state}, not leased: a restore there would hand its next agent someone else's files`,
        {
          hint: 'acquire a slot and restore into it (`--slot`), or restore into a directory outside the pool (`--into DIR`)',
        },
      );
    }
    // A token (the caller's own lease) decides; without one, the agent name.
    const mine =
      t.token !== undefined && t.token !== null
        ? t.token === lease.token
        : t.agent !== undefined && t.agent === lease.agent;
    if (!mine) {
      throw conflictError(`${slotOf} is leased by ${lease.agent}; nothing was restored`, {
        hint: `only its holder restores into it: run it from the slot, or pass --agent ${lease.agent} if that is you`,
      });
    }
  }
  return restoreRescue(ctx.repo.mainRoot, ref, dest, { force: t.force === true });
}
