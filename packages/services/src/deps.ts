/**
 * Dependencies per slot, installed once and re-run only when the slot's lockfile hash changes
 * (the hash is kept in the slot: node_modules/.wtpool-deps.json, so it survives releases with
 * node_modules and disappears with it). Strategies:
 *   auto      hard-link clone of the main checkout's node_modules when the lockfiles match,
 *             else `pnpm install --offline`, else a normal install
 *   hardlink  the clone only (fails when the lockfiles differ)
 *   pnpm|npm  the package manager's frozen install (offline first)
 *   command   deps.command, run in the worktree
 *   none      nothing
 * The clone copies every node_modules of the workspace (root and packages) with `cp -al`:
 * files become hard links (no extra data on disk), symlinks stay symlinks (pnpm's layout is
 * relative links into node_modules/.pnpm, so they resolve inside the slot). The `.bin` shims,
 * which name the main checkout's absolute path, are rewritten for the slot.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { ExitCode, WtpoolError, failure, errno } from '@wtpool/core';
import type { Config } from '@wtpool/config';
import type { SlotProvider } from './provider.js';
import { lastLine, runCaptured } from './exec.js';

const execFileP = promisify(execFile);

const LOCKFILES = ['pnpm-lock.yaml', 'package-lock.json', 'npm-shrinkwrap.json', 'yarn.lock'];
const MARKER = path.join('node_modules', '.wtpool-deps.json');

export interface DepsResult {
  strategy: 'hardlink' | 'pnpm' | 'npm' | 'yarn' | 'command' | 'skipped';
  reason: string;
}

async function exists(p: string): Promise<boolean> {
  return fs.lstat(p).then(
    () => true,
    () => false,
  );
}

/** The first lockfile of a checkout and the sha256 of its content. */
export async function lockfileHash(dir: string): Promise<{ file: string; hash: string } | null> {
  for (const file of LOCKFILES) {
    try {
      const data = await fs.readFile(path.join(dir, file));
      return { file, hash: createHash('sha256').update(data).digest('hex') };
    } catch (e) {
      if (errno(e) !== 'ENOENT') throw e;
    }
  }
  return null;
}

async function runOrFail(what: string, attempts: [string, string[]][], cwd: string) {
  let last = { code: 0, output: '' };
  for (const [cmd, args] of attempts) {
    last = await runCaptured(cmd, args, { cwd });
    if (last.code === 0) return;
  }
  throw failure(
    'ERR_DEPS',
    `${what} failed in ${cwd} (exit ${last.code}): ${lastLine(last.output)}`,
    {
      hint: 'fix the install (or set deps.strategy), then run `pool refresh`',
    },
  );
}

/** Directories (relative) holding a package.json tracked in the worktree. */
async function packageDirs(worktree: string): Promise<string[]> {
  const { stdout } = await execFileP(
    'git',
    ['ls-files', '-z', '--', 'package.json', ':(glob)**/package.json'],
    { cwd: worktree, maxBuffer: 64 << 20 },
  );
  return [
    ...new Set(
      stdout
        .split('\0')
        .filter(Boolean)
        .map((f) => path.dirname(f)),
    ),
  ];
}

/** Recursive hard-link copy keeping symlinks as symlinks (fallback when `cp -al` fails). */
async function linkTree(src: string, dst: string): Promise<void> {
  await fs.mkdir(dst, { recursive: true });
  for (const e of await fs.readdir(src, { withFileTypes: true })) {
    const s = path.join(src, e.name);
    const d = path.join(dst, e.name);
    if (e.isSymbolicLink()) await fs.symlink(await fs.readlink(s), d);
    else if (e.isDirectory()) await linkTree(s, d);
    else await fs.link(s, d);
  }
}

/** Rewrites `.bin` shims that name the main checkout so they name the slot's own tree. */
async function fixBinShims(binDir: string, mainRoot: string, worktree: string): Promise<void> {
  const names = await fs.readdir(binDir).catch(() => [] as string[]);
  for (const name of names) {
    const file = path.join(binDir, name);
    const st = await fs.lstat(file);
    if (!st.isFile() || st.size > 64 * 1024) continue;
    const text = await fs.readFile(file, 'utf8');
    if (!text.includes(mainRoot)) continue;
    // Write a new file (breaking the hard link) so the main checkout's shim stays untouched.
    const tmp = `${file}.wtpool-tmp`;
    await fs.writeFile(tmp, text.split(mainRoot + path.sep).join(worktree + path.sep), {
      mode: st.mode & 0o777,
    });
    await fs.rename(tmp, file);
  }
}

/** Hard-link clone of every node_modules of the main checkout's workspace into the worktree. */
export async function hardlinkClone(mainRoot: string, worktree: string): Promise<number> {
  let cloned = 0;
  for (const dir of await packageDirs(worktree)) {
    const src = path.join(mainRoot, dir, 'node_modules');
    const dst = path.join(worktree, dir, 'node_modules');
    if (!(await exists(src))) continue;
    if (await exists(dst)) {
      const old = `${dst}.wtpool-old-${process.pid}`;
      await fs.rename(dst, old);
      await fs.rm(old, { recursive: true, force: true });
    }
    try {
      await execFileP('cp', ['-al', '--', src, dst]);
    } catch {
      await fs.rm(dst, { recursive: true, force: true });
      await linkTree(src, dst);
    }
    await fixBinShims(path.join(dst, '.bin'), mainRoot, worktree);
    cloned++;
  }
  return cloned;
}

type DepsConfig = Config['deps'];

/** Brings the worktree's dependencies up to date with its lockfile; a no-op when they are. */
export async function installDeps(
  mainRoot: string,
  worktree: string,
  deps: DepsConfig,
): Promise<DepsResult> {
  if (deps.strategy === 'none') return { strategy: 'skipped', reason: 'deps.strategy is none' };
  if (!(await exists(path.join(worktree, 'package.json')))) {
    return { strategy: 'skipped', reason: 'no package.json' };
  }
  const lock = await lockfileHash(worktree);
  const markerFile = path.join(worktree, MARKER);
  const marker = await fs
    .readFile(markerFile, 'utf8')
    .then((t) => JSON.parse(t) as { hash: string | null })
    .catch(() => undefined);
  const hash = lock?.hash ?? null;
  if (marker && marker.hash === hash && (await exists(path.join(worktree, 'node_modules')))) {
    return { strategy: 'skipped', reason: 'lockfile unchanged' };
  }
  const result = await choose(mainRoot, worktree, deps, lock);
  await fs.mkdir(path.dirname(markerFile), { recursive: true });
  await fs.writeFile(
    markerFile,
    JSON.stringify({ hash, lockfile: lock?.file ?? null, strategy: result.strategy }) + '\n',
  );
  return result;
}

async function choose(
  mainRoot: string,
  worktree: string,
  deps: DepsConfig,
  lock: { file: string; hash: string } | null,
): Promise<DepsResult> {
  const s = deps.strategy;
  if (s === 'command') {
    if (!deps.command) {
      // A configuration error (exit 3): waiting does not heal it, so the pool neither grows
      // nor keeps acquires waiting because of it (pool state.ts growthStopped).
      throw new WtpoolError(
        'ERR_DEPS',
        ExitCode.CONFIG,
        'deps.strategy is command but deps.command is empty',
        { hint: 'set deps.command in pool.config.yaml' },
      );
    }
    await runOrFail('deps.command', [['sh', ['-c', deps.command]]], worktree);
    return { strategy: 'command', reason: deps.command };
  }
  if (s === 'auto' || s === 'hardlink') {
    const main = await lockfileHash(mainRoot);
    const same = lock !== null && main?.hash === lock.hash && main.file === lock.file;
    if (same && (await exists(path.join(mainRoot, 'node_modules')))) {
      await hardlinkClone(mainRoot, worktree);
      return { strategy: 'hardlink', reason: `${lock.file} matches the main checkout` };
    }
    if (s === 'hardlink') {
      throw failure(
        'ERR_DEPS',
        `cannot hard-link node_modules: the slot's lockfile differs from the main checkout's (or main has no node_modules)`,
        { hint: 'install in the main checkout, or use deps.strategy auto' },
      );
    }
  }
  const pm = s === 'pnpm' || s === 'npm' ? s : managerOf(lock?.file);
  if (pm === 'pnpm') {
    await runOrFail(
      'pnpm install',
      [
        ['pnpm', ['install', '--frozen-lockfile', '--offline']],
        ['pnpm', ['install', '--frozen-lockfile']],
      ],
      worktree,
    );
    return { strategy: 'pnpm', reason: 'pnpm install' };
  }
  if (pm === 'yarn') {
    await runOrFail('yarn install', [['yarn', ['install', '--frozen-lockfile']]], worktree);
    return { strategy: 'yarn', reason: 'yarn install' };
  }
  // Without a lockfile, `npm install` would write one into the slot, leaving it dirty: every
  // release would then refuse. Install without creating it.
  const args = lock ? ['ci'] : ['install', '--no-package-lock'];
  const ci = args[0]!;
  await runOrFail(
    `npm ${ci}`,
    [
      ['npm', [...args, '--offline', '--no-audit', '--no-fund']],
      ['npm', [...args, '--no-audit', '--no-fund']],
    ],
    worktree,
  );
  return { strategy: 'npm', reason: `npm ${ci}` };
}

const managerOf = (lockfile: string | undefined) =>
  lockfile === 'pnpm-lock.yaml' ? 'pnpm' : lockfile === 'yarn.lock' ? 'yarn' : 'npm';

export function depsProvider(config: Config): SlotProvider {
  const sync = async (ctx: Parameters<NonNullable<SlotProvider['provision']>>[0]) => {
    const r = await installDeps(ctx.repo.mainRoot, ctx.names.path, config.deps);
    if (r.strategy !== 'skipped') {
      ctx.progress(`${ctx.names.id}: dependencies via ${r.strategy} (${r.reason})`);
      await ctx.event('deps', { slot: ctx.names.id, strategy: r.strategy, reason: r.reason });
    }
  };
  return {
    name: 'deps',
    provision: sync,
    // A fresh lease branch may carry a newer lockfile: re-run only if its hash changed.
    lease: async (ctx) => {
      await sync(ctx);
      return {};
    },
  };
}
