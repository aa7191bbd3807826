/**
 * The git side of the merge queue outside a merge: branch names checked before they reach git,
 * ancestry, a dirty checkout, the integration worktree (created on the target when missing) and
 * where a branch is checked out.
 */
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { conflictError, failure, git, gitRun, usageError } from '@wtpool/core';
import { integrationWorktree, resolveRepo, type LoadedConfig } from '@wtpool/config';
import { branchHead } from '../candidates.js';

export async function checkTarget(cwd: string, target: string): Promise<string> {
  if (
    target.startsWith('-') ||
    (await gitRun(['check-ref-format', '--branch', target], { cwd })).code
  ) {
    throw usageError(`invalid target branch ${JSON.stringify(target)}`);
  }
  return target;
}

export async function isAncestor(cwd: string, a: string, b: string): Promise<boolean> {
  return (await gitRun(['merge-base', '--is-ancestor', a, b], { cwd })).code === 0;
}

export async function dirty(cwd: string): Promise<string> {
  return git(['status', '--porcelain', '--untracked-files=no'], { cwd });
}

export const headOf = async (cwd: string) => (await git(['rev-parse', 'HEAD'], { cwd })).trim();

export const dirtyError = (wt: string) =>
  conflictError(`the integration worktree ${wt} has uncommitted changes`, {
    hint: `nobody should edit it: inspect with \`git -C ${wt} status\`, then stash or reset them`,
  });

/** The integration worktree on `target`, created (with the branch, from the base) when missing. */
export async function ensureWorktree(loaded: LoadedConfig, target: string): Promise<string> {
  const { repo, config } = loaded;
  const wt = integrationWorktree(config, repo);
  if (!(await branchHead(repo.worktree, target))) {
    const base = await branchHead(repo.worktree, config.pool.base);
    if (!base) throw failure('ERR_NO_BASE', `base branch ${config.pool.base} does not exist`);
    await git(['branch', '--no-track', target, base], { cwd: repo.worktree });
  }
  if (!existsSync(wt)) {
    await git(['worktree', 'prune'], { cwd: repo.worktree });
    await fs.mkdir(path.dirname(wt), { recursive: true });
    await git(['worktree', 'add', '--quiet', wt, target], { cwd: repo.worktree });
    return wt;
  }
  if (resolveRepo(wt).commonDir !== repo.commonDir) {
    throw conflictError(`${wt} exists but is not a worktree of this repository`, {
      hint: 'move it away; `integrate run` creates its worktree there',
    });
  }
  const current = (
    await gitRun(['symbolic-ref', '--quiet', '--short', 'HEAD'], { cwd: wt })
  ).stdout.trim();
  if (current !== target) {
    if (await dirty(wt)) throw dirtyError(wt);
    await git(['switch', '--quiet', target], { cwd: wt });
  }
  return wt;
}

/** The worktree where `branch` is checked out, if any. */
export async function checkoutOf(cwd: string, branch: string): Promise<string | null> {
  const out = await git(['worktree', 'list', '--porcelain'], { cwd });
  let wt: string | null = null;
  for (const line of out.split('\n')) {
    if (line.startsWith('worktree ')) wt = line.slice('worktree '.length);
    if (line === `branch refs/heads/${branch}`) return wt;
  }
  return null;
}
