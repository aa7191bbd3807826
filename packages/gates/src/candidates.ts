/**
 * Candidates for the merge queue. `--from-pool` takes the branches that released leases kept:
 * the pool records each one when a release keeps a branch with commits, and
 * `WorktreePool.keptBranches()` lists those still present and not leased again, oldest first.
 * `owners` names the agent and task behind a pool branch (its kept record or its live lease),
 * so a result and its event say whose branch it was.
 */
import type { LoadedConfig } from '@wtpool/config';
import { gitRun, usageError } from '@wtpool/core';
import { WorktreePool } from '@wtpool/pool';

export interface Owner {
  agent: string;
  task: string;
  slot: string;
}

export async function keptBranches(loaded: LoadedConfig): Promise<string[]> {
  const kept = await new WorktreePool(loaded).keptBranches();
  return kept.map((k) => k.branch);
}

/** branch → the agent and task that made it (the latest kept record, or the lease holding it). */
export async function owners(loaded: LoadedConfig): Promise<Map<string, Owner>> {
  const st = await new WorktreePool(loaded).readState();
  const out = new Map<string, Owner>();
  for (const k of st.kept) out.set(k.branch, { agent: k.agent, task: k.task, slot: k.slot });
  for (const s of Object.values(st.slots)) {
    if (s.lease?.branch) {
      out.set(s.lease.branch, { agent: s.lease.agent, task: s.lease.task, slot: s.id });
    }
  }
  return out;
}

/** A local branch name safe to hand to git: well-formed, not an option, existing. */
export async function checkBranch(cwd: string, branch: string): Promise<string> {
  const wellFormed =
    !branch.startsWith('-') &&
    (await gitRun(['check-ref-format', '--branch', branch], { cwd })).code === 0;
  if (!wellFormed) {
    throw usageError(`invalid branch name ${JSON.stringify(branch)}`, {
      hint: 'pass local branch names, e.g. --branches pool/wt-1/task-a,feature-x',
    });
  }
  return branch;
}

/** The commit a local branch points at, or null when it does not exist. */
export async function branchHead(cwd: string, branch: string): Promise<string | null> {
  const r = await gitRun(['rev-parse', '--verify', '--quiet', `refs/heads/${branch}^{commit}`], {
    cwd,
  });
  return r.code === 0 ? r.stdout.trim() : null;
}
