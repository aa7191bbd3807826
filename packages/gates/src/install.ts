/**
 * `gates install`: activates the pre-commit gates for a repository's main checkout and every
 * worktree, including worktrees created later (by hand or by the pool).
 *
 * The hook goes into git's default hooks directory, `<git common dir>/hooks`. Every worktree of
 * a repository shares that directory, it moves with the repository, and it needs no per-checkout
 * generated files (husky's `core.hooksPath=hooks/_` is git-ignored, so a `git worktree add`
 * checkout has no `hooks/_` and git silently skips every hook there). So `install` removes any
 * `core.hooksPath` of the repository (and of per-worktree config) that would divert git away
 * from it; only when a global or system `core.hooksPath` would still win does it set the local
 * one to the absolute path of that directory. It then verifies, worktree by worktree, that git
 * resolves the hook to ours.
 */
import { existsSync, promises as fs, readFileSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { failure } from '@wtpool/core';
import type { RepoPaths } from '@wtpool/config';
import { writeFileAtomic } from '@wtpool/lock';
import { git, gitTry } from './exec.js';

export const HOOK_MARKER = '# wtpool-gates-hook';

/** The gates bin of this installation (the fallback the hook uses). */
export const GATES_BIN = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  'bin',
  'gates.js',
);

const sq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * The hook script. It prefers the gates of the checkout being committed to (the toolkit's own
 * packages/gates when dogfooding, else the repository's node_modules), so each branch runs its
 * own version; the installing gates is the fallback. Not finding any is a failure: the gates
 * are mandatory, a missing CLI must not let a commit through.
 */
export function hookScript(gatesBin: string): string {
  return `#!/bin/sh
${HOOK_MARKER} v1: written by \`gates install\`; run it again rather than editing this file.
# Shared by every worktree of this repository (git's hooks directory is in the common dir).
top=$(git rev-parse --show-toplevel) || exit 1
if [ -f "$top/packages/gates/bin/gates.js" ] && [ -f "$top/packages/gates/dist/cli-gates.js" ]; then
  gates="$top/packages/gates/bin/gates.js"
elif [ -f "$top/node_modules/@wtpool/gates/bin/gates.js" ]; then
  gates="$top/node_modules/@wtpool/gates/bin/gates.js"
elif [ -f ${sq(gatesBin)} ]; then
  gates=${sq(gatesBin)}
else
  echo "gates: cannot find the gates CLI; run \\\`pnpm install\\\`, then \\\`gates install\\\`" >&2
  exit 1
fi
# --repo: the worktree being committed to, even when a pnpm parent set INIT_CWD elsewhere.
node "$gates" pre-commit --repo "$top" || exit $?
# A pre-commit hook that was here before \`gates install\` runs after the gates.
if [ -x "$0.pre-gates" ]; then exec "$0.pre-gates" "$@"; fi
`;
}

export interface WorktreeHookState {
  path: string;
  /** The pre-commit hook git runs in this worktree. */
  hook: string;
  active: boolean;
}

export interface InstallResult {
  hooksDir: string;
  hook: string;
  gatesBin: string;
  /** core.hooksPath before install (local scope), if any. */
  previousHooksPath: string | null;
  /** Set when a global/system core.hooksPath forced a local absolute one. */
  hooksPath: string | null;
  /** A foreign pre-commit hook moved aside and chained after the gates. */
  chained: string | null;
  worktrees: WorktreeHookState[];
}

const real = (p: string) => (existsSync(p) ? realpathSync(p) : path.resolve(p));

/** Worktree directories of the repository (main checkout first), existing ones only. */
export async function listWorktrees(cwd: string): Promise<string[]> {
  const out = await git(['worktree', 'list', '--porcelain'], cwd);
  return out
    .split('\n')
    .filter((l) => l.startsWith('worktree '))
    .map((l) => l.slice('worktree '.length))
    .filter((p) => existsSync(p));
}

/** Where git looks for the pre-commit hook in `worktree`. */
export async function effectiveHook(worktree: string): Promise<string> {
  return real(
    await git(['rev-parse', '--path-format=absolute', '--git-path', 'hooks/pre-commit'], worktree),
  );
}

export async function hookStates(repo: RepoPaths): Promise<WorktreeHookState[]> {
  const ours = real(path.join(repo.commonDir, 'hooks', 'pre-commit'));
  const states: WorktreeHookState[] = [];
  for (const wt of await listWorktrees(repo.worktree)) {
    const hook = await effectiveHook(wt);
    const isOurs = hook === ours && existsSync(hook) && readHead(hook).includes(HOOK_MARKER);
    states.push({ path: wt, hook, active: isOurs });
  }
  return states;
}

function readHead(file: string): string {
  try {
    return readFileSync(file, 'utf8').slice(0, 400);
  } catch {
    return '';
  }
}

export async function installHooks(
  repo: RepoPaths,
  opts: { gatesBin?: string } = {},
): Promise<InstallResult> {
  const gatesBin = opts.gatesBin ?? GATES_BIN;
  const hooksDir = path.join(repo.commonDir, 'hooks');
  const hook = path.join(hooksDir, 'pre-commit');
  await fs.mkdir(hooksDir, { recursive: true });

  // 1. Keep a foreign pre-commit hook: move it aside, the new hook runs it after the gates.
  let chained: string | null = null;
  if (existsSync(hook) && !readHead(hook).includes(HOOK_MARKER)) {
    chained = `${hook}.pre-gates`;
    if (existsSync(chained)) chained = `${hook}.pre-gates.${Date.now()}`;
    await fs.rename(hook, chained);
  }
  await writeFileAtomic(hook, hookScript(gatesBin));
  await fs.chmod(hook, 0o755);

  // 2. Nothing may divert git from the shared hooks directory: unset local and per-worktree
  //    core.hooksPath (husky's relative `hooks/_` does not exist in new worktrees).
  const local = await gitTry(['config', '--local', '--get', 'core.hooksPath'], repo.worktree);
  const previousHooksPath = local.code === 0 ? local.stdout.trim() : null;
  if (previousHooksPath !== null)
    await gitTry(['config', '--local', '--unset-all', 'core.hooksPath'], repo.worktree);
  const worktrees = await listWorktrees(repo.worktree);
  const perWorktree = await gitTry(
    ['config', '--bool', '--get', 'extensions.worktreeConfig'],
    repo.worktree,
  );
  if (perWorktree.stdout.trim() === 'true') {
    for (const wt of worktrees)
      await gitTry(['config', '--worktree', '--unset-all', 'core.hooksPath'], wt);
  }

  // 3. A global or system core.hooksPath would still win: pin the local one to our directory.
  let hooksPath: string | null = null;
  const effective = await gitTry(['config', '--get', 'core.hooksPath'], repo.worktree);
  if (effective.code === 0 && effective.stdout.trim()) {
    hooksPath = hooksDir;
    await git(['config', '--local', 'core.hooksPath', hooksDir], repo.worktree);
  }

  // 4. Verify every worktree resolves the hook to ours.
  const states = await hookStates(repo);
  const inactive = states.filter((s) => !s.active);
  if (inactive.length) {
    throw failure(
      'ERR_HOOKS_INACTIVE',
      `the gates hook is not active in ${inactive.map((s) => s.path).join(', ')} (git runs ${inactive[0]!.hook})`,
      { hint: 'check `git config --show-origin --get-all core.hooksPath` in that worktree' },
    );
  }
  return { hooksDir, hook, gatesBin, previousHooksPath, hooksPath, chained, worktrees: states };
}
