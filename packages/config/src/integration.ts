/**
 * The integration worktree is part of the pool: `integrate run` works in it, and nothing that
 * cleans up the pool (leak detection and cleanup, `pool doctor`, `pool prune`) may treat it as
 * an orphan. This is the one answer to "which worktrees are integrate's": the configured one
 * (`integrationWorktree`) and every one an integrate run recorded in its state (a run with
 * another `--config` may have used another pool root), recorded before the run creates it.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { integrationWorktree } from './naming.js';
import type { RepoPaths } from './repo.js';
import type { Config } from './schema.js';

/** `<git common dir>/wtpool/integration`: the merge queue's state, lock and logs. */
export function integrationStateDir(repo: Pick<RepoPaths, 'stateDir'>): string {
  return path.join(repo.stateDir, 'integration');
}

/** Absolute paths of the worktrees the merge queue owns (whether they exist or not). */
export function integrationWorktrees(config: Config, repo: RepoPaths): string[] {
  const out = new Set([path.resolve(integrationWorktree(config, repo))]);
  try {
    const file = path.join(integrationStateDir(repo), 'state.json');
    const raw = JSON.parse(readFileSync(file, 'utf8')) as { data?: { worktrees?: unknown } };
    const recorded = raw.data?.worktrees;
    if (Array.isArray(recorded)) {
      for (const p of recorded) if (typeof p === 'string') out.add(path.resolve(p));
    }
  } catch {
    // no run yet, or a torn read of an older format: the configured path still counts
  }
  return [...out];
}
