import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { notFoundError } from '@wtpool/core';

export interface RepoPaths {
  /** Top of the worktree the command was pointed at (may be a linked worktree). */
  worktree: string;
  /** The repository's git common dir (shared by all worktrees). */
  commonDir: string;
  /** The main checkout (parent of the common dir for a non-bare repository). */
  mainRoot: string;
  /** `<commonDir>/wtpool`: the pool's state, shared by every worktree, never committed. */
  stateDir: string;
}

/**
 * Finds the git repository containing `start` without spawning git (this runs on every
 * command, including hot ones): walk up to a `.git` directory or a `.git` file (a linked
 * worktree: `gitdir: …`, whose `commondir` names the shared directory).
 */
export function resolveRepo(start: string): RepoPaths {
  let dir = path.resolve(start);
  if (!existsSync(dir)) throw notFoundError(`no such directory: ${dir}`);
  for (;;) {
    const dotgit = path.join(dir, '.git');
    let st;
    try {
      st = statSync(dotgit);
    } catch {
      st = undefined;
    }
    if (st?.isDirectory()) return paths(dir, dotgit);
    if (st?.isFile()) {
      const m = /^gitdir:\s*(.+)\s*$/m.exec(readFileSync(dotgit, 'utf8'));
      if (m) {
        const gitdir = path.resolve(dir, m[1]!.trim());
        let common = gitdir;
        try {
          common = path.resolve(
            gitdir,
            readFileSync(path.join(gitdir, 'commondir'), 'utf8').trim(),
          );
        } catch {
          // a submodule-style gitdir without commondir: it is its own common dir
        }
        return paths(dir, common);
      }
    }
    const parent = path.dirname(dir);
    if (parent === dir) {
      throw notFoundError(`not inside a git repository: ${path.resolve(start)}`, {
        hint: 'run the command inside a git repository, or pass --repo PATH',
      });
    }
    dir = parent;
  }
}

function paths(worktree: string, commonDir: string): RepoPaths {
  const mainRoot = path.basename(commonDir) === '.git' ? path.dirname(commonDir) : worktree;
  return { worktree, commonDir, mainRoot, stateDir: path.join(commonDir, 'wtpool') };
}

/** Root scripts that run a command family (`pnpm pool …`); see targetDir(). */
const FAMILY_SCRIPTS = new Set(['pool', 'monitor', 'tracks', 'gates', 'integrate']);

/**
 * The directory a command targets: --repo; else, when run as `pnpm pool …` (pnpm moves the
 * process to the workspace root and says where the user was in INIT_CWD), that directory;
 * else the current directory. INIT_CWD alone is not trusted: every process below any pnpm
 * script inherits it, e.g. a bin spawned by a test run or by an agent's own `pnpm dev`.
 */
export function targetDir(
  repoOption: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): string {
  if (repoOption !== undefined) return repoOption;
  const event = env.npm_lifecycle_event;
  if (env.INIT_CWD && event && FAMILY_SCRIPTS.has(event)) return env.INIT_CWD;
  return process.cwd();
}

export function mtimeKey(file: string): string | undefined {
  try {
    const st = statSync(file);
    return `${st.size}:${st.mtimeMs}:${st.ino}`;
  } catch {
    return undefined;
  }
}

/**
 * The repository's `core.hooksPath` when it is a relative path inside the worktree (husky:
 * `.husky/_`), read from the common dir's `config` file without spawning git (this runs on
 * every command); null when unset, absolute, or leaving the worktree.
 */
export function relativeHooksPath(commonDir: string): string | null {
  let text: string;
  try {
    text = readFileSync(path.join(commonDir, 'config'), 'utf8');
  } catch {
    return null;
  }
  let section = '';
  let value: string | null = null;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const head = /^\[\s*([A-Za-z0-9.-]+)(\s+"[^"]*")?\s*\]/.exec(line);
    if (head) {
      section = head[2] ? `${head[1]!.toLowerCase()} sub` : head[1]!.toLowerCase();
      continue;
    }
    const kv = /^hookspath\s*=\s*(.*)$/i.exec(line);
    if (section === 'core' && kv) value = kv[1]!.replace(/^"(.*)"$/, '$1').trim(); // last one wins
  }
  if (!value || path.isAbsolute(value) || value.startsWith('~')) return null;
  const rel = path.posix.normalize(value.replace(/\\/g, '/')).replace(/\/+$/, '');
  if (rel === '.' || rel === '..' || rel.startsWith('../')) return null;
  return rel;
}
