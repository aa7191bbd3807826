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
    // A Redis URL names a server and at most a database index: `redis://` or `redis:host`
    // would reach the default host by accident, `redis://h/x` names no database.
    if (u.protocol.startsWith('redis')) {
      if (!u.hostname) return `${want}, got ${JSON.stringify(redact(value))} (no host)`;
      if (!/^\/?(\d{1,5})?$/.test(u.pathname)) {
        return `${want}, got ${JSON.stringify(redact(value))} (the path is a database index, e.g. /0)`;
      }
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

/**
 * A `keep`/`disposable` entry: a relative path inside the worktree, and literal: no glob
 * characters (`*`, `?`, `[`, `]`, `\\`) nor a leading `!` or `#`. Entries reach `git clean -e`
 * as patterns, so `*` would keep (or dispose of) every ignored file, other agents' work included.
 */
export function listPathProblem(p: string): string | undefined {
  const rel = relativePathProblem(p);
  if (rel) return rel;
  if (/[*?[\]\\]/.test(p) || /^[!#]/.test(p)) {
    return `literal paths (no glob characters * ? [ ] \\, no leading ! or #), got ${JSON.stringify(p)}`;
  }
  return undefined;
}

/**
 * A glob git's `:(glob)` pathspec can use: every `[` closed by a `]` (`[` alone matches nothing,
 * silently, so the path's gates would never run), no trailing `\\`.
 */
export function globProblem(glob: string): string | undefined {
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '\\') {
      if (i === glob.length - 1) return 'a glob not ending in \\';
      i++;
    } else if (c === '[') {
      let j = i + 1;
      if (glob[j] === '!' || glob[j] === '^') j++;
      if (glob[j] === ']') j++;
      while (j < glob.length && glob[j] !== ']') j++;
      if (j >= glob.length) return 'a glob whose [ is closed by ]';
      i = j;
    }
  }
  return undefined;
}

// Pseudo file systems: a worktree there cannot hold files, or writes into the kernel's view.
const PSEUDO_FS = ['/proc', '/sys', '/dev'];

const inside = (child: string, parent: string) =>
  child === parent || child.startsWith(parent.endsWith(path.sep) ? parent : parent + path.sep);

/**
 * `pool.root` resolved: not `/`, not a pseudo fs, not inside `.git`, the state dir or the
 * checkout, and not an ancestor of the checkout (`..`, `../..`, the home directory: slots would
 * be created among the user's own directories, beside the repository). `written` is the value as
 * configured: a relative one stays within the checkout's parent directory (`../pool`, not
 * `../../pool`); an absolute one may be anywhere else (D322).
 */
export function poolRootProblem(
  root: string,
  repo: RepoPaths,
  written: string = root,
): string | undefined {
  const r = path.resolve(root);
  if (r === path.parse(r).root) return `a directory other than ${r}, got ${JSON.stringify(root)}`;
  if (inside(repo.mainRoot, r) && r !== repo.mainRoot) {
    return `a directory that does not contain the checkout ${repo.mainRoot}, got ${JSON.stringify(written)} (${r})`;
  }
  if (!path.isAbsolute(written) && !inside(r, path.dirname(repo.mainRoot))) {
    return `a path within the checkout's parent directory ${path.dirname(repo.mainRoot)} when relative, got ${JSON.stringify(written)} (use an absolute path for elsewhere)`;
  }
  const pseudo = PSEUDO_FS.find((p) => inside(r, p));
  if (pseudo) return `a directory on a real file system, not under ${pseudo}`;
  if (inside(r, repo.stateDir)) return `outside the pool's state dir ${repo.stateDir}`;
  if (inside(r, repo.commonDir)) return `outside the git directory ${repo.commonDir}`;
  if (inside(r, repo.mainRoot)) return `outside the checkout ${repo.mainRoot}`;
  return undefined;
}

/**
 * A Redis URL: `redis://`, `rediss://` (urlProblem) or a Sentinel URL
 * `redis+sentinel://[user:pass@]host[:port],…/<master>[/db]` (also `rediss+sentinel://`).
 */
export function redisUrlProblem(value: string): string | undefined {
  if (!/^rediss?\+sentinel:/i.test(value)) return urlProblem(['redis:', 'rediss:'])(value);
  const ok =
    /^rediss?\+sentinel:\/\/(?:[^@/]*@)?(?:\[[0-9a-f:.]+\]|[^:[\],/@?#]+)(?::\d{1,5})?(?:,(?:\[[0-9a-f:.]+\]|[^:[\],/@?#]+)(?::\d{1,5})?)*\/[^/?#]+(?:\/\d{1,5})?\/?$/i.test(
      value,
    );
  return ok
    ? undefined
    : `a redis+sentinel://[user:pass@]host[:port],…/<master>[/db] URL, got ${JSON.stringify(redact(value))}`;
}
