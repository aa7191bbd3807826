/**
 * Saving a worktree's work before its files are removed: a rescue commit on top of HEAD (tracked
 * changes, untracked files, the ignored files outside the caches, build outputs and the slot's
 * configuration), and every nested repository (submodules included, recursively) saved into
 * refs beside it. Nothing in the worktree, its index or its branch changes. What cannot be saved
 * refuses before anything is written.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { conflictError, errno, gitRun } from '@wtpool/core';
import { git } from '../git.js';
import { worktreeGitDir } from '../worktree.js';
import { withManifest, type Manifest, type NestedEntry } from './manifest.js';
import { scanRemovals, type RemovalScan, type ScanRules } from './scan.js';

// Rescue commits are made by the pool, whatever the user's git identity is.
const POOL_IDENTITY = {
  GIT_AUTHOR_NAME: 'worktree-pool',
  GIT_AUTHOR_EMAIL: 'wtpool@localhost',
  GIT_COMMITTER_NAME: 'worktree-pool',
  GIT_COMMITTER_EMAIL: 'wtpool@localhost',
};

/** Where a nested repository's own rescue commit is made (inside it) before it is fetched. */
export const NESTED_PREFIX = 'refs/wtpool/nested-rescue/';

/** A ref-safe timestamp: 2026-11-22T10-00-00-123Z. */
export const refStamp = (d = new Date()) => d.toISOString().replace(/[:.]/g, '-');

export interface RescueLimits extends ScanRules {
  /** Total size of the ignored files saved into one rescue (nested repositories included). */
  maxBytes: number;
  /** Remove nested repositories that could not be saved (`--discard-nested`). */
  discardNested?: boolean;
}

/** The rescue limits of a pool configuration. */
export const limitsOf = (
  p: { keep: string[]; disposable: string[]; rescueMaxBytes: number },
  discardNested = false,
  configuration?: (rel: string) => boolean,
): RescueLimits => ({
  keep: p.keep,
  disposable: p.disposable,
  maxBytes: p.rescueMaxBytes,
  discardNested,
  configuration,
});

export interface RescueOutcome {
  /** The rescue commit of the worktree (null when nothing needed saving). */
  ref: string | null;
  /** Ignored files saved into it. */
  ignoredSaved: string[];
  /**
   * Ignored files not saved (over maxBytes). Always empty: a file that cannot be saved refuses
   * the whole rescue (kept for the shape of `release --json`).
   */
  unsaved: string[];
  /** Nested repositories saved: their rescue commit and branches fetched under `ref`. */
  nested: { path: string; ref: string }[];
  /** Nested repositories that could not be saved and are removed anyway (discardNested). */
  discarded: string[];
  /** `git clean -e` patterns for what the clean must keep (the slot's configuration). */
  excludes: string[];
  /** Bytes of ignored files saved (here and in the nested repositories). */
  savedBytes: number;
}

/** A gitignore pattern matching exactly this relative path (for `git clean -e`). */
export const exactPattern = (rel: string) => `/${rel.replace(/[\\*?[\]!#]/g, (c) => `\\${c}`)}`;

/** A ref-safe, unique slug of a relative path. */
function pathSlug(rel: string): string {
  const h = createHash('sha256').update(rel).digest('hex').slice(0, 8);
  const base = rel
    .replace(/[^A-Za-z0-9_-]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .slice(0, 60);
  return `${base || 'repo'}-${h}`;
}

/** Permission bits git would not give back (it keeps only 0644 or 0755) of the saved files. */
async function oddModes(dir: string, rels: string[]): Promise<Record<string, number>> {
  const modes: Record<string, number> = {};
  await Promise.all(
    rels.map(async (rel) => {
      const st = await fs.lstat(path.join(dir, rel)).catch(() => null);
      const bits = st && st.isFile() ? st.mode & 0o7777 : null;
      if (bits !== null && bits !== 0o644 && bits !== 0o755) modes[rel] = bits;
    }),
  );
  return modes;
}

/**
 * The rescue commit: a temporary index gets `add -A` (without the untracked nested
 * repositories, saved on their own) and the `ignored` paths forced in, then write-tree +
 * commit-tree on top of HEAD, under `<prefix><stamp>` (create-only: two rescues never
 * overwrite each other). Its message carries the manifest.
 */
async function commitRescue(
  dir: string,
  refPrefix: string,
  message: string,
  manifest: Manifest,
  skip: string[],
  stamp: string,
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
    // A nested repository is never added here: one without a commit makes `add -A` fail
    // ("does not have a commit checked out"), and its work is saved beside the commit.
    const specs = ['.', ...skip.map((rel) => `:(exclude,literal)${rel}`)];
    await git(['add', '-A', '--pathspec-from-file=-', '--pathspec-file-nul'], {
      cwd: dir,
      extraEnv: env,
      input: specs.join('\0'),
    });
    if (manifest.ignored.length) {
      // Ignored files the clean would delete: forced in, named literally (no glob magic).
      await git(['add', '-f', '--pathspec-from-file=-', '--pathspec-file-nul'], {
        cwd: dir,
        extraEnv: { ...env, GIT_LITERAL_PATHSPECS: '1' },
        input: manifest.ignored.join('\0'),
      });
    }
    const tree = (await git(['write-tree'], { cwd: dir, extraEnv: env })).trim();
    const parents = manifest.head ? ['-p', manifest.head] : [];
    const commit = (
      await git(['commit-tree', tree, ...parents, '-F', '-'], {
        cwd: dir,
        extraEnv: env,
        input: withManifest(message, manifest),
      })
    ).trim();
    for (let i = 0; ; i++) {
      const ref = `${refPrefix}${i ? refStamp() : stamp}${i ? `-${i}` : ''}`;
      const r = await gitRun(['update-ref', '-m', 'wtpool rescue', ref, commit, ''], { cwd: dir });
      if (r.code === 0) return ref;
      if (i >= 5) await git(['update-ref', ref, commit, ''], { cwd: dir });
    }
  } finally {
    await fs.rm(tmpIndex, { force: true });
  }
}

/**
 * Saves a nested repository into the enclosing repository's rescue refs: a rescue commit of
 * its work (inside it, its own nested repositories and submodules saved first), then that
 * commit, its branches and its nested refs fetched under `<under>/`. Verified by reading the
 * ref back.
 */
async function saveNested(
  outer: string,
  rel: string,
  under: string,
  limits: RescueLimits,
): Promise<{ ref: string; bytes: number }> {
  const abs = path.join(outer, rel);
  const inner = await saveWork(
    abs,
    NESTED_PREFIX,
    `wtpool rescue of nested repository ${rel}`,
    // The slot's configuration is a property of the slot's own paths, not of a nested repository's.
    { ...limits, discardNested: false, configuration: undefined },
    { always: true, whole: true },
  );
  if (!inner.ref) throw conflictError(`nested repository ${rel}: no rescue commit`);
  const work = `${under}/work`;
  const specs = [`+${inner.ref}:${work}`];
  const heads = await gitRun(['for-each-ref', '--count=1', '--format=%(refname)', 'refs/heads/'], {
    cwd: abs,
  });
  if (heads.code === 0 && heads.stdout.trim()) specs.push(`+refs/heads/*:${under}/heads/*`);
  // The repositories nested inside it were saved into its own refs: those come along.
  // (`<stamp>-nested/<slug>/work` there → `<under>/inner/<stamp>-nested/<slug>/work` here.)
  for (const n of inner.nested) {
    const base = n.ref.slice(0, -'/work'.length);
    specs.push(`+${base}/*:${under}/inner/${base.slice(NESTED_PREFIX.length)}/*`);
  }
  await git(['fetch', '-q', '--no-tags', '--no-write-fetch-head', abs, ...specs], { cwd: outer });
  const want = (await git(['rev-parse', '--verify', `${inner.ref}^{commit}`], { cwd: abs })).trim();
  const got = (await git(['rev-parse', '--verify', `${work}^{commit}`], { cwd: outer })).trim();
  if (want !== got)
    throw conflictError(`nested repository ${rel}: fetched ${got}, expected ${want}`);
  return { ref: work, bytes: inner.savedBytes };
}

export interface SaveOptions {
  /** Make the commit even when there is nothing to save (commits off any branch are kept reachable). */
  always?: boolean;
  /** The whole repository goes (a nested one): every populated submodule is saved too. */
  whole?: boolean;
  /** A scan made just before (the release's own), instead of scanning again. */
  scan?: RemovalScan;
}

/**
 * The rescue before files are removed: tracked changes and untracked files (`add -A`), the
 * ignored files outside `keep`/`disposable`/the configuration (`add -f`, up to `maxBytes` in
 * total), and every nested repository and changed submodule (its own rescue commit and branches
 * fetched into `<ref>-nested/<slug>/…`). A file over the size limit, or a nested repository that
 * cannot be saved, is a refusal (exit 5) before anything is written, unless `discardNested`
 * (nested repositories only).
 */
export async function saveWork(
  dir: string,
  refPrefix: string,
  message: string,
  limits: RescueLimits,
  opts: SaveOptions = {},
): Promise<RescueOutcome> {
  const scan = opts.scan ?? (await scanRemovals(dir, limits, opts.whole === true));
  const res: RescueOutcome = {
    ref: null,
    ignoredSaved: [],
    unsaved: [],
    nested: [],
    discarded: [],
    excludes: scan.configuration.map(exactPattern),
    savedBytes: 0,
  };
  let budget = limits.maxBytes;
  const tooLarge: { path: string; size: number }[] = [];
  for (const f of [...scan.ignored].sort((a, b) => a.size - b.size || (a.path < b.path ? -1 : 1))) {
    if (f.size <= budget) {
      budget -= f.size;
      res.savedBytes += f.size;
      res.ignoredSaved.push(f.path);
    } else tooLarge.push(f);
  }
  if (tooLarge.length) {
    // Left on disk in a slot handed out again, it would be someone else's data: refused.
    const list = tooLarge.slice(0, 5).map((f) => `${f.path} (${f.size} bytes)`);
    throw conflictError(
      `${dir} holds ignored files that do not fit in pool.rescueMaxBytes (${limits.maxBytes} bytes): ${list.join(', ')}${tooLarge.length > 5 ? ', …' : ''}; nothing was removed`,
      {
        hint: 'move them out of the worktree, add them to pool.disposable, or raise pool.rescueMaxBytes, then retry',
        details: { unsaved: tooLarge.map((f) => f.path) },
      },
    );
  }
  // Nested repositories first: one that cannot be saved refuses before the commit is written.
  const stampNow = refStamp();
  const stamp = `${refPrefix}${stampNow}`;
  const failed: string[] = [];
  const entries: NestedEntry[] = [];
  for (const rel of scan.nested) {
    try {
      const under = `${stamp}-nested/${pathSlug(rel)}`;
      // One size limit for the whole rescue: a nested repository gets what is left of it.
      const saved = await saveNested(dir, rel, under, { ...limits, maxBytes: budget });
      budget -= saved.bytes;
      res.savedBytes += saved.bytes;
      res.nested.push({ path: rel, ref: saved.ref });
      entries.push({ path: rel, ref: saved.ref, submodule: scan.submodules.includes(rel) });
    } catch (e) {
      failed.push(`${rel} (${e instanceof Error ? e.message : String(e)})`);
      if (limits.discardNested) res.discarded.push(rel);
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
  if (opts.always || scan.dirty || res.ignoredSaved.length || scan.nested.length) {
    const manifest: Manifest = {
      v: 1,
      branch: scan.branch ? `refs/heads/${scan.branch}` : null,
      head: scan.head,
      ignored: res.ignoredSaved,
      nested: entries,
      unsaved: [],
      discarded: res.discarded,
      modes: await oddModes(dir, [...scan.changed, ...res.ignoredSaved]),
    };
    // Submodules stay in `add -A`: the outer commit records their new commit as a gitlink.
    const skip = scan.nested.filter((rel) => !scan.submodules.includes(rel));
    res.ref = await commitRescue(dir, refPrefix, message, manifest, skip, stampNow);
  }
  return res;
}
