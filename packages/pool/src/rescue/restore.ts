/**
 * Restoring a rescue into a directory: every file of its tree (the worktree as it was, ignored
 * files included) and every nested repository (a repository again, with its branches and HEAD,
 * its uncommitted and ignored files as uncommitted files), byte for byte, with the permission
 * bits the manifest recorded. Everything is checked before anything is written: an existing
 * file that differs is a conflict (exit 5, nothing written) unless `force`; a file identical to
 * the rescue's is left as it is. A directory is never removed, and no symlink is followed.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { conflictError } from '@wtpool/core';
import { git } from '../git.js';
import { readLevels, resolveRescue, safeRel, type Level } from './show.js';

export interface RestoreResult {
  ref: string;
  into: string;
  /** Files written (relative to `into`). */
  written: string[];
  /** Files already there with the rescue's content and mode (left alone). */
  unchanged: number;
  /** Existing files that differed and were overwritten (`force`). */
  overwritten: string[];
  /** Nested repositories restored (relative to `into`), with the branches given back. */
  nested: { path: string; branches: string[]; head: string | null; existed: boolean }[];
}

interface Entry {
  mode: string;
  sha: string;
  rel: string;
}

/** The blobs and symlinks of a tree (gitlinks are the nested repositories, restored on their own). */
async function treeEntries(mainRoot: string, commit: string): Promise<Entry[]> {
  const out = await git(['ls-tree', '-r', '-z', '--full-tree', commit], { cwd: mainRoot });
  const res: Entry[] = [];
  for (const line of out.split('\0')) {
    if (!line) continue;
    const tab = line.indexOf('\t');
    const [mode, type, sha] = line.slice(0, tab).split(' ');
    if (type !== 'blob') continue;
    res.push({ mode: mode!, sha: sha!, rel: line.slice(tab + 1) });
  }
  return res;
}

const flatten = (l: Level): Level[] => [l, ...l.children.flatMap(flatten)];

/** The mode a file must end with: the manifest's bits, else what git keeps. */
const wantMode = (l: Level, e: Entry) =>
  l.manifest?.modes[e.rel] ?? (e.mode === '100755' ? 0o755 : 0o644);

/**
 * Restores rescue `name` into `into` (created if missing). Throws conflictError (exit 5,
 * nothing written) naming the files that differ, unless `force`.
 */
export async function restoreRescue(
  mainRoot: string,
  name: string,
  into: string,
  opts: { force?: boolean } = {},
): Promise<RestoreResult> {
  const { ref } = await resolveRescue(mainRoot, name);
  const root = path.resolve(into);
  const levels = flatten(await readLevels(mainRoot, ref));
  const plan: { level: Level; entries: Entry[] }[] = [];
  const conflicts: string[] = [];
  const refusals: string[] = [];
  const inTheWay = new Set<string>(); // files where a directory must go (removed with force)
  const existingRepos = new Set<string>();
  const checkedDirs = new Map<string, 'dir' | 'missing'>();

  /** Every directory between `root` and `rel`'s parent: a real directory, missing, or in the way. */
  const checkParents = async (rel: string): Promise<boolean> => {
    const parts = rel.split('/');
    for (let i = 1; i < parts.length; i++) {
      const d = parts.slice(0, i).join('/');
      const known = checkedDirs.get(d);
      if (known === 'missing') return true;
      if (known === 'dir') continue;
      const st = await fs.lstat(path.join(root, d)).catch(() => null);
      if (!st) {
        checkedDirs.set(d, 'missing');
        return true;
      }
      if (st.isSymbolicLink()) {
        refusals.push(`${d} (a symlink: never followed)`);
        return false;
      }
      if (!st.isDirectory()) {
        conflicts.push(d);
        inTheWay.add(d);
        checkedDirs.set(d, 'missing');
        return true;
      }
      checkedDirs.set(d, 'dir');
    }
    return true;
  };

  const hashes: { abs: string; rel: string; e: Entry; l: Level }[] = [];
  let unchanged = 0;
  const files = new Set<string>(); // every path the plan writes, for the nested levels' check
  for (const level of levels) {
    if (level.dir) {
      const parts = level.dir.split('/');
      if (parts.some((_, i) => files.has(parts.slice(0, i + 1).join('/')))) {
        refusals.push(`${level.dir} (a file of the rescue is there)`);
        continue;
      }
      if (!(await checkParents(`${level.dir}/.git`))) continue;
      const gitSt = await fs.lstat(path.join(root, level.dir, '.git')).catch(() => null);
      if (gitSt) {
        existingRepos.add(level.dir);
        conflicts.push(`${level.dir}/.git (a repository is there)`);
      }
    }
    const entries: Entry[] = [];
    for (const e of await treeEntries(mainRoot, level.commit)) {
      const rel = level.dir ? `${level.dir}/${e.rel}` : e.rel;
      if (!safeRel(e.rel) || e.rel.includes('\n')) {
        refusals.push(`${rel} (an unsafe path)`);
        continue;
      }
      files.add(rel);
      if (!(await checkParents(rel))) continue;
      const abs = path.join(root, rel);
      const st = await fs.lstat(abs).catch(() => null);
      if (!st) {
        entries.push(e);
        continue;
      }
      if (st.isDirectory()) {
        refusals.push(`${rel} (a directory is there)`);
        continue;
      }
      if (e.mode === '120000' || st.isSymbolicLink() || !st.isFile()) {
        // A symlink: same target, else a conflict (its target text is the blob).
        const same =
          e.mode === '120000' &&
          st.isSymbolicLink() &&
          (await git(['cat-file', 'blob', e.sha], { cwd: mainRoot })) === (await fs.readlink(abs));
        if (same) unchanged++;
        else {
          conflicts.push(rel);
          entries.push(e);
        }
        continue;
      }
      hashes.push({ abs, rel, e, l: level });
      entries.push(e);
    }
    plan.push({ level, entries });
  }
  // Existing regular files: the same blob and mode is no conflict (one git process for all).
  const same = new Set<string>();
  if (hashes.length) {
    const shas = (
      await git(['hash-object', '--no-filters', '--stdin-paths'], {
        cwd: mainRoot,
        input: hashes.map((h) => h.abs).join('\n') + '\n',
      })
    )
      .trim()
      .split('\n');
    for (let i = 0; i < hashes.length; i++) {
      const h = hashes[i]!;
      const st = await fs.lstat(h.abs);
      if (shas[i] === h.e.sha && (st.mode & 0o7777) === wantMode(h.l, h.e)) {
        same.add(h.abs);
        unchanged++;
      } else conflicts.push(h.rel);
    }
  }
  if (refusals.length) {
    throw conflictError(
      `cannot restore ${ref} into ${root}: ${refusals.slice(0, 8).join(', ')}${refusals.length > 8 ? ', …' : ''}; nothing was written`,
      { hint: 'restore into an empty directory (--into DIR)', details: { refusals } },
    );
  }
  if (conflicts.length && !opts.force) {
    throw conflictError(
      `restoring ${ref} would overwrite ${conflicts.length} existing file(s) in ${root}: ${conflicts.slice(0, 8).join(', ')}${conflicts.length > 8 ? ', …' : ''}; nothing was written`,
      {
        hint: 'restore into an empty directory (--into DIR), or add --force to overwrite them',
        details: { conflicts },
      },
    );
  }

  const result: RestoreResult = {
    ref,
    into: root,
    written: [],
    unchanged,
    overwritten: opts.force ? conflicts : [],
    nested: [],
  };
  await fs.mkdir(root, { recursive: true });
  for (const d of inTheWay) await fs.rm(path.join(root, d), { force: true });
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'wtpool-restore-'));
  try {
    for (const { level, entries } of plan) {
      const dest = level.dir ? path.join(root, level.dir) : root;
      if (level.dir) result.nested.push(await restoreRepo(mainRoot, level, dest, existingRepos));
      const todo = entries.filter((e) => !same.has(path.join(dest, e.rel)));
      if (!todo.length) continue;
      // git writes the files (its own checks, symlinks, filters) from a temporary index.
      const index = path.join(tmp, `${result.nested.length}.index`);
      const env = { GIT_INDEX_FILE: index };
      await git(['read-tree', level.commit], { cwd: mainRoot, extraEnv: env });
      await fs.mkdir(dest, { recursive: true });
      await git(['checkout-index', '-f', '-z', '--stdin', `--prefix=${dest}/`], {
        cwd: mainRoot,
        extraEnv: env,
        input: todo.map((e) => e.rel).join('\0') + '\0',
      });
      for (const e of todo) {
        if (e.mode !== '120000') await fs.chmod(path.join(dest, e.rel), wantMode(level, e));
        result.written.push(level.dir ? `${level.dir}/${e.rel}` : e.rel);
      }
    }
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
  return result;
}

/**
 * A nested repository again: `git init` (unless one is there), its branches fetched back from
 * the main repository, HEAD on the branch (or commit) it was on, the index at HEAD so its saved
 * work shows as uncommitted changes. Into an existing repository (`force`) the branches go
 * under `refs/wtpool/restored/heads/` and its HEAD and index are left alone.
 */
async function restoreRepo(
  mainRoot: string,
  level: Level,
  dest: string,
  existing: Set<string>,
): Promise<RestoreResult['nested'][number]> {
  const existed = existing.has(level.dir);
  await fs.mkdir(dest, { recursive: true });
  if (!existed) await git(['init', '-q', dest], { cwd: mainRoot });
  const heads = existed ? 'refs/wtpool/restored/heads/' : 'refs/heads/';
  const specs = [`+${level.ref}:refs/wtpool/restored/work`];
  const branches = (
    await git(['for-each-ref', '--format=%(refname)', `${level.under}/heads/`], { cwd: mainRoot })
  )
    .split('\n')
    .filter(Boolean)
    .map((r) => r.slice(`${level.under}/heads/`.length));
  if (branches.length) specs.push(`+${level.under}/heads/*:${heads}*`);
  await git(['fetch', '-q', '--no-tags', '--no-write-fetch-head', mainRoot, ...specs], {
    cwd: dest,
  });
  const m = level.manifest;
  const head = m?.head ?? null;
  if (!existed) {
    if (m?.branch) await git(['symbolic-ref', 'HEAD', m.branch], { cwd: dest });
    else if (head) await git(['update-ref', '--no-deref', 'HEAD', head], { cwd: dest });
    if (head) await git(['read-tree', head], { cwd: dest });
  }
  return { path: level.dir, branches, head, existed };
}
