/**
 * Armed hooks: the repository's git hooks must run for commits in every slot worktree. With
 * husky, `core.hooksPath` is `hooks/_` — relative, so resolved in each worktree — and `hooks/_`
 * is git-ignored, so a fresh `git worktree add` has no hooks at all and commits skip them
 * silently. Arming copies the main checkout's hooks directory into the worktree (the copy
 * carries husky's own `.gitignore`, so it never shows up in `git status`).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { failure, gitRun } from '@wtpool/core';
import type { SlotProvider } from './provider.js';

export interface ArmResult {
  /** What was found: no hooksPath (the shared hooks dir applies), absolute, or relative. */
  hooksPath: string | null;
  /** True when files were copied into the worktree. */
  armed: boolean;
  reason: string;
}

async function exists(p: string): Promise<boolean> {
  return fs.stat(p).then(
    () => true,
    () => false,
  );
}

/** The effective core.hooksPath seen from a worktree (null when not set). */
export function readHooksPath(worktree: string): Promise<string | null> {
  return gitRun(['config', '--get', 'core.hooksPath'], { cwd: worktree })
    .then((r) => (r.code === 0 && r.stdout.trim()) || null) // exit 1: not set
    .catch(() => null);
}

export async function armHooks(
  mainRoot: string,
  worktree: string,
  known?: Promise<string | null>,
): Promise<ArmResult> {
  const hooksPath = await (known ?? readHooksPath(worktree));
  if (hooksPath === null) {
    return { hooksPath, armed: false, reason: 'no core.hooksPath: the shared .git/hooks apply' };
  }
  if (path.isAbsolute(hooksPath)) {
    return { hooksPath, armed: false, reason: 'absolute core.hooksPath applies to every worktree' };
  }
  const src = path.resolve(mainRoot, hooksPath);
  const dst = path.resolve(worktree, hooksPath);
  if (!dst.startsWith(path.resolve(worktree) + path.sep)) {
    throw failure('ERR_HOOKS_PATH', `core.hooksPath ${hooksPath} points outside the worktree`);
  }
  if (!(await exists(src))) {
    return { hooksPath, armed: false, reason: `${src} does not exist in the main checkout` };
  }
  const want = (await fs.readdir(src)).sort();
  const have = (await exists(dst)) ? (await fs.readdir(dst)).sort() : [];
  if (want.every((f) => have.includes(f))) {
    return { hooksPath, armed: false, reason: 'already armed' };
  }
  await fs.cp(src, dst, { recursive: true, force: false, errorOnExist: false });
  return { hooksPath, armed: true, reason: `copied ${src} → ${dst}` };
}

/** Always on: arms the hooks when a slot is provisioned; `check` re-arms and reports drift. */
export function hooksProvider(): SlotProvider {
  // A new worktree has no config of its own: one read serves every slot provisioned by this
  // process (`init --size 10` would otherwise run git ten times for the same answer).
  let shared: Promise<string | null> | undefined;
  return {
    name: 'hooks',
    async provision(ctx) {
      shared ??= readHooksPath(ctx.names.path);
      const r = await armHooks(ctx.repo.mainRoot, ctx.names.path, shared);
      if (r.armed) ctx.progress(`${ctx.names.id}: hooks armed (${r.hooksPath})`);
    },
    async check(ctx) {
      const r = await armHooks(ctx.repo.mainRoot, ctx.names.path);
      return r.armed ? [`${ctx.names.id}: hooks were not armed (fixed: ${r.reason})`] : [];
    },
  };
}
