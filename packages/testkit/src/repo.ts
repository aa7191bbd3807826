import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, realpathSync } from 'node:fs';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

/** The worktree-pool checkout this testkit lives in: fixtures must never touch it. */
export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/** Environment for git in fixtures: no user config, no signing, no gc, fixed identity. */
export const GIT_ENV: NodeJS.ProcessEnv = {
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_AUTHOR_NAME: 'wtpool test',
  GIT_AUTHOR_EMAIL: 'test@wtpool.invalid',
  GIT_COMMITTER_NAME: 'wtpool test',
  GIT_COMMITTER_EMAIL: 'test@wtpool.invalid',
  GIT_TERMINAL_PROMPT: '0',
};

function assertOutsideProject(dir: string): void {
  const real = realpathSync(dir);
  const project = realpathSync(PROJECT_ROOT);
  if (real === project || real.startsWith(project + path.sep)) {
    throw new Error(`testkit refuses to work inside the real repository (${project}): ${real}`);
  }
}

/** A scratch directory under the OS temp dir, removed by cleanup(). */
export function tempDir(prefix = 'wtpool-'): string {
  const dir = realpathSync(mkdtempSync(path.join(os.tmpdir(), prefix)));
  assertOutsideProject(dir);
  return dir;
}

export interface TempRepo {
  /** The repository's main checkout: `<sandbox>/repo`. */
  dir: string;
  /** The sandbox holding it (and the pool's default `<repo>.worktrees` beside it). */
  sandbox: string;
  /** Runs git in the repository (or `cwd`, which must be inside the sandbox); returns stdout trimmed. */
  git(args: string[], cwd?: string): Promise<string>;
  gitSync(args: string[], cwd?: string): string;
  /** Writes files (relative paths → contents) and commits them. Returns the new commit id. */
  commit(files: Record<string, string>, message?: string, cwd?: string): Promise<string>;
  write(rel: string, content: string, cwd?: string): Promise<void>;
  cleanup(): Promise<void>;
}

export interface TempRepoOptions {
  /** Files of the first commit (default: a README). */
  files?: Record<string, string>;
  /** Extra repository config, e.g. { 'core.hooksPath': 'hooks' }. */
  config?: Record<string, string>;
}

/**
 * A fresh git repository for one test: branch `main`, signing and gc off, one commit. It lives
 * in its own sandbox under the temp dir and refuses to operate inside this project's checkout.
 */
export async function makeTempRepo(opts: TempRepoOptions = {}): Promise<TempRepo> {
  const sandbox = tempDir('wtpool-repo-');
  const dir = path.join(sandbox, 'repo');
  await fs.mkdir(dir);
  const env = { ...process.env, ...GIT_ENV };
  const inSandbox = (cwd: string) => {
    const real = path.resolve(cwd);
    if (!real.startsWith(sandbox + path.sep) && real !== sandbox) {
      throw new Error(`testkit: git refused outside the test sandbox: ${real}`);
    }
    return real;
  };
  const git = async (args: string[], cwd = dir) =>
    (await execFileP('git', args, { cwd: inSandbox(cwd), env, maxBuffer: 64 << 20 })).stdout.trim();
  const gitSync = (args: string[], cwd = dir) =>
    execFileSync('git', args, { cwd: inSandbox(cwd), env, encoding: 'utf8' }).trim();
  const write = async (rel: string, content: string, cwd = dir) => {
    const file = path.join(inSandbox(cwd), rel);
    await fs.mkdir(path.dirname(file), { recursive: true });
    await fs.writeFile(file, content);
  };
  const commit = async (files: Record<string, string>, message = 'test commit', cwd = dir) => {
    for (const [rel, content] of Object.entries(files)) await write(rel, content, cwd);
    await git(['add', '-A', '--', ...Object.keys(files)], cwd);
    await git(['commit', '-q', '--no-verify', '-m', message], cwd);
    return git(['rev-parse', 'HEAD'], cwd);
  };

  await git(['init', '-q', '-b', 'main']);
  const config: Record<string, string> = {
    'commit.gpgsign': 'false',
    'tag.gpgsign': 'false',
    'gc.auto': '0',
    'core.autocrlf': 'false',
    'user.name': 'wtpool test',
    'user.email': 'test@wtpool.invalid',
    ...opts.config,
  };
  for (const [k, v] of Object.entries(config)) await git(['config', k, v]);
  await commit(opts.files ?? { 'README.md': '# test repo\n' }, 'initial commit');

  return {
    dir,
    sandbox,
    git,
    gitSync,
    commit,
    write,
    cleanup: async () => {
      // Worktrees may have been made read-only by tests; force removal of the whole sandbox.
      if (existsSync(sandbox))
        await fs.rm(sandbox, { recursive: true, force: true, maxRetries: 3 });
    },
  };
}
