/**
 * Files from the main checkout (issue 24): the ignored files a slot needs and git cannot give
 * it (`.env`, local certificates, editor settings), named by `pool.include` and the
 * repository's `.worktreeinclude` (gitignore syntax, as Claude Code and worktrunk read it).
 * Only files the repository itself ignores are taken (a tracked or merely untracked file is
 * git's business), never anything under `.git`, never through a symlink leading out of the
 * repository. Each slot gets a copy keeping the source's mode (a 0600 `.env` stays 0600), or
 * a symlink to the main checkout's file (`pool.includeMode: symlink`); a copy is made again
 * only when the source's content hash changed.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { conflictError, errno, git, gitRun } from '@wtpool/core';

export const WORKTREEINCLUDE = '.worktreeinclude';

/** What the slot got for one included file, to tell later whether anyone changed it. */
export interface IncludeStamp {
  /** sha256 of the source's content when it was copied (copy mode). */
  hash?: string;
  /** The symlink's target (symlink mode). */
  link?: string;
  size: number;
  mtimeMs: number;
}

/** Does the repository have a `.worktreeinclude`? */
export const hasWorktreeInclude = (mainRoot: string) =>
  fs.stat(path.join(mainRoot, WORKTREEINCLUDE)).then(
    (s) => s.isFile(),
    () => false,
  );

/** Is `child` the directory `parent` or inside it? */
export const inside = (child: string, parent: string) =>
  child === parent || child.startsWith(parent.endsWith(path.sep) ? parent : parent + path.sep);

/** Does `rel` fall under an entry of `skip` (a name: at any depth; a path: from the root)? */
export function underSkip(rel: string, skip: string[]): boolean {
  const parts = rel.split('/');
  return skip.some((raw) => {
    const e = raw.replace(/^\/+|\/+$/g, '');
    if (!e) return false;
    return e.includes('/') || raw.startsWith('/')
      ? rel === e || rel.startsWith(`${e}/`)
      : parts.includes(e);
  });
}

/**
 * Pathspecs leaving out directories a walk must not enter (pool.keep: node_modules and other
 * caches): git then never lists the hundred thousand files of a dependency tree.
 */
export function skipSpecs(skip: string[]): string[] {
  const specs = ['.'];
  for (const raw of skip) {
    const e = raw.replace(/^\/+|\/+$/g, '');
    if (!e) continue;
    specs.push(`:(exclude,literal)${e}`);
    // A name (no slash) matches at any depth, as pool.keep reads it.
    if (!e.includes('/')) specs.push(`:(exclude,glob)**/${e}`);
  }
  return specs;
}

/**
 * The ignored files of the main checkout that `patterns` (pool.include) or `.worktreeinclude`
 * select: relative paths, sorted. Symlinks whose target leaves the repository are dropped
 * (`skipped` says which and why).
 */
export async function listIncludes(
  mainRoot: string,
  patterns: string[],
  skip: string[] = [],
): Promise<{ files: string[]; skipped: string[] }> {
  const from = path.join(mainRoot, WORKTREEINCLUDE);
  const hasFile = await fs.stat(from).then(
    (s) => s.isFile(),
    () => false,
  );
  if (!patterns.length && !hasFile) return { files: [], skipped: [] };
  // Untracked files matching the include patterns (only those: no standard ignore rules here)…
  const args = ['ls-files', '-z', '--others', '--ignored'];
  for (const p of patterns) args.push(`--exclude=${p}`);
  if (hasFile) args.push(`--exclude-from=${from}`);
  const listed = (await git([...args, '--', ...skipSpecs(skip)], { cwd: mainRoot }))
    .split('\0')
    .filter(Boolean);
  if (!listed.length) return { files: [], skipped: [] };
  // …that the repository ignores (check-ignore prints the ignored ones; exit 1: none).
  const ignored = await gitRun(['check-ignore', '-z', '--stdin'], {
    cwd: mainRoot,
    input: listed.join('\0') + '\0',
  });
  const candidates = ignored.stdout.split('\0').filter(Boolean);
  const realRoot = await fs.realpath(mainRoot);
  const files: string[] = [];
  const skipped: string[] = [];
  for (const rel of [...new Set(candidates)].sort()) {
    if (rel.split('/').includes('.git')) continue;
    const real = await fs.realpath(path.join(mainRoot, rel)).catch(() => null);
    if (!real || !inside(real, realRoot) || inside(real, path.join(realRoot, '.git'))) {
      skipped.push(`${rel} (a symlink out of the repository)`);
      continue;
    }
    const st = await fs.stat(real);
    if (!st.isFile()) {
      skipped.push(`${rel} (not a regular file)`);
      continue;
    }
    files.push(rel);
  }
  return { files, skipped };
}

async function sha256File(file: string): Promise<string> {
  return createHash('sha256')
    .update(await fs.readFile(file))
    .digest('hex');
}

/** Does the slot's file still look like what we put there (nobody changed it)? */
export async function unchanged(file: string, stamp: IncludeStamp): Promise<boolean> {
  const st = await fs.lstat(file).catch(() => null);
  if (!st) return false;
  if (stamp.link !== undefined) {
    return st.isSymbolicLink() && (await fs.readlink(file).catch(() => null)) === stamp.link;
  }
  return st.isFile() && st.size === stamp.size && st.mtimeMs === stamp.mtimeMs;
}

/** The slot's parent directory of `rel`, created, refused when a symlink leads it out of the slot. */
async function slotParent(slotDir: string, rel: string): Promise<string> {
  const parent = path.dirname(path.join(slotDir, rel));
  await fs.mkdir(parent, { recursive: true });
  const [real, root] = await Promise.all([fs.realpath(parent), fs.realpath(slotDir)]);
  if (!inside(real, root) || inside(real, path.join(root, '.git'))) {
    throw conflictError(`${rel}: its directory in the slot leads out of it`);
  }
  return parent;
}

/**
 * Brings the slot's included files up to date with the main checkout: a file whose source
 * changed (content hash) or whose slot copy is missing or not ours any more is written again
 * (atomically, with the source's mode); a file no longer included is removed when it is still
 * the one we wrote. Returns the new stamps and what was written.
 */
export async function syncIncludes(
  mainRoot: string,
  slotDir: string,
  files: string[],
  mode: 'copy' | 'symlink',
  prev: Record<string, IncludeStamp>,
): Promise<{ stamps: Record<string, IncludeStamp>; written: string[]; failed: string[] }> {
  const stamps: Record<string, IncludeStamp> = {};
  const written: string[] = [];
  const failed: string[] = [];
  for (const rel of files) {
    const src = await fs.realpath(path.join(mainRoot, rel));
    const dst = path.join(slotDir, rel);
    const old = prev[rel];
    try {
      if (mode === 'symlink') {
        if (old?.link === src && (await unchanged(dst, old))) {
          stamps[rel] = old;
          continue;
        }
        await slotParent(slotDir, rel);
        const tmp = `${dst}.wtpool-${process.pid}`;
        await fs.rm(tmp, { force: true });
        await fs.symlink(src, tmp);
        await fs.rename(tmp, dst);
        const st = await fs.lstat(dst);
        stamps[rel] = { link: src, size: st.size, mtimeMs: st.mtimeMs };
      } else {
        const hash = await sha256File(src);
        if (old?.hash === hash && (await unchanged(dst, old))) {
          stamps[rel] = old;
          continue;
        }
        await slotParent(slotDir, rel);
        const srcMode = (await fs.stat(src)).mode & 0o7777;
        const tmp = `${dst}.wtpool-${process.pid}`;
        await fs.rm(tmp, { force: true });
        // Created with the source's mode from the start: a 0600 file is never readable by others.
        await fs.copyFile(src, tmp);
        await fs.chmod(tmp, srcMode);
        await fs.rename(tmp, dst);
        const st = await fs.lstat(dst);
        stamps[rel] = { hash, size: st.size, mtimeMs: st.mtimeMs };
      }
      written.push(rel);
    } catch (e) {
      if (errno(e) === 'ENOENT') continue; // the source vanished since it was listed
      failed.push(`${rel}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  // No longer included: ours goes, whatever else is there stays (it is not ours to delete).
  for (const [rel, stamp] of Object.entries(prev)) {
    if (rel in stamps) continue;
    const dst = path.join(slotDir, rel);
    if (await unchanged(dst, stamp)) await fs.rm(dst, { force: true });
  }
  return { stamps, written, failed };
}
