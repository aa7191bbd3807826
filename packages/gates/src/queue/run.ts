/**
 * `integrate run`: recovery, the integration worktree, the base check, then each candidate in
 * order (merge.ts), under the queue's lock and with signals turned into a restore (restore.ts).
 * `tracks dispatch --then integrate` calls `integrateRun(loaded, { fromPool: true })`.
 */
import { git } from '@wtpool/core';
import { integrationWorktree, type LoadedConfig } from '@wtpool/config';
import { branchHead, checkBranch, keptBranches, owners } from '../candidates.js';
import { checkBase, record, tryCandidate, type Ctx } from './merge.js';
import { candidateSource, isGreen, short, triesCandidates } from './policy.js';
import { Progress, secs } from './progress.js';
import { interruptible, recover } from './restore.js';
import { exclusive, store } from './store.js';
import type { MergeResult, RunOptions, RunReport, Running } from './types.js';
import { checkTarget, dirty, dirtyError, ensureWorktree, headOf, isAncestor } from './worktree.js';

async function resolveCandidates(loaded: LoadedConfig, opts: RunOptions): Promise<string[]> {
  if (candidateSource(opts) === 'pool') return keptBranches(loaded);
  const out: string[] = [];
  for (const b of opts.branches!) out.push(await checkBranch(loaded.repo.worktree, b));
  return out;
}

export async function integrateRun(loaded: LoadedConfig, opts: RunOptions): Promise<RunReport> {
  const target = await checkTarget(loaded.repo.worktree, opts.target ?? 'integration');
  const candidates = await resolveCandidates(loaded, opts);
  return exclusive(loaded, `integrate run → ${target}`, async () => {
    const recovered = await recover(loaded);
    const st = store(loaded);
    const wtPath = integrationWorktree(loaded.config, loaded.repo);
    // Known before it exists: leak detection and `pool doctor` leave it alone from now on.
    await st.update((s) => {
      s.worktrees = [...new Set([...(s.worktrees ?? []), wtPath])];
    });
    const running: Running = {
      pid: process.pid,
      target,
      worktree: wtPath,
      startedAt: new Date().toISOString(),
      index: 0,
      total: candidates.length,
      branch: null,
      gate: null,
      gateStartedAt: null,
    };
    const progress = new Progress(loaded, running, opts.progress, (opts.tickSeconds ?? 15) * 1000);
    try {
      const wt = await ensureWorktree(loaded, target);
      if (await dirty(wt)) throw dirtyError(wt);
      // Main moved on (e.g. after a promote): start from it when that is a fast-forward.
      const mainHead = await branchHead(wt, loaded.config.pool.base);
      if (mainHead && (await isAncestor(wt, 'HEAD', mainHead))) {
        await git(['merge', '--ff-only', '--quiet', mainHead], { cwd: wt });
      }
      const startHead = await headOf(wt);
      const who = await owners(loaded);
      const results: MergeResult[] = [];
      const baseCheck = await interruptible(async (check) => {
        const ctx: Ctx = { loaded, st, wt, target, progress, check };
        const b = await checkBase(ctx);
        opts.progress?.(
          b.status === 'red'
            ? `integrate: base ${target} ${short(b.head)} is red (${b.failedGate})`
            : `integrate: base ${target} ${short(b.head)} ${b.status === 'cached' ? 'green (cached)' : `green in ${secs(b.ms)}`}`,
        );
        if (!triesCandidates(b)) return b;
        for (const [i, branch] of candidates.entries()) {
          const prefix = `integrate [${i + 1}/${candidates.length}] ${branch}`;
          progress.at({ index: i + 1, branch, gate: null, gateStartedAt: null });
          const r = await tryCandidate(ctx, branch, prefix, who.get(branch));
          results.push(r);
          opts.progress?.(`${prefix}: ${r.status} (${r.reason}) in ${secs(r.ms)}`);
          await record(ctx, r);
        }
        return b;
      });
      const head = await headOf(wt);
      const state = await st.read();
      return {
        target,
        worktree: wt,
        startHead,
        head,
        green: isGreen(state, target, head),
        recovered,
        base: baseCheck,
        results,
      };
    } finally {
      progress.end();
    }
  });
}
