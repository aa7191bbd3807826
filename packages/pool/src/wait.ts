/**
 * Waiting in the queue: a waiter sleeps until the registry changes (LeaseStore.watch) or a
 * bounded poll, then checks lock-free whether its ticket was granted or whether there is work
 * only a transaction can do (a ready slot, growth, a broken slot due for retry, housekeeping).
 */
import { needsSweep, type PoolContext } from './context.js';
import { anyRetryDue, counts, findGrant } from './state.js';
import type { Lease, PoolState } from './types.js';

/** Longest sleep of a waiter between two looks at the registry (the store's watch wakes it sooner). */
const POLL_MS = 500;

/** Waits for our ticket's grant; `step(true)` is the final transaction (leaves the queue). */
export async function waitForGrant(
  ctx: PoolContext,
  ticket: () => number | null,
  deadline: number,
  step: (final: boolean) => Promise<Lease | undefined>,
): Promise<Lease | undefined> {
  let wake: (() => void) | undefined;
  const stop = ctx.store.watch(() => wake?.());
  try {
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) return await step(true);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, POLL_MS));
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = undefined;
      const st = await ctx.store.read();
      const id = ticket();
      const g = id === null ? undefined : findGrant(st, id);
      if (g) return g.lease!;
      if (waiterShouldAct(ctx, st, id)) {
        const lease = await step(false);
        if (lease) return lease;
      }
    }
  } finally {
    stop();
  }
}

/** Lock-free check a waiter makes on each wake: is there work only a transaction can do? */
function waiterShouldAct(ctx: PoolContext, st: PoolState, ticket: number | null): boolean {
  if (ticket === null || !st.queue.some((t) => t.id === ticket)) return true;
  const c = counts(st);
  if (st.queue.length > c.provisioning && c.size < ctx.config.scale.max) return true;
  if (c.ready > 0) return true;
  if (st.queue.length > c.provisioning && anyRetryDue(st, Date.now())) return true;
  return needsSweep(ctx, st, false);
}
