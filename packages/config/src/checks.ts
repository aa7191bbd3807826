/**
 * Checks of configuration values beyond their type: branch names, URLs, paths inside a
 * worktree, the pool root. Each returns what is wrong (a phrase after "must be"), or undefined.
 * No git process and no network: these run on every config load that misses the cache.
 */
import path from 'node:path';
import { redact } from '@wtpool/core';
import type { RepoPaths } from './repo.js';

/**
 * A branch name git would accept (`git check-ref-format --branch` rules for `refs/heads/<name>`):
 * no `..`, `@{`, control characters, space, `~^:?*[\`; no component starting with `.` or
 * ending with `.lock`; no empty component; not ending with `.`; not `@`, `HEAD`, or starting `-`.
 */
export function branchNameProblem(name: string): string | undefined {
  const bad =
    name === '' ||
    name === '@' ||
    name === 'HEAD' ||
    name.startsWith('-') ||
    name.endsWith('.') ||
    name.includes('..') ||
    name.includes('@{') ||
    // eslint-disable-next-line no-control-regex
    /[\x00-\x20\x7f~^:?*[\\]/.test(name) ||
    name.split('/').some((c) => c === '' || c.startsWith('.') || c.endsWith('.lock'));
  return bad ? `a valid branch name, got ${JSON.stringify(name)}` : undefined;
}

/** A URL that parses and has one of `schemes` (e.g. ['redis:', 'rediss:']); the value is redacted. */
export const urlProblem =
  (schemes: string[]) =>
  (value: string): string | undefined => {
    const want = `a ${schemes.map((s) => `${s}//`).join(' or ')} URL`;
    let u: URL;
    try {
      u = new URL(value);
    } catch {
      return `${want}, got ${JSON.stringify(redact(value))} (not a URL)`;
    }
    if (!schemes.includes(u.protocol)) {
      return `${want}, got ${JSON.stringify(redact(value))} (scheme ${u.protocol.slice(0, -1)})`;
    }
    return undefined;
  };

/** A relative path that stays inside the worktree (`keep` entries). */
export function relativePathProblem(p: string): string | undefined {
  const norm = path.posix.normalize(p.replace(/\/+$/, ''));
  const bad =
    p.trim() === '' ||
    path.posix.isAbsolute(p) ||
    norm === '.' ||
    norm === '..' ||
    norm.startsWith('../') ||
    norm.split('/')[0] === '.git' ||
    p.includes('\0');
  return bad
    ? `paths inside the worktree (relative, no .., not .git), got ${JSON.stringify(p)}`
    : undefined;
}

// Pseudo file systems: a worktree there cannot hold files, or writes into the kernel's view.
const PSEUDO_FS = ['/proc', '/sys', '/dev'];

const inside = (child: string, parent: string) =>
  child === parent || child.startsWith(parent.endsWith(path.sep) ? parent : parent + path.sep);

/** `pool.root` resolved: not `/`, not a pseudo fs, not inside `.git`, the state dir or the checkout. */
export function poolRootProblem(root: string, repo: RepoPaths): string | undefined {
  const r = path.resolve(root);
  if (r === path.parse(r).root) return `a directory other than ${r}, got ${JSON.stringify(root)}`;
  const pseudo = PSEUDO_FS.find((p) => inside(r, p));
  if (pseudo) return `a directory on a real file system, not under ${pseudo}`;
  if (inside(r, repo.stateDir)) return `outside the pool's state dir ${repo.stateDir}`;
  if (inside(r, repo.commonDir)) return `outside the git directory ${repo.commonDir}`;
  if (inside(r, repo.mainRoot)) return `outside the checkout ${repo.mainRoot}`;
  return undefined;
}
