/**
 * Reading rescues back: the list of rescue refs, and what one holds (its commits, the files it
 * changed, the ignored files it saved, its nested repositories, recursively, and what could not
 * be saved). Read-only: one repository, the main one, where every rescue ref lives.
 */
import { notFoundError, usageError, gitRun } from '@wtpool/core';
import { git } from '../git.js';
import { listRefs, type RefInfo } from '../worktree.js';
import { readManifest, type Manifest } from './manifest.js';
import { NESTED_PREFIX } from './save.js';

export const RESCUE_PREFIX = 'refs/wtpool/rescue/';

/** Saved work refs (`refs/wtpool/rescue/<slot>/<timestamp>`), newest first. */
export async function listRescues(mainRoot: string): Promise<(RefInfo & { slot: string })[]> {
  const refs = await listRefs(mainRoot, RESCUE_PREFIX);
  return refs.map((r) => ({ ...r, slot: r.ref.split('/')[3] ?? '' }));
}

/**
 * The full rescue ref a user named: `refs/wtpool/rescue/…`, or the part after that prefix
 * (`wt-1/2026-…`). Checked before it reaches git; exit 4 when it does not exist.
 */
export async function resolveRescue(
  mainRoot: string,
  name: string,
): Promise<{ ref: string; commit: string }> {
  const bad =
    !/^[A-Za-z0-9._/@+-]+$/.test(name) ||
    name.startsWith('-') ||
    name.includes('..') ||
    name.includes('//') ||
    name.endsWith('/') ||
    name.endsWith('.lock');
  if (bad) throw usageError(`${JSON.stringify(name)} is not a rescue ref name`);
  const ref = name.startsWith('refs/') ? name : `${RESCUE_PREFIX}${name}`;
  if (!ref.startsWith(RESCUE_PREFIX)) {
    throw usageError(`${name} is not a rescue ref (they live under ${RESCUE_PREFIX})`, {
      hint: 'see `pool rescue list`',
    });
  }
  const r = await gitRun(['rev-parse', '-q', '--verify', `${ref}^{commit}`], { cwd: mainRoot });
  if (r.code !== 0)
    throw notFoundError(`there is no rescue ${ref}`, { hint: 'see `pool rescue list`' });
  return { ref, commit: r.stdout.trim() };
}

/** A relative path from a manifest or a tree that stays inside its directory. */
export function safeRel(rel: string): boolean {
  if (!rel || rel.startsWith('/') || rel.includes('\0')) return false;
  return rel.split('/').every((p) => p !== '' && p !== '.' && p !== '..' && p !== '.git');
}

/** One repository of a rescue: the top one, or a nested one (its work ref in the main repository). */
export interface Level {
  /** Where its files go, relative to the restore's root ('' for the top). */
  dir: string;
  /** Its rescue commit's ref in the main repository. */
  ref: string;
  commit: string;
  /** Null for a rescue made before manifests. */
  manifest: Manifest | null;
  subject: string;
  date: string;
  /** Nested levels only: the ref namespace holding its branches (`<under>/heads/…`). */
  under: string | null;
  submodule: boolean;
  children: Level[];
}

/**
 * The rescue's repositories, recursively. A nested repository's refs are named in its manifest
 * as in the repository that made them: the top's as they are, a nested one's (made inside it,
 * under NESTED_PREFIX) under `<its under>/inner/`.
 */
export async function readLevels(mainRoot: string, ref: string): Promise<Level> {
  const read = async (
    dir: string,
    r: string,
    under: string | null,
    submodule: boolean,
  ): Promise<Level> => {
    const out = await git(['log', '-1', '--format=%H%x00%cI%x00%B', r, '--'], { cwd: mainRoot });
    const [commit, date, body] = out.split('\0');
    const manifest = readManifest(body ?? '');
    const level: Level = {
      dir,
      ref: r,
      commit: commit!.trim(),
      manifest,
      subject: (body ?? '').split('\n')[0]!,
      date: date ?? '',
      under,
      submodule,
      children: [],
    };
    for (const n of manifest?.nested ?? []) {
      if (!safeRel(n.path) || !n.ref.endsWith('/work')) continue;
      const home = n.ref;
      const main =
        under === null
          ? home
          : home.startsWith(NESTED_PREFIX)
            ? `${under}/inner/${home.slice(NESTED_PREFIX.length)}`
            : null;
      if (!main) continue;
      const ok = await gitRun(['rev-parse', '-q', '--verify', `${main}^{commit}`], {
        cwd: mainRoot,
      });
      if (ok.code !== 0) continue;
      const childDir = dir ? `${dir}/${n.path}` : n.path;
      level.children.push(await read(childDir, main, main.slice(0, -'/work'.length), n.submodule));
    }
    return level;
  };
  return read('', ref, null, false);
}

export interface FileChange {
  path: string;
  change: 'added' | 'modified' | 'deleted' | 'type changed' | 'submodule';
}

export interface RescueShow {
  ref: string;
  commit: string;
  date: string;
  subject: string;
  /** The branch HEAD was on when it was saved (null: detached or unknown) and its commit. */
  branch: string | null;
  head: string | null;
  /** Commits on that HEAD not in the base (top), or its last commits (nested), newest first. */
  commits: { commit: string; subject: string }[];
  /** Tracked changes and untracked files saved (against HEAD). */
  dirty: FileChange[];
  /** Ignored files saved. */
  ignored: string[];
  /** What could not be saved: ignored files over the size limit, nested repositories discarded. */
  tooLarge: string[];
  discarded: string[];
  /** Nested repositories: where, their branches, and the same for their work. */
  nested: (RescueShow & {
    path: string;
    submodule: boolean;
    branches: { name: string; commit: string }[];
  })[];
  /** Nested rescue refs of a rescue made before manifests (their paths unknown). */
  unmapped: string[];
}

const CHANGE: Record<string, FileChange['change']> = {
  A: 'added',
  M: 'modified',
  D: 'deleted',
  T: 'type changed',
};

/** The files a rescue commit changed against its parent (all of them for a root commit). */
async function changes(mainRoot: string, commit: string): Promise<FileChange[]> {
  const out = await git(
    ['diff-tree', '-r', '-z', '--raw', '--no-renames', '--root', '--no-commit-id', commit],
    { cwd: mainRoot },
  );
  const parts = out.split('\0');
  const res: FileChange[] = [];
  for (let i = 0; i + 1 < parts.length; i += 2) {
    const meta = parts[i]!.split(' ');
    const rel = parts[i + 1]!;
    const sub = meta[0] === ':160000' || meta[1] === '160000';
    res.push({ path: rel, change: sub ? 'submodule' : (CHANGE[meta[4]!] ?? 'modified') });
  }
  return res;
}

const MAX_COMMITS = 50;

async function commitsOf(
  mainRoot: string,
  head: string | null,
  base: string | null,
): Promise<{ commit: string; subject: string }[]> {
  if (!head) return [];
  const not = base ? ['--not', base] : [];
  const r = await gitRun(['log', `-${MAX_COMMITS}`, '--format=%H%x00%s', head, ...not, '--'], {
    cwd: mainRoot,
  });
  if (r.code !== 0) return [];
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [commit, subject] = l.split('\0');
      return { commit: commit!, subject: subject ?? '' };
    });
}

/** What a rescue holds, recursively. `base`: the pool's base branch (commits in it are not listed). */
export async function showRescue(
  mainRoot: string,
  name: string,
  base: string | null,
): Promise<RescueShow> {
  const { ref } = await resolveRescue(mainRoot, name);
  const top = await readLevels(mainRoot, ref);
  const baseOk =
    base !== null &&
    (await gitRun(['rev-parse', '-q', '--verify', `${base}^{commit}`], { cwd: mainRoot })).code ===
      0;
  const describe = async (l: Level, isTop: boolean): Promise<RescueShow> => {
    const m = l.manifest;
    const ignored = new Set(m?.ignored ?? []);
    const head = m
      ? m.head
      : (
          await gitRun(['rev-parse', '-q', '--verify', `${l.commit}^`], { cwd: mainRoot })
        ).stdout.trim() || null;
    const all = await changes(mainRoot, l.commit);
    const nested = [];
    for (const c of l.children) {
      const branches = (await listRefs(mainRoot, `${c.under}/heads/`)).map((b) => ({
        name: b.ref.slice(`${c.under}/heads/`.length),
        commit: b.commit,
      }));
      nested.push({
        ...(await describe(c, false)),
        path: c.dir.slice(l.dir ? l.dir.length + 1 : 0),
        submodule: c.submodule,
        branches,
      });
    }
    let unmapped: string[] = [];
    if (!m && isTop) {
      unmapped = (await listRefs(mainRoot, `${l.ref}-nested/`))
        .map((r) => r.ref)
        .filter((r) => r.endsWith('/work'));
    }
    return {
      ref: l.ref,
      commit: l.commit,
      date: l.date,
      subject: l.subject,
      branch: m?.branch ?? null,
      head,
      commits: await commitsOf(mainRoot, head, isTop && baseOk ? base : null),
      dirty: all.filter((c) => !ignored.has(c.path)),
      ignored: [...ignored],
      tooLarge: m?.unsaved ?? [],
      discarded: m?.discarded ?? [],
      nested,
      unmapped,
    };
  };
  return describe(top, true);
}
