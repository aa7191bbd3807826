/**
 * Candidates for the merge queue. `--from-pool` takes the branches that released leases kept.
 *
 * The pool library (dev/pool) will export `keptBranches()`; until it lands this is the one
 * place that finds them with git alone: local branches `<branchPrefix>/wt-<n>/<task>` with
 * commits not in the base, whose slot has no live lease on them. Switch this function to the
 * pool's when merging; nothing else in gates knows how kept branches are found.
 */
import { readFileSync } from 'node:fs';
import { slotNames, type LoadedConfig } from '@wtpool/config';
import { usageError } from '@wtpool/core';
import { git, gitTry } from './exec.js';

/** A live lease's branch, or `true` when a lease file exists but cannot be read (be careful). */
function leasedBranch(file: string): string | true | null {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return null;
  }
  try {
    const lease = JSON.parse(text) as { branch?: unknown; data?: { branch?: unknown } };
    const branch = lease.branch ?? lease.data?.branch;
    return typeof branch === 'string' ? branch : true;
  } catch {
    return true;
  }
}

export async function keptBranches(loaded: LoadedConfig): Promise<string[]> {
  const { config, repo } = loaded;
  const prefix = config.pool.branchPrefix;
  const out = await git(
    ['for-each-ref', '--sort=committerdate', '--format=%(refname:short)', `refs/heads/${prefix}/`],
    repo.worktree,
  );
  const slotBranch = new RegExp(`^${prefix}/(wt-[1-9][0-9]{0,3})/.+$`);
  const kept: string[] = [];
  for (const branch of out.split('\n').filter(Boolean)) {
    const m = slotBranch.exec(branch);
    if (!m) continue;
    const leased = leasedBranch(slotNames(config, repo, m[1]!).leaseFile);
    if (leased === true || leased === branch) continue;
    const ahead = await git(
      ['rev-list', '--count', `refs/heads/${config.pool.base}..refs/heads/${branch}`],
      repo.worktree,
    );
    if (Number(ahead) > 0) kept.push(branch);
  }
  return kept;
}

/** A local branch name safe to hand to git: well-formed, not an option, existing. */
export async function checkBranch(cwd: string, branch: string): Promise<string> {
  const wellFormed =
    !branch.startsWith('-') &&
    (await gitTry(['check-ref-format', '--branch', branch], cwd)).code === 0;
  if (!wellFormed) {
    throw usageError(`invalid branch name ${JSON.stringify(branch)}`, {
      hint: 'pass local branch names, e.g. --branches pool/wt-1/task-a,feature-x',
    });
  }
  return branch;
}

/** The commit a local branch points at, or null when it does not exist. */
export async function branchHead(cwd: string, branch: string): Promise<string | null> {
  const r = await gitTry(
    ['rev-parse', '--verify', '--quiet', `refs/heads/${branch}^{commit}`],
    cwd,
  );
  return r.code === 0 ? r.stdout.trim() : null;
}
