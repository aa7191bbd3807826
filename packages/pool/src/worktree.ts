/**
 * Git operations on slot worktrees: adding and removing them, switching and detaching, branch
 * deletion, listing. Saving their work before a reset is rescue/'s job. Every call passes an
 * argv array; names reaching git were checked by @wtpool/config (agent, task slug, slot id) or
 * come from the configuration.
 */
import { existsSync, promises as fs, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { commandFailed, gitRun } from '@wtpool/core';
import { ENV_FILE, excludeFromGit } from './envfile.js';
import { git } from './git.js';

/** Files the pool writes into every slot worktree; kept out of commits via info/exclude. */
export const OWNER_MARKER = '.pool-owner';

/** Files the pool itself writes into a leased worktree (ignored through info/exclude). */
export const POOL_FILES = [OWNER_MARKER, ENV_FILE];

/** Removes the lease's marker and env file from a worktree going back to the pool. */
export async function removePoolFiles(dir: string): Promise<void> {
  await Promise.all(POOL_FILES.map((f) => fs.rm(path.join(dir, f), { force: true })));
}

/** Adds the pool's per-slot files to the common `info/exclude` (shared by every worktree). */
export const ensureExcludes = (commonDir: string) =>
  excludeFromGit(commonDir, [OWNER_MARKER, ENV_FILE]);

/** Is `dir` a live worktree checkout (its `.git` file exists)? */
export function worktreeExists(dir: string): boolean {
  return existsSync(path.join(dir, '.git'));
}

/** The worktree's private git dir (`.git/worktrees/<name>`, read from its `.git` file), or `.git`. */
export function worktreeGitDir(dir: string): string {
  const dotGit = path.join(dir, '.git');
  if (statSync(dotGit).isDirectory()) return dotGit; // a plain repository (a nested one)
  const text = readFileSync(dotGit, 'utf8');
  const m = /^gitdir:\s*(.+)$/m.exec(text);
  return m ? path.resolve(dir, m[1]!.trim()) : path.join(dir, '.git');
}

/** Creates a worktree detached at `base` (call under the `worktrees` git lock). */
export async function addWorktree(mainRoot: string, dir: string, base: string): Promise<void> {
  await fs.mkdir(path.dirname(dir), { recursive: true });
  // --force: a registered slot whose directory was deleted is re-added (self-healing);
  // git still refuses a non-empty directory. --detach: no branch, no config write.
  await git(['worktree', 'add', '--force', '--detach', '-q', dir, base], { cwd: mainRoot });
}

export async function removeWorktree(mainRoot: string, dir: string): Promise<void> {
  if (worktreeExists(dir)) {
    await git(['worktree', 'remove', '--force', '--force', dir], { cwd: mainRoot });
  }
  await fs.rm(dir, { recursive: true, force: true });
  await gitRun(['worktree', 'prune'], { cwd: mainRoot });
}

/** A branch's commit read from the ref files (no git process); null when it cannot be told. */
export async function readBranchCommit(commonDir: string, branch: string): Promise<string | null> {
  return readBranchCommitSync(commonDir, branch);
}

/** Uncommitted changes: tracked modifications and untracked (not ignored) files. */
export async function isDirty(dir: string): Promise<boolean> {
  const out = await git(['status', '--porcelain', '--untracked-files=all'], { cwd: dir });
  return out.trim() !== '';
}

/**
 * Back to the base after a rescue (rescue/save.ts): tracked changes discarded, untracked and ignored files
 * removed (nested repositories too, `-ff`) except the kept caches and what `excludes` protects.
 */
export async function cleanToBase(
  dir: string,
  base: string,
  keep: string[],
  excludes: string[],
  clean = true,
): Promise<void> {
  await git(['checkout', '-q', '-f', '--detach', base], { cwd: dir });
  if (!clean) return;
  const ex = [...keep, ...excludes].flatMap((k) => ['-e', k]);
  await git(['clean', '-ffdxq', ...ex], { cwd: dir });
}

/** Number of commits on `ref` that are not in `base` (0 when `ref` does not exist). */
export async function commitsAhead(dir: string, base: string, ref = 'HEAD'): Promise<number> {
  const r = await gitRun(['rev-list', '--count', `${base}..${ref}`, '--'], { cwd: dir });
  return r.code === 0 ? Number(r.stdout.trim()) || 0 : 0;
}

const SHA1 = /^[0-9a-f]{40}$/;

/*
 * Refs, HEAD and branches change only through git (D66): git takes its `<ref>.lock` files,
 * rewrites `packed-refs` under `packed-refs.lock`, writes reflogs and runs the
 * reference-transaction hook. Writing ref files by hand raced `git pack-refs` / `git gc --auto`
 * started by any agent committing in its own worktree (refs-race.slow.test.ts).
 */

/**
 * git refuses now and then while another process runs `pack-refs` / `gc --auto` (a ref read
 * between the loose file's removal and the new packed-refs: "cannot lock ref", "unable to
 * resolve reference", "is at … but expected …"). It refuses, it does not corrupt: such a
 * refusal is retried.
 */
const TRANSIENT_REF =
  /cannot lock ref|unable to resolve reference|reference is missing|but expected/;
const REF_TRIES = 5;

/**
 * Creates the lease branch at `base` and switches the slot to it (`git switch -c`); false when
 * a branch of that name already exists (never taken over). A ready slot sits detached and
 * clean on the base, so git's checkout changes nothing in the tree. A transient refusal is
 * retried; if the refused attempt got as far as creating the branch, the retry checks it out.
 *
 * When the slot's HEAD is detached at the base's commit (a ready slot, read from the files),
 * the branch is created at HEAD (`git switch -c <branch>`, no start point): git then skips the
 * two-tree walk of the index and work tree (on a 2,800-file checkout a third of the command,
 * issue 26); hooks, reflog and the refusal of an existing branch are the same. The branch is
 * checked to point at that commit afterwards (HEAD moved meanwhile: reset to the base as the
 * full command would have).
 */
export async function switchToNewBranch(
  dir: string,
  branch: string,
  base: string,
  commonDir?: string,
): Promise<boolean> {
  const create = ['switch', '-q', '--no-track', '-c', branch, base];
  const at = commonDir === undefined ? null : detachedAtBase(dir, commonDir, base);
  let r = await gitRun(at === null ? create : create.slice(0, -1), { cwd: dir });
  if (r.code === 0 && at !== null && (await readBranchCommit(commonDir!, branch)) !== at) {
    // HEAD moved between the look and the switch: the branch starts at the base all the same.
    r = await gitRun(['switch', '-q', '--no-track', '-C', branch, base], { cwd: dir });
  }
  if (r.code === 0) return true;
  if (/already exists/.test(r.stderr)) return false;
  for (let i = 1; i < REF_TRIES && TRANSIENT_REF.test(r.stderr); i++) {
    const head = await gitRun(['symbolic-ref', '-q', 'HEAD'], { cwd: dir });
    if (head.code === 0 && head.stdout.trim() === `refs/heads/${branch}`) return true;
    const made = await gitRun(['rev-parse', '-q', '--verify', `refs/heads/${branch}`], {
      cwd: dir,
    });
    r = await gitRun(made.code === 0 ? ['switch', '-q', branch] : create, { cwd: dir });
    if (r.code === 0) return true;
  }
  throw commandFailed('git', create, r, { code: 'ERR_GIT', cwd: dir });
}

/**
 * The base's commit when the worktree at `dir` has HEAD detached at it, else null; read from the
 * files synchronously, so that the caller's git starts at once (acquire overlaps it with the
 * services' set-up).
 */
function detachedAtBase(dir: string, commonDir: string, base: string): string | null {
  try {
    const head = readFileSync(path.join(worktreeGitDir(dir), 'HEAD'), 'utf8').trim();
    if (!SHA1.test(head)) return null;
    return readBranchCommitSync(commonDir, base) === head ? head : null;
  } catch {
    return null;
  }
}

/** readBranchCommit, synchronously (two small files at most). */
function readBranchCommitSync(commonDir: string, branch: string): string | null {
  try {
    const sha = readFileSync(path.join(commonDir, 'refs', 'heads', branch), 'utf8').trim();
    if (/^[0-9a-f]{40,64}$/.test(sha)) return sha;
  } catch {
    // packed, or not a branch
  }
  try {
    const packed = readFileSync(path.join(commonDir, 'packed-refs'), 'utf8');
    const want = ` refs/heads/${branch}`;
    const line = packed.split('\n').find((l) => l.endsWith(want) && /^[0-9a-f]{40,64} /.test(l));
    return line ? line.slice(0, line.indexOf(' ')) : null;
  } catch {
    return null;
  }
}

/**
 * Release of a lease that left the worktree clean on `sha`: detaches HEAD at that commit (no
 * checkout needed: tree and index already match) with one `git update-ref --no-deref`, which
 * checks that HEAD still resolves to `sha`. False when it does not hold; the caller then runs
 * the full reset.
 */
export async function detachAt(dir: string, sha: string): Promise<boolean> {
  if (!SHA1.test(sha)) return false;
  const r = await gitRun(['update-ref', '--no-deref', '-m', 'wtpool: release', 'HEAD', sha, sha], {
    cwd: dir,
  });
  return r.code === 0;
}

/**
 * Deletes an empty lease branch if it still points at `sha` (`git update-ref -d <ref> <sha>`:
 * compare-and-delete, loose or packed) and no worktree has it checked out (git branch -D
 * refuses that too). False means: nothing deleted (the caller falls back to `git branch -D`).
 */
export async function deleteBranchAt(
  commonDir: string,
  branch: string,
  sha: string,
): Promise<boolean> {
  const ref = `refs/heads/${branch}`;
  if (!SHA1.test(sha)) return false;
  const heads = [path.join(commonDir, 'HEAD')];
  for (const w of await fs.readdir(path.join(commonDir, 'worktrees')).catch(() => [] as string[]))
    heads.push(path.join(commonDir, 'worktrees', w, 'HEAD'));
  for (const h of heads) {
    const text = await fs.readFile(h, 'utf8').catch(() => '');
    if (text.trim() === `ref: ${ref}`) return false;
  }
  for (let i = 0; i < REF_TRIES; i++) {
    const r = await gitRun(['--git-dir', commonDir, 'update-ref', '-d', ref, sha], {
      cwd: commonDir,
    });
    if (r.code === 0) return true;
    if (!TRANSIENT_REF.test(r.stderr)) return false;
  }
  return false;
}

/**
 * The common release of a clean lease still on `sha` (the base), in one git process instead of
 * two (issue 26): `git update-ref --stdin` runs two transactions, HEAD detached at `sha` (checked:
 * it must still resolve to `sha`), then the empty branch deleted if it still points at `sha`.
 * They cannot be one transaction (git refuses a change to HEAD and to the branch it names). Call
 * under the `refs` git lock, like deleteBranchAt. Returns what was done: 'both', 'detached'
 * (the caller deletes the branch its usual way, with retries), or 'none' (another worktree has
 * the branch checked out, or HEAD moved: the caller takes the full path).
 */
export async function detachAndDeleteBranch(
  dir: string,
  commonDir: string,
  branch: string,
  sha: string,
): Promise<'both' | 'detached' | 'none'> {
  const ref = `refs/heads/${branch}`;
  if (!SHA1.test(sha)) return 'none';
  const own = path.join(worktreeGitDir(dir), 'HEAD');
  const heads = [path.join(commonDir, 'HEAD')];
  for (const w of await fs.readdir(path.join(commonDir, 'worktrees')).catch(() => [] as string[]))
    heads.push(path.join(commonDir, 'worktrees', w, 'HEAD'));
  for (const h of heads) {
    if (path.resolve(h) === path.resolve(own)) continue;
    const text = await fs.readFile(h, 'utf8').catch(() => '');
    if (text.trim() === `ref: ${ref}`) return 'none';
  }
  const input =
    `start\noption no-deref\nupdate HEAD ${sha} ${sha}\nprepare\ncommit\n` +
    `start\ndelete ${ref} ${sha}\nprepare\ncommit\n`;
  const r = await gitRun(['update-ref', '-m', 'wtpool: release', '--stdin'], { cwd: dir, input });
  const committed = r.stdout.split('\n').filter((l) => l === 'commit: ok').length;
  return committed >= 2 ? 'both' : committed === 1 ? 'detached' : 'none';
}

/** `git branch -D`, retried while git refuses transiently; a branch that stays is left (kept). */
export async function deleteBranch(mainRoot: string, branch: string): Promise<void> {
  for (let i = 0; i < REF_TRIES; i++) {
    const r = await gitRun(['branch', '-q', '-D', branch], { cwd: mainRoot });
    if (r.code === 0 || !TRANSIENT_REF.test(r.stderr)) return;
  }
}

export interface RefInfo {
  ref: string;
  commit: string;
  date: string;
  subject: string;
}

/** Refs under a prefix (one git process), newest first. */
export async function listRefs(mainRoot: string, prefix: string): Promise<RefInfo[]> {
  const out = await git(
    [
      'for-each-ref',
      '--sort=-creatordate',
      '--format=%(refname)%00%(objectname)%00%(creatordate:iso-strict)%00%(subject)',
      prefix,
    ],
    { cwd: mainRoot },
  );
  return out
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [ref, commit, date, subject] = line.split('\0');
      return { ref: ref!, commit: commit!, date: date!, subject: subject ?? '' };
    });
}

/** `git worktree list --porcelain`: path → { head, branch }. */
export async function listWorktrees(
  mainRoot: string,
): Promise<{ path: string; head: string | null; branch: string | null; prunable: boolean }[]> {
  const out = await git(['worktree', 'list', '--porcelain'], { cwd: mainRoot });
  const result: { path: string; head: string | null; branch: string | null; prunable: boolean }[] =
    [];
  for (const block of out.split('\n\n')) {
    const lines = block.split('\n').filter(Boolean);
    const wt = lines.find((l) => l.startsWith('worktree '));
    if (!wt) continue;
    const get = (k: string) =>
      lines.find((l) => l.startsWith(k + ' '))?.slice(k.length + 1) ?? null;
    result.push({
      path: wt.slice('worktree '.length),
      head: get('HEAD'),
      branch: get('branch'),
      prunable: lines.some((l) => l.startsWith('prunable')),
    });
  }
  return result;
}

export interface OwnerMarker {
  slot: string;
  agent: string;
  task: string;
  token: number;
  host: string;
  pid: number | null;
  acquiredAt: string;
  stateDir: string;
}

export async function readOwnerMarker(dir: string): Promise<OwnerMarker | null> {
  try {
    return JSON.parse(await fs.readFile(path.join(dir, OWNER_MARKER), 'utf8')) as OwnerMarker;
  } catch {
    return null;
  }
}
