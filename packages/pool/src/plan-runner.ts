/**
 * Runs the slow work a transaction decided (reclaims, provisioning, retirements) outside the
 * registry lock. Failures mark slots broken and are reported, not thrown.
 */
import { errMessage, type PoolContext } from './context.js';
import { provision } from './provision.js';
import { reclaim } from './release.js';
import { retire } from './scale.js';
import type { Plan } from './state.js';

export async function runPlan(ctx: PoolContext, plan: Plan): Promise<void> {
  const jobs: Promise<unknown>[] = plan.reclaim.map((r) => reclaim(ctx, r));
  if (plan.provision.length)
    jobs.push(
      provision(
        ctx,
        plan.provision.map((s) => s.id),
      ),
    );
  for (const s of plan.retire) jobs.push(retire(ctx, s.id));
  const results = await Promise.allSettled(jobs);
  for (const r of results) if (r.status === 'rejected') ctx.reporter.warn(errMessage(r.reason));
}
