/**
 * `.env.worktree`: the slot's environment (CLI.md keys of the enabled services), mode 0600,
 * never committed (listed in the repository's info/exclude, shared by every worktree). The pool
 * is its one writer: once per lease, in the claim, from the env it also returns (D60).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { configError, errno } from '@wtpool/core';
import { tempPath, withLock } from '@wtpool/lock';

export const ENV_FILE = '.env.worktree';

const KEY = /^[A-Z_][A-Z0-9_]*$/;

/** A value as a POSIX-shell- and dotenv-safe word: bare when plain, else single-quoted. */
function quote(value: string): string {
  if (/^[A-Za-z0-9_./:@%+,=-]*$/.test(value)) return value;
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** Writes `KEY=value` lines atomically with mode 0600 (the file may hold passwords). */
export async function writeEnvFile(file: string, env: Record<string, string>): Promise<void> {
  const lines = Object.entries(env).map(([k, v]) => {
    if (!KEY.test(k)) throw configError(`invalid environment variable name ${JSON.stringify(k)}`);
    if (/[\n\r\0]/.test(v)) throw configError(`value of ${k} contains a newline or NUL`);
    return `${k}=${quote(v)}`;
  });
  const text = `# written by worktree-pool; do not edit, do not commit\n${lines.join('\n')}\n`;
  const tmp = tempPath(file);
  const fh = await fs.open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(text);
    await fh.sync();
    await fh.close();
    await fs.chmod(tmp, 0o600);
    await fs.rename(tmp, file);
  } catch (e) {
    await fh.close().catch(() => {});
    await fs.rm(tmp, { force: true });
    throw e;
  }
}

/** Reads a file written by writeEnvFile (or any simple KEY=value file). */
export async function readEnvFile(file: string): Promise<Record<string, string>> {
  const env: Record<string, string> = {};
  for (const line of (await fs.readFile(file, 'utf8')).split('\n')) {
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line);
    if (!m) continue;
    const raw = m[2]!;
    env[m[1]!] = raw.startsWith("'") ? raw.slice(1, -1).replace(/'\\''/g, "'") : raw;
  }
  return env;
}

/**
 * Makes sure `patterns` are in `<commonDir>/info/exclude` (git reads it for every worktree),
 * so the per-slot files can never be staged by `git add -A`.
 */
export async function excludeFromGit(commonDir: string, patterns: string[]): Promise<void> {
  const file = path.join(commonDir, 'info', 'exclude');
  await fs.mkdir(path.dirname(file), { recursive: true });
  const missing = async () => {
    let text = '';
    try {
      text = await fs.readFile(file, 'utf8');
    } catch (e) {
      if (errno(e) !== 'ENOENT') throw e;
    }
    const have = new Set(text.split('\n').map((l) => l.trim()));
    return { text, add: patterns.filter((p) => !have.has(`/${p}`) && !have.has(p)) };
  };
  if ((await missing()).add.length === 0) return;
  await withLock(file, async () => {
    const { text, add } = await missing();
    if (!add.length) return;
    const sep = text === '' || text.endsWith('\n') ? '' : '\n';
    await fs.writeFile(
      file,
      `${text}${sep}# worktree-pool per-slot files\n${add.map((p) => `/${p}`).join('\n')}\n`,
    );
  });
}
