/**
 * `integrate status`, `drop` and `retry`: what the queue holds (candidates with their owners,
 * held heads, drops, the run in progress, the last results) and the two edits a user makes to
 * it. None of them waits for a running `integrate run` (the state is a locked JsonStore).
 */
import { notFoundError } from '@wtpool/core';
import { integrationWorktree, type LoadedConfig } from '@wtpool/config';
import { appendEvent } from '@wtpool/pool';
import { branchHead, checkBranch, keptBranches, owners } from '../candidates.js';
import { checkRetry, forget, isGreen, markDropped, statusCandidates } from './policy.js';
import { logsDir, readRunning, store } from './store.js';
import type { DropReport, RetryReport, StatusReport } from './types.js';
import { checkTarget, isAncestor } from './worktree.js';

export async function integrateStatus(
  loaded: LoadedConfig,
  opts: { target?: string; limit?: number } = {},
): Promise<StatusReport> {
  const cwd = loaded.repo.worktree;
  const target = await checkTarget(cwd, opts.target ?? 'integration');
  const head = await branchHead(cwd, target);
  const state = await store(loaded).read();
  const who = await owners(loaded);
  const kept: { branch: string; head: string; inTarget: boolean }[] = [];
  for (const branch of await keptBranches(loaded)) {
    if (state.dropped?.[branch]) continue; // listed by nobody: no git work for it
    const h = (await branchHead(cwd, branch))!;
    kept.push({ branch, head: h, inTarget: head !== null && (await isAncestor(cwd, h, head)) });
  }
  return {
    target,
    worktree: integrationWorktree(loaded.config, loaded.repo),
    head,
    green: head !== null && isGreen(state, target, head),
    current: state.current,
    running: readRunning(loaded),
    candidates: statusCandidates(state, kept, who),
    held: Object.entries(state.held ?? {}).map(([branch, h]) => ({ branch, ...h })),
    dropped: Object.entries(state.dropped ?? {}).map(([branch, d]) => ({ branch, ...d })),
    results: state.results.filter((r) => r.target === target).slice(-(opts.limit ?? 20)),
    logsDir: logsDir(loaded),
  };
}

/** `integrate drop <branch>`: no longer a candidate (the branch itself is kept). */
export async function integrateDrop(loaded: LoadedConfig, branch: string): Promise<DropReport> {
  const cwd = loaded.repo.worktree;
  await checkBranch(cwd, branch);
  const head = await branchHead(cwd, branch);
  if (!head) throw notFoundError(`no local branch ${branch}`);
  let dropped = false;
  const at = new Date().toISOString();
  await store(loaded).update((s) => {
    dropped = markDropped(s, branch, head, at);
  });
  await appendEvent(loaded.repo.stateDir, 'integrate-drop', { branch, branchHead: head });
  return { branch, head, dropped };
}

/** `integrate retry <branch>`: forget its held head (and a drop), so the next run tries it. */
export async function integrateRetry(loaded: LoadedConfig, branch: string): Promise<RetryReport> {
  await checkBranch(loaded.repo.worktree, branch);
  let report: RetryReport = { branch, held: null, undropped: false };
  await store(loaded).update((s) => {
    report = forget(s, branch);
  });
  return checkRetry(report);
}
