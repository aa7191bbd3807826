/**
 * Waiting in the queue: a waiter sleeps until the registry changes (LeaseStore.watch) or a
 * bounded poll, then checks lock-free whether its ticket was granted or whether there is work
 * only a transaction can do (a ready slot, growth, a broken slot due for retry, housekeeping).
 * On a terminal it tells where it stands (reporter.progress: stderr, TTY only).
 */
import { failure, formatDuration, isWtpoolError } from '@wtpool/core';
import { errMessage, needsSweep, type PoolContext } from './context.js';
import { anyRetryDue, counts, findGrant, growthStopped, queuePosition } from './state.js';
import type { Lease, PoolState, WaitOptions } from './types.js';

/** Longest sleep of a waiter between two looks at the registry (the store's watch wakes it sooner). */
const POLL_MS = 500;
/** How often a waiter whose position did not change says it is still waiting. */
const REPORT_EVERY_MS = 10_000;

/**
 * Waits for our ticket's grant; `step(true)` is the final transaction (leaves the queue).
 * `check` sees the registry on every wake and may throw to stop waiting (the caller then
 * leaves the queue).
 */
export async function waitForGrant(
  ctx: PoolContext,
  ticket: () => number | null,
  deadline: number,
  step: (final: boolean) => Promise<Lease | undefined>,
  check: (st: PoolState) => void = () => {},
  o: WaitOptions = {},
): Promise<Lease | undefined> {
  let wake: (() => void) | undefined;
  const stopWatch = ctx.store.watch(() => wake?.());
  // An abort (a signal to `pool run`, a cancelled MCP request) wakes the waiter; its `check` then throws.
  const onAbort = () => wake?.();
  o.signal?.addEventListener('abort', onAbort);
  const stop = () => {
    stopWatch();
    o.signal?.removeEventListener('abort', onAbort);
  };
  const told = { key: '', at: 0, since: ctx.clock() };
  try {
    for (let first = true; ; first = false) {
      const st = await throughOutage(ctx, deadline, () => ctx.store.read(), o.signal);
      const id = ticket();
      const g = id === null ? undefined : findGrant(st, id);
      if (g) return g.lease!;
      if (o.signal?.aborted) {
        // The abort's own reason when it has one (`pool run`'s signal), else a cancellation.
        if (o.signal.reason instanceof Error) throw o.signal.reason;
        throw failure('ERR_ABORTED', 'the acquire was cancelled while waiting in the queue', {
          hint: 'its ticket left the queue; acquire again when you need a slot',
        });
      }
      check(st);
      tellPosition(ctx, st, id, told, o.onQueue);
      // (The caller's own transaction just ran: the first look only reads.)
      if (!first && waiterShouldAct(ctx, st, id)) {
        const lease = await throughOutage(ctx, deadline, () => step(false), o.signal);
        if (lease) return lease;
      }
      const left = deadline - ctx.clock();
      if (left <= 0) return await step(true);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, POLL_MS));
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = undefined;
    }
  } finally {
    stop();
  }
}

/** Tells the waiter's queue position when it changes, and every REPORT_EVERY_MS while it waits. */
function tellPosition(
  ctx: PoolContext,
  st: PoolState,
  ticket: number | null,
  told: { key: string; at: number; since: number },
  onQueue?: WaitOptions['onQueue'],
): void {
  const pos = ticket === null ? null : queuePosition(st, ticket);
  if (!pos || ticket === null) return;
  const stopped = growthStopped(st);
  const key = `${pos.position}/${pos.waiting}/${stopped?.reason ?? ''}`;
  const now = ctx.clock();
  if (key === told.key && now - told.at < REPORT_EVERY_MS) return;
  told.key = key;
  told.at = now;
  onQueue?.({ ...pos, ticket, waitedMs: now - told.since });
  const budget = budgetFull(ctx, st);
  ctx.reporter.progress(
    `waiting in the queue: position ${pos.position} of ${pos.waiting}, ${formatDuration(now - told.since)} so far` +
      (budget ? `; ${budget}` : '') +
      (stopped ? `; the pool does not grow: ${stopped.reason} (${stopped.fix})` : ''),
  );
}

/** Lock-free check a waiter makes on each wake: is there work only a transaction can do? */
function waiterShouldAct(ctx: PoolContext, st: PoolState, ticket: number | null): boolean {
  if (ticket === null || !st.queue.some((t) => t.id === ticket)) return true;
  const c = counts(st);
  if (st.queue.length > c.provisioning && c.size < ctx.config.scale.max && !growthStopped(st))
    return true;
  if (c.ready > 0) return true;
  if (st.queue.length > c.provisioning && anyRetryDue(st, ctx.clock())) return true;
  return needsSweep(ctx, st, false);
}

/**
 * Runs `fn`, and while the lease store is unreachable (exit 6) and the deadline is ahead, tries
 * again every POLL_MS, saying so: a waiting acquire waits through a short Redis outage (a
 * commit is one script, so a failed try changed nothing). Not after a write the replicas did
 * not acknowledge (`details.acked`, store.replicas): it was applied, and trying again would
 * grant a second slot. At the deadline the outage's error is thrown.
 */
export async function throughOutage<T>(
  ctx: PoolContext,
  deadline: number,
  fn: () => Promise<T>,
  signal?: AbortSignal,
): Promise<T> {
  let since: number | undefined;
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      const down =
        isWtpoolError(e) && e.code === 'ERR_SERVICE_UNAVAILABLE' && e.details?.acked === undefined;
      if (!down || signal?.aborted || ctx.clock() + POLL_MS > deadline) throw e;
      const now = ctx.clock();
      if (since === undefined || now - since >= REPORT_EVERY_MS) {
        ctx.reporter.progress(`the lease store is unreachable, still waiting: ${errMessage(e)}`);
        since = now;
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }
}

/**
 * Why a ready slot is not granted: the fleet's PostgreSQL connection budget has no room for
 * another lease of this host (docs/fleet.md), or undefined.
 */
export function budgetFull(ctx: PoolContext, st: PoolState): string | undefined {
  const b = ctx.store.connections?.();
  const max = ctx.store.maxLeases?.() ?? Infinity;
  if (!b || counts(st).leased < max) return undefined;
  const mine = counts(st).leased * ctx.config.postgres.connectionLimit;
  return `the fleet's PostgreSQL connection budget is in use (${b.others + mine} of ${b.budget} connections: ${ctx.config.postgres.connectionLimit} per lease)`;
}
