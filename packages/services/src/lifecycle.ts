/**
 * Runs the providers of a slot at each lifecycle step, in order, with the undo the contract
 * promises: a failed lease releases the providers that had already leased, so nothing is left
 * half-allocated. The pool may call these or drive the providers itself.
 */
import type { LeaseInfo, ProviderContext, SlotProvider } from './provider.js';

export async function provisionSlot(
  providers: SlotProvider[],
  ctx: ProviderContext,
): Promise<void> {
  for (const p of providers) await p.provision?.(ctx);
}

/** Leases every provider; on failure releases those that leased, then rethrows. */
export async function leaseSlot(
  providers: SlotProvider[],
  ctx: ProviderContext,
  lease: LeaseInfo,
): Promise<Record<string, string>> {
  const env: Record<string, string> = {};
  const done: SlotProvider[] = [];
  try {
    for (const p of providers) {
      if (!p.lease) continue;
      Object.assign(env, await p.lease(ctx, lease));
      done.push(p);
    }
  } catch (e) {
    for (const p of done.reverse()) {
      await p.release?.(ctx).catch((undo: unknown) => {
        ctx.warn(`${p.name}: undoing the failed lease also failed: ${String(undo)}`);
      });
    }
    throw e;
  }
  return env;
}

/**
 * Releases every provider (reverse order). All are attempted; the first error is rethrown
 * after the others ran, so one service being down does not leak the others.
 */
export async function releaseSlot(providers: SlotProvider[], ctx: ProviderContext): Promise<void> {
  await each([...providers].reverse(), (p) => p.release?.(ctx));
}

/** Refreshes every provider in order; the first failure stops the rest (later ones depend on it). */
export async function refreshSlot(
  providers: SlotProvider[],
  ctx: ProviderContext,
  why: 'release' | 'acquire',
): Promise<void> {
  for (const p of providers) await p.refresh?.(ctx, why);
}

export async function destroySlot(providers: SlotProvider[], ctx: ProviderContext): Promise<void> {
  await each([...providers].reverse(), (p) => p.destroy?.(ctx));
}

export async function checkSlot(
  providers: SlotProvider[],
  ctx: ProviderContext,
): Promise<string[]> {
  const problems: string[] = [];
  for (const p of providers) {
    try {
      problems.push(...((await p.check?.(ctx)) ?? []));
    } catch (e) {
      problems.push(`${p.name}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  return problems;
}

async function each(list: SlotProvider[], fn: (p: SlotProvider) => unknown): Promise<void> {
  let first: unknown;
  for (const p of list) {
    try {
      await fn(p);
    } catch (e) {
      first ??= e;
    }
  }
  if (first !== undefined) throw first;
}
