/**
 * `integrate promote`: fast-forwards `--to` (main) to the integration head, only when that head
 * passed and it is a fast-forward (policy.ts's promoteDecision), in `--to`'s checkout when it
 * has one (refused when dirty), else by a checked ref update.
 */
import { git, conflictError, notFoundError } from '@wtpool/core';
import type { LoadedConfig } from '@wtpool/config';
import { branchHead } from '../candidates.js';
import { isGreen, promoteDecision } from './policy.js';
import { recover } from './restore.js';
import { exclusive, store } from './store.js';
import type { PromoteReport } from './types.js';
import { checkTarget, checkoutOf, dirty, isAncestor } from './worktree.js';

export async function integratePromote(
  loaded: LoadedConfig,
  opts: { to?: string; target?: string } = {},
): Promise<PromoteReport> {
  const cwd = loaded.repo.worktree;
  const target = await checkTarget(cwd, opts.target ?? 'integration');
  const to = await checkTarget(cwd, opts.to ?? loaded.config.pool.base);
  return exclusive(loaded, `integrate promote ${target} → ${to}`, async () => {
    await recover(loaded);
    const head = await branchHead(cwd, target);
    if (!head) throw notFoundError(`no ${target} branch yet; run \`integrate run\` first`);
    const from = await branchHead(cwd, to);
    if (!from) throw notFoundError(`branch ${to} does not exist`);
    const report = { target, to, from, head };
    const state = await store(loaded).read();
    const decision = promoteDecision({
      ...report,
      green: isGreen(state, target, head),
      fastForward: from === head || (await isAncestor(cwd, from, head)),
    });
    if (decision === 'none') return { ...report, promoted: false, via: 'none' };
    const checkout = await checkoutOf(cwd, to);
    if (checkout) {
      if (await dirty(checkout)) {
        throw conflictError(`${to}'s checkout ${checkout} has uncommitted changes`, {
          hint: `commit or stash them in ${checkout}, then promote again`,
        });
      }
      await git(['merge', '--ff-only', '--quiet', head], { cwd: checkout });
      return { ...report, promoted: true, via: 'checkout' };
    }
    // Not checked out anywhere: move the ref only if it still is where we checked it.
    await git(['update-ref', '-m', `integrate promote ${target}`, `refs/heads/${to}`, head, from], {
      cwd,
    });
    return { ...report, promoted: true, via: 'update-ref' };
  });
}
