/**
 * What every part of the pool shares: the loaded config, slot naming, the lease store, the
 * reporter, the event log, and the registry transaction (`tx`) that every change goes through.
 * The modules (acquire, wait, release, provision, scale, slot-services, doctor) are functions
 * of a PoolContext; WorktreePool (pool.ts) is the facade over them.
 */
import {
  slotNames,
  type Config,
  type LoadedConfig,
  type RepoPaths,
  type SlotNames,
} from '@wtpool/config';
import { appendEvent } from './events.js';
import type { LeaseStore } from './lease-store.js';
import { HOST, procAlive, procRef } from './proc.js';
import {
  counts,
  dispatch,
  planIsEmpty,
  retireIdle,
  reserveGrowth,
  reviveBroken,
  sweep,
  type Facts,
  type Plan,
} from './state.js';
import type { PoolState } from './types.js';
import { worktreeExists } from './worktree.js';

/** Where the pool reports progress and warnings (the CLI passes its Output). */
export interface Reporter {
  progress(message: string): void;
  warn(message: string): void;
}

export const silent: Reporter = { progress: () => {}, warn: () => {} };

export const errMessage = (e: unknown) => (e instanceof Error ? e.message : String(e));

export interface PoolContext {
  readonly loaded: LoadedConfig;
  readonly config: Config;
  readonly repo: RepoPaths;
  readonly store: LeaseStore;
  reporter: Reporter;
  /** The pool's clock (ms since the epoch): Date.now, or a test's injected clock. */
  clock(): number;
  /** Runs the slow work of a plan outside the lock (plan-runner.ts; injected by the facade). */
  runPlan(plan: Plan): Promise<void>;
  /** Lazily loaded services and providers (slot-services.ts). */
  servicesP?: Promise<unknown>;
}

export const names = (ctx: PoolContext, id: string | number): SlotNames =>
  slotNames(ctx.config, ctx.repo, id);
export const branchFor = (ctx: PoolContext) => (slot: string, slug: string) =>
  names(ctx, slot).branch(slug);
export const pathOf = (ctx: PoolContext) => (n: number) => names(ctx, n).path;
export const pathOfId = (ctx: PoolContext) => (id: string) => names(ctx, id).path;

export function event(
  ctx: PoolContext,
  type: string,
  details: Record<string, unknown> = {},
): Promise<void> {
  return appendEvent(ctx.repo.stateDir, type, details);
}

/**
 * The live facts the state machine decides on (state.ts Facts): the clock, process liveness
 * from /proc, the stored lease records, the worktrees on disk.
 */
export function liveFacts(ctx: PoolContext, now = ctx.clock()): Facts {
  return {
    now,
    alive: procAlive,
    leaseToken: (s) => ctx.store.leaseToken(s),
    worktreeExists,
    me: procRef(),
    host: HOST,
    maxLeases: ctx.store.maxLeases?.(),
  };
}

export interface TxOptions<R> {
  grow?: boolean;
  shrink?: boolean;
  revive?: boolean;
  /** Did `fn` leave a request unmet (demand for revive)? Default: it returned undefined. */
  unmet?: (result: R) => boolean;
}

/**
 * One registry transaction: housekeeping (dead tickets, expired leases, dead workers), then
 * `fn`, then optional growth/shrink, then hand ready slots to the queue. Returns fn's result
 * and the slow work decided, which the caller runs outside the lock (ctx.runPlan). `fn` must
 * be pure (the store may run it again on a newer version).
 */
export async function tx<R>(
  ctx: PoolContext,
  fn: (draft: PoolState, plan: Plan, now: number, facts: Facts) => R,
  o: TxOptions<R> = {},
): Promise<{ result: R; plan: Plan }> {
  const out = await ctx.store.transact((draft) => {
    const f = liveFacts(ctx);
    const now = f.now;
    const plan = sweep(draft, f);
    const result = fn(draft, plan, now, f);
    if (o.revive) {
      // Demand nothing ready will meet (the queue, or this request): retry broken slots first.
      const c = counts(draft);
      const unmet = o.unmet ? o.unmet(result) : result === undefined;
      const want = Math.max(draft.queue.length, unmet ? 1 : 0);
      reviveBroken(draft, plan, f, want - c.ready - c.provisioning);
    }
    if (o.grow) reserveGrowth(draft, ctx.config, pathOf(ctx), f, plan);
    if (o.shrink) retireIdle(draft, ctx.config, ctx.config.scale.idleShrinkAfter, f, plan);
    dispatch(draft, plan, branchFor(ctx), pathOfId(ctx), f);
    return { result, plan };
  });
  await logPlan(ctx, out.plan);
  return out;
}

async function logPlan(ctx: PoolContext, plan: Plan): Promise<void> {
  for (const t of plan.dropped) {
    await event(ctx, 'dequeue', {
      agent: t.agent,
      task: t.task,
      ticket: t.id,
      reason: 'waiter-dead',
      waiterPid: t.waiter.pid,
    });
  }
  if (plan.grown.length) await event(ctx, 'grow', { slots: plan.grown, by: plan.grown.length });
}

/** Would a transaction find housekeeping to do? (Checked lock-free on a copy.) */
export function needsSweep(ctx: PoolContext, st: PoolState, shrink: boolean): boolean {
  const copy = structuredClone(st);
  const f = liveFacts(ctx);
  const plan = sweep(copy, f);
  if (shrink) retireIdle(copy, ctx.config, ctx.config.scale.idleShrinkAfter, f, plan);
  return !planIsEmpty(plan);
}
