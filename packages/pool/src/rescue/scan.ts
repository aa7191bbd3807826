/**
 * What removing a worktree's files would destroy: one `git status` (porcelain v2, every
 * untracked file, ignored directories listed without being walked), then a walk of the ignored
 * directories only. No symlink is followed.
 */
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { git } from '../git.js';
import { POOL_FILES } from '../worktree.js';

/** Does `rel` (no trailing slash) fall under an entry of `list` (a name: any depth; a path: from the root)? */
export function underList(rel: string, list: string[]): boolean {
  const parts = rel.split('/');
  return list.some((raw) => {
    const e = raw.replace(/^\/+|\/+$/g, '');
    if (!e) return false;
    return e.includes('/') ? rel === e || rel.startsWith(`${e}/`) : parts.includes(e);
  });
}

/** Which ignored files a rescue leaves alone: caches, build outputs, and the slot's configuration. */
export interface ScanRules {
  /** Kept on disk across releases (caches): neither saved nor removed. */
  keep: string[];
  /** Build outputs deleted unsaved by configuration. */
  disposable: string[];
  /**
   * The slot's configuration (files the pool itself put there: included files, setup outputs),
   * as a predicate on the relative path: not the agent's work, so neither saved nor refused,
   * and kept on disk by the clean. It returns false for a file the agent changed.
   */
  configuration?: ((rel: string) => boolean) | undefined;
}

/** What removing a worktree's untracked and ignored files would destroy beyond `git add -A`. */
export interface RemovalScan {
  /** Ignored files outside `keep`, `disposable` and the configuration, with their sizes. */
  ignored: { path: string; size: number }[];
  /** Nested git repositories (relative directory paths) anywhere outside `keep`, submodules included. */
  nested: string[];
  /** Of `nested`, the submodules (gitlinks the index records): `git add -A` records their commit. */
  submodules: string[];
  /** Tracked changes or untracked (not ignored) files outside nested repositories. */
  dirty: boolean;
  /** Untracked files, nested repositories, or ignored files outside `keep`: `git clean` has work to do. */
  needsClean: boolean;
  /** Files whose content `git add -A` saves (changed, added, untracked), for their modes. */
  changed: string[];
  /** Configuration files met (relative paths): the clean keeps them. */
  configuration: string[];
  /** HEAD commit (null on an unborn branch) and the branch it is on (null when detached). */
  head: string | null;
  branch: string | null;
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

/** Populated submodules of the index (gitlinks whose directory holds a `.git`). */
async function populatedSubmodules(dir: string): Promise<string[]> {
  const out = await git(['ls-files', '-s', '-z'], { cwd: dir });
  return out
    .split('\0')
    .filter((e) => e.startsWith('160000 '))
    .map((e) => e.slice(e.indexOf('\t') + 1))
    .filter((rel) => existsSync(path.join(dir, rel, '.git')));
}

/**
 * Lists what `git clean -ffdx` would destroy that `git add -A` does not save: ignored files
 * outside the kept caches, the disposable build outputs and the configuration, and nested
 * repositories (whose commits and files a gitlink does not hold). A submodule with changes
 * (new commits, modified or untracked files) is a nested repository too; with
 * `allSubmodules` (the enclosing repository goes whole) every populated one is.
 */
export async function scanRemovals(
  dir: string,
  rules: ScanRules,
  allSubmodules = false,
): Promise<RemovalScan> {
  const { keep, disposable, configuration } = rules;
  const out = await git(
    ['status', '--porcelain=v2', '--branch', '-z', '--untracked-files=all', '--ignored=matching'],
    { cwd: dir },
  );
  const scan: RemovalScan = {
    ignored: [],
    nested: [],
    submodules: [],
    dirty: false,
    needsClean: false,
    changed: [],
    configuration: [],
    head: null,
    branch: null,
  };
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
  const entries = out.split('\0');
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    if (e.startsWith('# branch.oid ')) {
      const oid = e.slice('# branch.oid '.length);
      scan.head = oid === '(initial)' ? null : oid;
      continue;
    }
    if (e.startsWith('# branch.head ')) {
      const b = e.slice('# branch.head '.length);
      scan.branch = b === '(detached)' ? null : b;
      continue;
    }
    if (e.startsWith('1 ') || e.startsWith('2 ') || e.startsWith('u ')) {
      // `1 XY sub mH mI mW hH hI path`, `2 … X<score> path` + the original path, `u …` (10 fields)
      const f = e.split(' ');
      const fields = e.startsWith('1 ') ? 8 : e.startsWith('2 ') ? 9 : 10;
      const rel = f.slice(fields).join(' ');
      if (e.startsWith('2 ')) i++;
      if (f[2]!.startsWith('S')) {
        // A submodule with new commits, changes or untracked files: saved like a nested repository.
        if (!underList(rel, keep) && existsSync(path.join(dir, rel, '.git'))) {
          scan.nested.push(rel);
          scan.submodules.push(rel);
        }
        scan.dirty ||= f[2]![1] === 'C';
        continue;
      }
      scan.dirty = true;
      if (f[1]![1] !== 'D' && f[1]![0] !== 'D') scan.changed.push(rel);
      continue;
    }
    const kind = e.slice(0, 2);
    if (kind !== '? ' && kind !== '! ') continue;
    const rel = e.slice(2).replace(/\/+$/, '');
    // The pool's own files are removed by the release itself (removePoolFiles), not by clean.
    // An untracked (not ignored) file is work even inside a kept cache.
    if (!rel || POOL_FILES.includes(rel) || (kind === '! ' && underList(rel, keep))) continue;
    scan.needsClean = true;
    const root = nestedRoot(rel);
    if (root !== null) {
      if (!scan.nested.includes(root)) scan.nested.push(root);
      continue;
    }
    if (kind === '? ') {
      // With --untracked-files=all, an untracked directory entry is a repository git stops at.
      if (e.endsWith('/')) await walk(dir, rel, null, scan.nested);
      else {
        scan.dirty = true;
        scan.changed.push(rel);
      }
      continue;
    }
    if (configuration?.(rel)) {
      scan.configuration.push(rel);
      continue;
    }
    const found: { path: string; size: number }[] = [];
    await walk(dir, rel, underList(rel, disposable) ? null : found, scan.nested);
    for (const f of found) {
      if (configuration?.(f.path)) scan.configuration.push(f.path);
      else scan.ignored.push(f);
    }
  }
  if (allSubmodules) {
    for (const rel of await populatedSubmodules(dir)) {
      if (underList(rel, keep) || scan.submodules.includes(rel)) continue;
      scan.nested.push(rel);
      scan.submodules.push(rel);
    }
  }
  scan.nested = [...new Set(scan.nested)];
  if (scan.nested.length) scan.needsClean = true;
  return scan;
}
