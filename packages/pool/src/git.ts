import path from 'node:path';
import { failure } from '@wtpool/core';
import { withLock } from '@wtpool/lock';

export interface GitResult {
  code: number;
  stdout: string;
  stderr: string;
}

// No prompts, no pagers, no editors: the pool runs unattended.
const GIT_ENV = { GIT_TERMINAL_PROMPT: '0', GIT_PAGER: 'cat', GIT_EDITOR: 'true' };

/** Runs git with an argv array (never a shell). Resolves with the exit code; never throws for a non-zero exit. */
export async function gitRaw(
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<GitResult> {
  // Loaded on first use: child_process pulls in net, streams and dgram, and the warm acquire
  // path runs no git at all.
  const { execFile } = await import('node:child_process');
  return new Promise((resolve, reject) => {
    execFile(
      'git',
      args,
      {
        cwd: opts.cwd,
        env: { ...process.env, ...GIT_ENV, ...opts.env },
        maxBuffer: 64 << 20,
        encoding: 'utf8',
      },
      (err, stdout, stderr) => {
        if (err && typeof err.code !== 'number') return reject(err);
        resolve({ code: err ? (err.code as unknown as number) : 0, stdout, stderr });
      },
    );
  });
}

/** Runs git; a non-zero exit becomes a failure naming the command and git's message. */
export async function git(
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<string> {
  const r = await gitRaw(args, opts);
  if (r.code !== 0) {
    const msg = (r.stderr || r.stdout).trim().split('\n').slice(-2).join(' / ');
    throw failure(
      'ERR_GIT',
      `git ${args.join(' ')} failed${opts.cwd ? ` in ${opts.cwd}` : ''}: ${msg}`,
      {
        hint: 'run `pool doctor` to check the pool, or fix the repository and retry',
      },
    );
  }
  return r.stdout;
}

/**
 * Serializes git operations that write shared files of the repository: `worktree` add/remove/
 * prune (`.git/worktrees`, `.git/config.lock`) on one lock, branch deletion (packed-refs) on
 * another, so a growing pool does not hold up releases. Separate from the registry lock.
 */
export function withGitLock<T>(
  stateDir: string,
  which: 'worktrees' | 'refs',
  fn: () => Promise<T>,
): Promise<T> {
  return withLock(path.join(stateDir, `git-${which}`), fn, {
    timeout: 5 * 60_000,
    stale: 60_000,
    purpose: `git ${which}`,
  });
}
