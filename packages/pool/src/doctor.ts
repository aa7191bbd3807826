/**
 * `pool doctor [--fix]` / `pool prune`: finds drift between the registry, git and the services,
 * and repairs it with --fix. Nothing with unsaved work is removed without a rescue ref, and a
 * worktree whose `.pool-owner` marker shows a live lease is never removed.
 */
import path from 'node:path';
import { integrationWorktrees, orphanRescueRefPrefix, poolRoot } from '@wtpool/config';
import { gitRun } from '@wtpool/core';
import { errMessage, event, liveFacts, tx, type PoolContext } from './context.js';
import { withGitLock } from './git.js';
import { HOST, procAlive, procRef } from './proc.js';
import { provision } from './provision.js';
import { rescueUnsaved } from './rescue/index.js';
import { cleanup } from './scale.js';
import { checkServices, eachProvider } from './slot-services.js';
import { emptyPlan, retireIdle, slotList, sweep } from './state.js';
import type { PoolState } from './types.js';
import { listWorktrees, readOwnerMarker, removeWorktree, worktreeExists } from './worktree.js';

export interface Problem {
  kind:
    | 'missing-worktree'
    | 'broken-slot'
    | 'orphan-worktree'
    | 'prunable-worktree'
    | 'stale-lease-file'
    | 'expired-lease'
    | 'dead-worker'
    | 'dead-waiter'
    | 'idle-slot'
    | 'template-drift'
    | 'service';
  slot?: string;
  path?: string;
  detail: string;
  fixed: boolean;
}

export interface DoctorReport {
  ok: boolean;
  fixed: number;
  problems: Problem[];
}

export async function runDoctor(ctx: PoolContext, opts: { fix: boolean }): Promise<DoctorReport> {
  const problems: Problem[] = [];
  const st = await ctx.store.read();

  // Housekeeping any command would do: expired leases, dead workers, dead waiters.
  const plan = sweep(structuredClone(st), liveFacts(ctx));
  for (const r of plan.reclaim)
    problems.push({
      kind: r.reason === 'releaser-dead' ? 'dead-worker' : 'expired-lease',
      slot: r.slot.id,
      detail: `lease of ${r.lease.agent} (${r.reason})`,
      fixed: opts.fix,
    });
  for (const s of [...plan.provision, ...plan.retire])
    problems.push({
      kind: 'dead-worker',
      slot: s.id,
      detail: `the process working on it (${s.state}) died`,
      fixed: opts.fix,
    });
  for (const t of plan.dropped)
    problems.push({
      kind: 'dead-waiter',
      detail: `ticket of ${t.agent} (pid ${t.waiter.pid})`,
      fixed: opts.fix,
    });
  const idle = emptyPlan();
  retireIdle(
    structuredClone(st),
    ctx.config,
    ctx.config.scale.idleShrinkAfter,
    liveFacts(ctx),
    idle,
  );
  for (const s of idle.retire)
    problems.push({
      kind: 'idle-slot',
      slot: s.id,
      detail: 'idle above scale.min',
      fixed: opts.fix,
    });
  if (opts.fix) await cleanup(ctx);

  // Registered slots whose worktree is gone, and broken slots: re-provision.
  const heal: string[] = [];
  for (const s of slotList(st)) {
    if (s.state === 'broken') {
      problems.push({
        kind: 'broken-slot',
        slot: s.id,
        path: s.path,
        detail: s.error ?? 'broken',
        fixed: opts.fix,
      });
      heal.push(s.id);
    } else if (s.state === 'ready' && !worktreeExists(s.path)) {
      problems.push({
        kind: 'missing-worktree',
        slot: s.id,
        path: s.path,
        detail: 'worktree directory is missing',
        fixed: opts.fix,
      });
      heal.push(s.id);
    }
  }
  if (opts.fix && heal.length) {
    const me = procRef();
    const { result } = await tx(ctx, (draft) =>
      heal.filter((id) => {
        const s = draft.slots[id];
        if (!s || (s.state !== 'broken' && s.state !== 'ready')) return false;
        s.state = 'provisioning';
        s.owner = me;
        return true;
      }),
    );
    await provision(ctx, result);
  }

  // Git: prunable registrations, and worktrees under the pool root the registry does not know.
  const root = poolRoot(ctx.config, ctx.repo);
  const known = new Set(slotList(await ctx.store.read()).map((s) => path.resolve(s.path)));
  // The merge queue's worktree belongs to the pool (docs/integration.md): never an orphan.
  for (const p of integrationWorktrees(ctx.config, ctx.repo)) known.add(p);
  const worktrees = await listWorktrees(ctx.repo.mainRoot);
  if (worktrees.some((w) => w.prunable)) {
    problems.push({
      kind: 'prunable-worktree',
      detail: 'git has worktree registrations whose directory is gone',
      fixed: opts.fix,
    });
    if (opts.fix)
      await withGitLock(ctx.repo.stateDir, 'worktrees', () =>
        gitRun(['worktree', 'prune'], { cwd: ctx.repo.mainRoot }),
      );
  }
  for (const w of worktrees) {
    const p = path.resolve(w.path);
    if (w.prunable || known.has(p) || !p.startsWith(root + path.sep)) continue;
    const marker = await readOwnerMarker(p);
    const live = marker !== null && markerLive(marker, ctx.config.pool.leaseTtl);
    const problem: Problem = {
      kind: 'orphan-worktree',
      path: p,
      detail: live
        ? `not in the registry, but its marker shows a live lease of ${marker!.agent}: kept`
        : 'not in the registry',
      fixed: false,
    };
    problems.push(problem);
    if (opts.fix && !live) {
      try {
        // Refuses (nothing removed) what cannot be saved: a nested repository, ignored files
        // over pool.rescueMaxBytes. One ref name for orphans, the monitor's cleanup's too.
        await rescueUnsaved(ctx, p, orphanRescueRefPrefix(path.basename(p)), {
          path: p,
          reason: 'orphan-worktree',
        });
        await withGitLock(ctx.repo.stateDir, 'worktrees', () =>
          removeWorktree(ctx.repo.mainRoot, p),
        );
        problem.fixed = true;
      } catch (e) {
        problem.detail += `; not removed: ${e instanceof Error ? e.message : String(e)}`;
      }
    }
  }

  // Lease files that no registry lease owns.
  const cur = await ctx.store.read();
  for (const { slot: id, where, lease: lf } of await ctx.store.listLeases()) {
    const slot = cur.slots[id];
    if (slot?.lease && lf && slot.lease.token === lf.token) continue;
    // A grant being claimed right now has no lease file yet, never a foreign one: safe to remove.
    const problem: Problem = {
      kind: 'stale-lease-file',
      slot: id,
      path: where,
      detail: `token ${lf?.token ?? '?'} has no lease in the registry`,
      fixed: false,
    };
    problems.push(problem);
    if (opts.fix) {
      await ctx.store.removeLease(id, lf?.token ?? null);
      problem.fixed = true;
    }
  }

  // The PostgreSQL template: its schema against the fingerprint recorded when it was built.
  if (ctx.config.postgres.url) await checkTemplateDrift(ctx, cur, opts.fix, problems);

  // Services.
  for (const s of slotList(cur)) {
    for (const msg of await checkServices(ctx, s.id))
      problems.push({ kind: 'service', slot: s.id, detail: msg, fixed: false });
  }
  const unfixed = problems.filter((p) => !p.fixed);
  return { ok: unfixed.length === 0, fixed: problems.length - unfixed.length, problems };
}

/**
 * Drift inside the template database (a table dropped, a column changed by hand): reported,
 * and with --fix the template is rebuilt from the migrations and the ready slots' databases
 * cloned again (their marker names the template build, so leased ones follow at release).
 */
async function checkTemplateDrift(
  ctx: PoolContext,
  st: PoolState,
  fix: boolean,
  problems: Problem[],
): Promise<void> {
  const { checkTemplate, rebuildTemplate } = await import('@wtpool/services');
  let drift;
  try {
    drift = await checkTemplate(ctx);
  } catch (e) {
    problems.push({ kind: 'service', detail: `template check: ${errMessage(e)}`, fixed: false });
    return;
  }
  if (!drift) return;
  const problem: Problem = {
    kind: 'template-drift',
    detail: `template database ${drift.template} does not match the schema recorded when it was built (${drift.recorded ? `fingerprint ${drift.recorded.slice(0, 12)}, now ${drift.actual.slice(0, 12)}` : 'no fingerprint recorded'}); \`pool doctor --fix\` rebuilds it`,
    fixed: false,
  };
  problems.push(problem);
  if (!fix) return;
  await rebuildTemplate(ctx, {
    progress: (m) => ctx.reporter.progress(m),
    event: (type, details) => event(ctx, type, details),
  });
  for (const s of slotList(st)) if (s.state === 'ready') await eachProvider(ctx, s.id, 'provision');
  problem.fixed = true;
}

function markerLive(
  m: { host: string; pid: number | null; acquiredAt: string },
  ttl: number,
): boolean {
  if (m.pid !== null && m.host === HOST) return procAlive({ pid: m.pid, start: null, host: HOST });
  return Date.now() - Date.parse(m.acquiredAt) < ttl;
}
