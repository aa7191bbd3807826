import path from 'node:path';
import { git as coreGit, type RunOkOptions } from '@wtpool/core';
import { withLock } from '@wtpool/lock';

const HINT = 'run `pool doctor` to check the pool, or fix the repository and retry';

/** git through the @wtpool/core runner; a failure is ERR_GIT with the pool's hint. */
export const git = (args: string[], opts: RunOkOptions = {}): Promise<string> =>
  coreGit(args, { hint: HINT, ...opts });

/**
 * Serializes git operations that write shared files of the repository: `worktree` add/remove/
 * prune (`.git/worktrees`, `.git/config.lock`) on one lock, branch deletion (packed-refs) on
 * another, so a growing pool does not hold up releases. Separate from the registry lock.
 */
export function withGitLock<T>(
  stateDir: string,
  which: 'worktrees' | 'refs',
  fn: () => Promise<T>,
): Promise<T> {
  return withLock(path.join(stateDir, `git-${which}`), fn, {
    timeout: 5 * 60_000,
    stale: 60_000,
    purpose: `git ${which}`,
  });
}
