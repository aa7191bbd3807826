/**
 * The effectful steps of one run: the base check (`gates ci` in the integration worktree) and
 * one candidate (merge `--no-ff`, dependencies and `gates.setup`, the merge pipeline, keep or
 * undo), and the record of a result. The decisions are policy.ts's; this module reads the
 * facts, runs git and the gates, and writes what policy says.
 */
import { git, gitRun } from '@wtpool/core';
import type { LoadedConfig } from '@wtpool/config';
import type { JsonStore } from '@wtpool/lock';
import { appendEvent } from '@wtpool/pool';
import { installDeps } from '@wtpool/services';
import { branchHead, type Owner } from '../candidates.js';
import { gateEnv, shell } from '../exec.js';
import { formatReport, runPipeline, type GateName } from '../pipeline.js';
import {
  addGreen,
  applyResult,
  baseIsCached,
  decideCandidate,
  keepsMerge,
  outcomeOf,
  resultEvent,
  short,
  type Attempt,
} from './policy.js';
import type { Progress } from './progress.js';
import { restoreSync } from './restore.js';
import { clearCurrent, writeLog } from './store.js';
import type { BaseCheck, IntegrationState, MergeResult } from './types.js';
import { headOf, isAncestor } from './worktree.js';

export interface Ctx {
  loaded: LoadedConfig;
  st: JsonStore<IntegrationState>;
  wt: string;
  target: string;
  progress: Progress;
  /** Throws Interrupted when a signal arrived (restore.ts). */
  check: () => void;
}

/** A failed preparation step (dependencies or gates.setup) as a gate result, or null. */
async function prepare(
  ctx: Ctx,
  prefix: string,
): Promise<{ gate: GateName; command: string; output: string } | null> {
  const { loaded, wt } = ctx;
  ctx.progress.gate(prefix, 'deps', `deps.strategy ${loaded.config.deps.strategy}`);
  try {
    // The integration worktree gets its dependencies the way slots do (hard-link clone or the
    // repository's install), re-run only when its lockfile changed (a marker in node_modules).
    await installDeps(loaded.repo.mainRoot, wt, loaded.config.deps);
  } catch (e) {
    const err = e as Error & { hint?: string };
    return {
      gate: 'deps',
      command: `deps.strategy ${loaded.config.deps.strategy}`,
      output: `${err.message}\n${err.hint ?? ''}`,
    };
  }
  ctx.check();
  const setup = loaded.config.gates.setup;
  if (setup) {
    ctx.progress.gate(prefix, 'setup', setup);
    const r = await shell(setup, { cwd: wt, env: gateEnv([wt, loaded.repo.mainRoot]) });
    ctx.check();
    if (r.code !== 0) return { gate: 'setup', command: setup, output: r.output };
  }
  return null;
}

/**
 * Base first: the target head runs `gates ci` once (a head that passed before is cached). A red
 * base is nobody's fault among the candidates, so the run stops before merging any of them.
 */
export async function checkBase(ctx: Ctx): Promise<BaseCheck> {
  const { loaded, st, wt, target } = ctx;
  const started = Date.now();
  const head = await headOf(wt);
  if (baseIsCached(await st.read(), target, head)) return { head, status: 'cached', ms: 0 };
  const prefix = `integrate: base ${target} ${short(head)}`;
  const header = `integrate: base check of ${target} at ${head}\n${new Date().toISOString()}\n\n`;
  const red = async (gate: string, text: string): Promise<BaseCheck> => {
    const log = await writeLog(loaded, `base-${target}`, header + text + '\n');
    return { head, status: 'red', failedGate: gate, log, ms: Date.now() - started };
  };
  const failedPrep = await prepare(ctx, prefix);
  if (failedPrep) return red(failedPrep.gate, `$ ${failedPrep.command}\n${failedPrep.output}`);
  const report = await runPipeline('ci', {
    cwd: wt,
    mainRoot: loaded.repo.mainRoot,
    config: loaded.config,
    onGate: (g, c) => ctx.progress.gate(prefix, g, c),
  });
  ctx.progress.stop();
  ctx.check();
  await git(['clean', '-fdq'], { cwd: wt });
  if (!report.ok) return red(report.failed!, formatReport(report));
  const at = new Date().toISOString();
  await st.update((s) => addGreen(s, target, head, at));
  return { head, status: 'green', ms: Date.now() - started };
}

/** Merges one candidate, runs the gates of what it changed, keeps or undoes it. */
export async function tryCandidate(
  ctx: Ctx,
  branch: string,
  prefix: string,
  owner: Owner | undefined,
): Promise<MergeResult> {
  const { loaded, st, wt, target, check } = ctx;
  const started = Date.now();
  const head = await branchHead(wt, branch);
  const base = {
    branch,
    branchHead: head,
    target,
    ...(owner ? { owner } : {}),
    at: new Date().toISOString(),
  };
  const done = (r: Omit<MergeResult, keyof typeof base | 'ms'>): MergeResult => ({
    ...base,
    ...r,
    ms: Date.now() - started,
  });
  const inTarget = head !== null && (await isAncestor(wt, head, 'HEAD'));
  const decision = decideCandidate(await st.read(), target, { branch, head, inTarget });
  if (decision.action === 'skip') {
    const { reason, previous } = decision;
    return done({ status: 'skipped', reason, ...(previous ? { previous } : {}) });
  }
  const prevHead = await headOf(wt);
  await st.update((s) => {
    s.current = { target, branch, prevHead, worktree: wt, pid: process.pid, startedAt: base.at };
  });
  const who = owner ? ` (agent ${owner.agent}, task ${owner.task})` : '';
  const header = `integrate ${branch}${who} (${decision.head}) into ${target} (${prevHead})\n${base.at}\n\n`;
  // Undo the merge, then forget it. If undoing throws, `current` stays for the recovery step.
  const undo = async () => {
    restoreSync(wt, prevHead);
    await clearCurrent(st);
  };
  /** The outcome of `attempt`; anything but a kept merge is undone and logged. */
  const finish = async (attempt: Attempt, logText: string | null, mergedAs?: string) => {
    const outcome = outcomeOf(attempt);
    if (!keepsMerge(outcome)) {
      await undo();
      const log = await writeLog(loaded, branch, logText ?? '');
      return done({ ...outcome, log });
    }
    await git(['clean', '-fdq'], { cwd: wt });
    await clearCurrent(st);
    return done({ ...outcome, ...(mergedAs ? { mergedAs } : {}) });
  };
  try {
    ctx.progress.gate(prefix, 'merge', `git merge --no-ff ${short(decision.head)}`);
    const merge = await gitRun(
      [
        'merge',
        '--no-ff',
        '--no-edit',
        '-m',
        `integrate: merge ${branch} into ${target}`,
        decision.head,
      ],
      { cwd: wt },
    );
    check();
    if (merge.code !== 0) {
      return await finish({ kind: 'conflict' }, `${header}$ git merge --no-ff\n${merge.output}`);
    }
    const mergedAs = await headOf(wt);
    const failedPrep = await prepare(ctx, prefix);
    if (failedPrep) {
      const text = `${header}$ ${failedPrep.command}\n${failedPrep.output}`;
      return await finish({ kind: 'prepare-failed', gate: failedPrep.gate }, text);
    }
    const report = await runPipeline('merge', {
      cwd: wt,
      mainRoot: loaded.repo.mainRoot,
      config: loaded.config,
      range: { from: prevHead, to: mergedAs },
      onGate: (g, c) => ctx.progress.gate(prefix, g, c),
    });
    ctx.progress.stop();
    check();
    const text = report.ok ? null : header + formatReport(report) + '\n';
    return await finish({ kind: 'gates', failed: report.failed }, text, mergedAs);
  } catch (e) {
    // Interrupted or failed unexpectedly: never leave the worktree mid-merge.
    ctx.progress.stop();
    await undo();
    throw e;
  }
}

/** Records a result: the results list, green heads, held heads, and an event naming the owner. */
export async function record(ctx: Ctx, r: MergeResult): Promise<void> {
  await ctx.st.update((s) => applyResult(s, r));
  const event = resultEvent(r);
  if (event) await appendEvent(ctx.loaded.repo.stateDir, 'integrate', event);
}
