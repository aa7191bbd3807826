/**
 * The slot's services (PostgreSQL database, Redis logical DB, ports, deps, …) as the pool sees
 * them: lifecycle steps on every provider, the env a lease gets, and doctor's checks. Service
 * clients load lazily, only when a command needs them.
 */
import type { ProviderContext, SlotProvider } from '@wtpool/services';
import { event, names, type PoolContext } from './context.js';
import type { Lease } from './types.js';

type Services = {
  svc: typeof import('@wtpool/services/slots');
  providers: SlotProvider[];
};

function services(ctx: PoolContext): Promise<Services> {
  // The slot-side entry: no Redis or PostgreSQL client code on every acquire and release.
  ctx.servicesP ??= import('@wtpool/services/slots').then(async (svc) => ({
    svc,
    providers: await svc.createProviders(ctx.loaded),
  }));
  return ctx.servicesP as Promise<Services>;
}

function providerCtx(ctx: PoolContext, slot: string): ProviderContext {
  return {
    config: ctx.config,
    repo: ctx.repo,
    names: names(ctx, slot),
    event: (type, details) => event(ctx, type, { slot, ...details }),
    progress: (m) => ctx.reporter.progress(m),
    warn: (m) => ctx.reporter.warn(m),
    slotEnv: () => envOf(ctx, slot),
  };
}

/** One lifecycle step on every provider (services' lifecycle: a release tries them all). */
export async function eachProvider(
  ctx: PoolContext,
  slot: string,
  step: 'provision' | 'release' | 'destroy',
): Promise<void> {
  const { svc, providers } = await services(ctx);
  const run = {
    provision: svc.provisionSlot,
    release: svc.releaseSlot,
    destroy: svc.destroySlot,
  };
  await run[step](providers, providerCtx(ctx, slot));
}

/**
 * The slot's checkout moved to a new base commit (after a release's reset, or an acquire's
 * switch to its lease branch): providers bring derived state up to date (dependencies, the
 * included files, setup outputs; services' refresh). A failure is the caller's to report.
 */
export async function refreshProviders(
  ctx: PoolContext,
  slot: string,
  why: 'release' | 'acquire',
): Promise<void> {
  const { svc, providers } = await services(ctx);
  await svc.refreshSlot(providers, providerCtx(ctx, slot), why);
}

/**
 * The slot's own configuration nobody changed (files included from the main checkout, what
 * pool.setup wrote; services' keptPaths), relative to the worktree: the rescue neither saves
 * nor refuses them and the clean keeps them (rescueLimits). A changed one is not listed: it is
 * rescued like any ignored file.
 */
export async function slotConfiguration(
  ctx: PoolContext,
  id: string,
  dir: string,
): Promise<string[]> {
  const { keptPaths } = await import('@wtpool/services/slots');
  return (await keptPaths(ctx.repo.stateDir, id, dir)).map((p) => p.replace(/^\/+/, ''));
}

/** The keys the pool itself puts in every slot's env. */
function baseEnv(ctx: PoolContext, id: string): Record<string, string> {
  return {
    WORKTREE_ID: id,
    POOL_STATE_DIR: ctx.repo.stateDir,
    // docker compose stacks of two slots never share containers, networks or volumes.
    COMPOSE_PROJECT_NAME: names(ctx, id).composeProject,
  };
}

/**
 * Env of a lease: the pool's own keys plus what each enabled service allocates (a failing
 * service undoes the others' allocations before the error reaches us).
 */
export async function leaseEnv(
  ctx: PoolContext,
  id: string,
  lease: Lease,
): Promise<Record<string, string>> {
  const { svc, providers } = await services(ctx);
  const info = { agent: lease.agent, task: lease.task, token: lease.token };
  return {
    ...baseEnv(ctx, id),
    // The fencing token: `pool release`/`heartbeat` run with this env use it (docs/pool.md).
    WTPOOL_LEASE_TOKEN: String(lease.token),
    ...(await svc.leaseSlot(providers, providerCtx(ctx, id), info)),
  };
}

/** Env of an existing lease (for `pool run` and status), without allocating anything. */
export async function envOf(ctx: PoolContext, id: string): Promise<Record<string, string>> {
  const env = baseEnv(ctx, id);
  for (const p of (await services(ctx)).providers)
    if (p.env) Object.assign(env, await p.env(providerCtx(ctx, id)));
  return env;
}

/** Problems the services report for a slot (doctor). */
export async function checkServices(ctx: PoolContext, id: string): Promise<string[]> {
  const { svc, providers } = await services(ctx);
  return svc.checkSlot(providers, providerCtx(ctx, id));
}

/** Redis band capacity for status (null without Redis). */
export async function capacity(ctx: PoolContext): Promise<unknown> {
  if (!ctx.config.redis.url) return null;
  const m = await import('@wtpool/services');
  return m.redisCapacity(ctx.loaded);
}
