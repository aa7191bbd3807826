/**
 * Git operations on slot worktrees. Every call passes an argv array; names reaching git were
 * checked by @wtpool/config (agent, task slug, slot id) or come from the configuration.
 */
import { createHash } from 'node:crypto';
import { existsSync, promises as fs, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { commandFailed, conflictError, errno, gitRun } from '@wtpool/core';
import { ENV_FILE, excludeFromGit } from './envfile.js';
import { git } from './git.js';

/** Files the pool writes into every slot worktree; kept out of commits via info/exclude. */
export const OWNER_MARKER = '.pool-owner';

// Rescue commits are made by the pool, whatever the user's git identity is.
const POOL_IDENTITY = {
  GIT_AUTHOR_NAME: 'worktree-pool',
  GIT_AUTHOR_EMAIL: 'wtpool@localhost',
  GIT_COMMITTER_NAME: 'worktree-pool',
  GIT_COMMITTER_EMAIL: 'wtpool@localhost',
};

/** Files the pool itself writes into a leased worktree (ignored through info/exclude). */
const POOL_FILES = [OWNER_MARKER, ENV_FILE];

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

export interface WorktreeStatus {
  /** Tracked changes or untracked (not ignored) files. */
  dirty: boolean;
  /** Untracked files, or ignored files outside the kept caches: `git clean` has work to do. */
  needsClean: boolean;
  /** HEAD commit (null on an unborn branch). */
  head: string | null;
  /** Checked-out branch (null when detached). */
  branch: string | null;
}

/**
 * One git process for everything a release needs to know: changes, untracked and ignored
 * files (`--ignored=matching` lists ignored directories without walking them), HEAD and branch.
 */
export async function worktreeStatus(dir: string, keep: string[]): Promise<WorktreeStatus> {
  const out = await git(
    [
      'status',
      '--porcelain=v2',
      '--branch',
      '-z',
      '--untracked-files=normal',
      '--ignored=matching',
    ],
    { cwd: dir },
  );
  const kept = new Set(keep.map((k) => k.replace(/^\/+|\/+$/g, '')));
  const st: WorktreeStatus = { dirty: false, needsClean: false, head: null, branch: null };
  const entries = out.split('\0');
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    if (e.startsWith('# branch.oid ')) {
      const oid = e.slice('# branch.oid '.length);
      st.head = oid === '(initial)' ? null : oid;
    } else if (e.startsWith('# branch.head ')) {
      const b = e.slice('# branch.head '.length);
      st.branch = b === '(detached)' ? null : b;
    } else if (e.startsWith('? ')) {
      st.dirty = true;
      st.needsClean = true;
    } else if (e.startsWith('! ')) {
      const name = e.slice(2).replace(/\/+$/, '');
      // The pool's own files are removed by the release itself (removePoolFiles), not by clean.
      if (!kept.has(name) && !POOL_FILES.includes(name)) st.needsClean = true;
    } else if (/^[12u] /.test(e)) {
      st.dirty = true;
      if (e.startsWith('2 ')) i++; // a rename carries its original path as the next entry
    }
  }
  return st;
}

/** A branch's commit read from the ref files (no git process); null when it cannot be told. */
export async function readBranchCommit(commonDir: string, branch: string): Promise<string | null> {
  try {
    const sha = (await fs.readFile(path.join(commonDir, 'refs', 'heads', branch), 'utf8')).trim();
    if (/^[0-9a-f]{40,64}$/.test(sha)) return sha;
  } catch {
    // packed, or not a branch
  }
  try {
    const packed = await fs.readFile(path.join(commonDir, 'packed-refs'), 'utf8');
    const want = ` refs/heads/${branch}`;
    const line = packed.split('\n').find((l) => l.endsWith(want) && /^[0-9a-f]{40,64} /.test(l));
    return line ? line.slice(0, line.indexOf(' ')) : null;
  } catch {
    return null;
  }
}

/** Uncommitted changes: tracked modifications and untracked (not ignored) files. */
export async function isDirty(dir: string): Promise<boolean> {
  const out = await git(['status', '--porcelain', '--untracked-files=all'], { cwd: dir });
  return out.trim() !== '';
}

/** A ref-safe timestamp: 2026-11-22T10-00-00-123Z. */
export const refStamp = (d = new Date()) => d.toISOString().replace(/[:.]/g, '-');

/**
 * Saves everything in the worktree (tracked changes, untracked files, and the `ignored` paths) as
 * a commit on top of HEAD under `<prefix><timestamp>`, without touching the worktree, its
 * index or its branch: a temporary index gets `add -A`, then write-tree + commit-tree.
 */
export async function saveRescue(
  dir: string,
  refPrefix: string,
  message: string,
  ignored: string[] = [],
  stamp: string = refStamp(),
): Promise<string> {
  const gitDir = worktreeGitDir(dir);
  const tmpIndex = path.join(
    gitDir,
    `wtpool-rescue-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}.index`,
  );
  try {
    // Starting from a copy of the real index lets git reuse its stat cache.
    await fs.copyFile(path.join(gitDir, 'index'), tmpIndex).catch((e) => {
      if (errno(e) !== 'ENOENT') throw e;
    });
    const env = { GIT_INDEX_FILE: tmpIndex, ...POOL_IDENTITY };
    await git(['add', '-A'], { cwd: dir, extraEnv: env });
    if (ignored.length) {
      // Ignored files the clean would delete: forced in, named literally (no glob magic).
      await git(['add', '-f', '--pathspec-from-file=-', '--pathspec-file-nul'], {
        cwd: dir,
        extraEnv: { ...env, GIT_LITERAL_PATHSPECS: '1' },
        input: ignored.join('\0'),
      });
    }
    const tree = (await git(['write-tree'], { cwd: dir, extraEnv: env })).trim();
    const head = await gitRun(['rev-parse', '--verify', '-q', 'HEAD'], { cwd: dir });
    const parents = head.code === 0 ? ['-p', head.stdout.trim()] : [];
    const commit = (
      await git(['commit-tree', tree, ...parents, '-m', message], { cwd: dir, extraEnv: env })
    ).trim();
    for (let i = 0; ; i++) {
      const ref = `${refPrefix}${i ? refStamp() : stamp}${i ? `-${i}` : ''}`;
      // The empty old value makes this create-only: two rescues never overwrite each other.
      const r = await gitRun(['update-ref', '-m', 'wtpool rescue', ref, commit, ''], { cwd: dir });
      if (r.code === 0) return ref;
      if (i >= 5) await git(['update-ref', ref, commit, ''], { cwd: dir });
    }
  } finally {
    await fs.rm(tmpIndex, { force: true });
  }
}

/**
 * Does `rel` (no trailing slash) fall under an entry of `list` (a name: any depth; a path, or
 * a name with a leading `/` — the slot's own configuration files — from the root)?
 */
export function underList(rel: string, list: string[]): boolean {
  const parts = rel.split('/');
  return list.some((raw) => {
    const e = raw.replace(/^\/+|\/+$/g, '');
    if (!e) return false;
    return e.includes('/') || raw.startsWith('/')
      ? rel === e || rel.startsWith(`${e}/`)
      : parts.includes(e);
  });
}

/** What removing a worktree's untracked and ignored files would destroy beyond `git add -A`. */
export interface RemovalScan {
  /** Ignored files outside `keep` and `disposable` (relative paths), with their sizes. */
  ignored: { path: string; size: number }[];
  /** Nested git repositories (relative directory paths) anywhere outside `keep`. */
  nested: string[];
}

/** Walks a directory (no symlinks followed): its files, and the nested repositories it holds. */
async function walk(
  root: string,
  rel: string,
  files: { path: string; size: number }[] | null,
  nested: string[],
): Promise<void> {
  const abs = path.join(root, rel);
  let st;
  try {
    st = await fs.lstat(abs);
  } catch {
    return;
  }
  if (!st.isDirectory()) {
    files?.push({ path: rel, size: st.size });
    return;
  }
  if (existsSync(path.join(abs, '.git'))) {
    nested.push(rel);
    return;
  }
  for (const e of await fs.readdir(abs)) await walk(root, rel ? `${rel}/${e}` : e, files, nested);
}

/**
 * Lists what `git clean -ffdx` would destroy that `git add -A` does not save: ignored files
 * outside the kept caches and the disposable build outputs, and nested repositories (whose
 * commits and files a gitlink does not hold). One git process, then a walk of the untracked
 * and ignored directories only.
 */
export async function scanRemovals(
  dir: string,
  keep: string[],
  disposable: string[],
): Promise<RemovalScan> {
  const out = await git(
    ['status', '--porcelain=v1', '-z', '--untracked-files=all', '--ignored=matching'],
    { cwd: dir },
  );
  const scan: RemovalScan = { ignored: [], nested: [] };
  // A directory holding `.git` that git does not take for a repository (a broken one) is
  // walked into by status: its files are listed one by one. It is a nested repository still.
  const seen = new Map<string, boolean>();
  const nestedRoot = (rel: string): string | null => {
    const parts = rel.split('/');
    for (let i = 1; i < parts.length; i++) {
      const d = parts.slice(0, i).join('/');
      let has = seen.get(d);
      if (has === undefined) seen.set(d, (has = existsSync(path.join(dir, d, '.git'))));
      if (has) return d;
    }
    return null;
  };
  for (const e of out.split('\0')) {
    const kind = e.slice(0, 3);
    if (kind !== '?? ' && kind !== '!! ') continue;
    const rel = e.slice(3).replace(/\/+$/, '');
    if (!rel || underList(rel, keep) || POOL_FILES.includes(rel)) continue;
    const root = nestedRoot(rel);
    if (root !== null) {
      if (!scan.nested.includes(root)) scan.nested.push(root);
      continue;
    }
    // With --untracked-files=all, an untracked directory entry is a repository git stops at.
    if (kind === '?? ') {
      if (e.endsWith('/')) await walk(dir, rel, null, scan.nested);
      continue;
    }
    await walk(dir, rel, underList(rel, disposable) ? null : scan.ignored, scan.nested);
  }
  scan.nested = [...new Set(scan.nested)];
  // Kept files inside a walked ignored directory (a setup output beside an agent's file).
  scan.ignored = scan.ignored.filter((f) => !underList(f.path, keep));
  return scan;
}

/** A gitignore pattern matching exactly this relative path (for `git clean -e`). */
const exactPattern = (rel: string) => `/${rel.replace(/[\\*?[\]!#]/g, (c) => `\\${c}`)}`;

/** A ref-safe, unique slug of a relative path. */
function pathSlug(rel: string): string {
  const h = createHash('sha256').update(rel).digest('hex').slice(0, 8);
  const base = rel
    .replace(/[^A-Za-z0-9_-]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .slice(0, 60);
  return `${base || 'repo'}-${h}`;
}

export interface RescueLimits {
  keep: string[];
  disposable: string[];
  /** Total size of the ignored files saved into one rescue commit. */
  maxBytes: number;
  /** Remove nested repositories that could not be saved (`--discard-nested`). */
  discardNested?: boolean;
}

/** The rescue limits of a pool configuration. */
export const limitsOf = (
  p: { keep: string[]; disposable: string[]; rescueMaxBytes: number },
  discardNested = false,
): RescueLimits => ({
  keep: p.keep,
  disposable: p.disposable,
  maxBytes: p.rescueMaxBytes,
  discardNested,
});

export interface RescueOutcome {
  /** The rescue commit of the worktree (null when nothing needed saving). */
  ref: string | null;
  /** Ignored files saved into it. */
  ignoredSaved: string[];
  /** Ignored files not saved (over maxBytes): left on disk, never cleaned. */
  unsaved: string[];
  /** Nested repositories saved: their rescue commit and branches fetched under `ref`. */
  nested: { path: string; ref: string }[];
  /** Nested repositories that could not be saved and are removed anyway (discardNested). */
  discarded: string[];
  /** `git clean -e` patterns for what was not saved. */
  excludes: string[];
  /** Bytes of ignored files saved (here and in the nested repositories). */
  savedBytes: number;
}

/** Where a nested repository's own rescue commit is made (inside it) before it is fetched. */
const NESTED_PREFIX = 'refs/wtpool/nested-rescue/';

/**
 * Saves a nested repository into the enclosing repository's rescue refs: a rescue commit of
 * its work (inside it), then that commit and its branches fetched under `<under>/`. Verified
 * by reading the ref back.
 */
async function saveNested(
  outer: string,
  rel: string,
  under: string,
  limits: RescueLimits,
): Promise<{ ref: string; bytes: number }> {
  const abs = path.join(outer, rel);
  const inner = await rescueDeep(
    abs,
    NESTED_PREFIX,
    `wtpool rescue of nested repository ${rel}`,
    { ...limits, discardNested: false },
    true,
  );
  if (!inner.ref) throw conflictError(`nested repository ${rel}: no rescue commit`);
  if (inner.unsaved.length) {
    throw conflictError(
      `nested repository ${rel}: ${inner.unsaved.length} ignored file(s) over the rescue size limit`,
    );
  }
  const work = `${under}/work`;
  const specs = [`+${inner.ref}:${work}`];
  const heads = await gitRun(['for-each-ref', '--format=%(refname)', 'refs/heads/'], { cwd: abs });
  if (heads.code === 0 && heads.stdout.trim()) specs.push(`+refs/heads/*:${under}/heads/*`);
  // The repositories nested inside it were saved into its own refs: those come along.
  const innerRefs = await gitRun(['for-each-ref', '--format=%(refname)', NESTED_PREFIX], {
    cwd: abs,
  });
  for (const r of innerRefs.stdout.split('\n').filter((x) => x.includes('-nested/'))) {
    specs.push(`+${r}:${under}/inner/${r.slice(NESTED_PREFIX.length)}`);
  }
  await git(['fetch', '-q', '--no-tags', '--no-write-fetch-head', abs, ...specs], { cwd: outer });
  const want = (await git(['rev-parse', '--verify', `${inner.ref}^{commit}`], { cwd: abs })).trim();
  const got = (await git(['rev-parse', '--verify', `${work}^{commit}`], { cwd: outer })).trim();
  if (want !== got)
    throw conflictError(`nested repository ${rel}: fetched ${got}, expected ${want}`);
  return { ref: work, bytes: inner.savedBytes };
}

/**
 * The rescue before files are removed: tracked changes and untracked files (`add -A`), the
 * ignored files outside `keep`/`disposable` (`add -f`, up to `maxBytes` in total; the rest is
 * listed and excluded from the clean), and every nested repository (its own rescue commit and
 * branches fetched into `<ref>-nested/<slug>/…`). A nested repository that cannot be saved is
 * a refusal (exit 5) unless `discardNested`. `always`: make the commit even when clean.
 */
export async function rescueDeep(
  dir: string,
  refPrefix: string,
  message: string,
  limits: RescueLimits,
  always = false,
): Promise<RescueOutcome> {
  const scan = await scanRemovals(dir, limits.keep, limits.disposable);
  const res: RescueOutcome = {
    ref: null,
    ignoredSaved: [],
    unsaved: [],
    nested: [],
    discarded: [],
    excludes: [],
    savedBytes: 0,
  };
  let budget = limits.maxBytes;
  for (const f of [...scan.ignored].sort((a, b) => a.size - b.size || (a.path < b.path ? -1 : 1))) {
    if (f.size <= budget) {
      budget -= f.size;
      res.savedBytes += f.size;
      res.ignoredSaved.push(f.path);
    } else {
      res.unsaved.push(f.path);
      res.excludes.push(exactPattern(f.path));
    }
  }
  // Nested repositories first: one that cannot be saved refuses before anything is written.
  const stampNow = refStamp();
  const stamp = `${refPrefix}${stampNow}`;
  const failed: string[] = [];
  for (const rel of scan.nested) {
    try {
      const under = `${stamp}-nested/${pathSlug(rel)}`;
      // One size limit for the whole rescue: a nested repository gets what is left of it.
      const saved = await saveNested(dir, rel, under, { ...limits, maxBytes: budget });
      budget -= saved.bytes;
      res.savedBytes += saved.bytes;
      res.nested.push({ path: rel, ref: saved.ref });
    } catch (e) {
      failed.push(`${rel} (${e instanceof Error ? e.message : String(e)})`);
      if (limits.discardNested) res.discarded.push(rel);
      else res.excludes.push(exactPattern(rel));
    }
  }
  if (failed.length && !limits.discardNested) {
    throw conflictError(
      `nested repository could not be saved: ${failed.join('; ')}; nothing was removed`,
      {
        hint: 'commit and push its work, or move it out of the worktree; `--discard-nested` removes it unsaved',
      },
    );
  }
  if (always || (await isDirty(dir)) || res.ignoredSaved.length || scan.nested.length) {
    res.ref = await saveRescue(dir, refPrefix, message, res.ignoredSaved, stampNow);
  }
  return res;
}

/**
 * Back to the base after rescueDeep: tracked changes discarded, untracked and ignored files
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
 */
export async function switchToNewBranch(
  dir: string,
  branch: string,
  base: string,
): Promise<boolean> {
  const create = ['switch', '-q', '--no-track', '-c', branch, base];
  let r = await gitRun(create, { cwd: dir });
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
