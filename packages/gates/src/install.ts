/**
 * `gates install` / `gates uninstall`: activates the pre-commit gates for a repository's main
 * checkout and every worktree, and never disables hooks it did not write (D183).
 *
 * Two modes, chosen by what the repository already has:
 * - **directory** (husky and any other local `core.hooksPath` that exists): the repository's
 *   hooks live in a directory of its own. The gates become a marked block in that directory's
 *   `pre-commit` script (husky 9: `.husky/pre-commit`, beside `.husky/_`), core.hooksPath and
 *   every other hook stay as they are. husky's `.husky/_` is git-ignored, so a new worktree has
 *   no hooks until husky is armed there: install arms every existing worktree (a copy of the
 *   main checkout's `.husky/_`), and the pool arms its slots (packages/services/src/hooks.ts).
 * - **shared** (no core.hooksPath, or one naming a directory that does not exist, as in a clone
 *   where husky never ran): the hook goes into git's default hooks directory
 *   `<git common dir>/hooks`, shared by every worktree; a foreign pre-commit hook there
 *   (simple-git-hooks, a hand-written one) is moved aside and chained after the gates.
 * A pre-commit of the repository's own that fixes what is staged (lint-staged with `--write`)
 * runs before the gates in both modes, so they check its result (hook-text.ts, D331).
 * lefthook and pre-commit (Python) write their own hooks from their config: install changes
 * nothing there and says which lines to add. What install changed is kept in
 * `<git common dir>/wtpool-gates.json`, so uninstall restores what was there.
 */
import { existsSync, promises as fs, readFileSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { failure, git, gitRun, run } from '@wtpool/core';
import type { RepoPaths } from '@wtpool/config';
import { writeFileAtomic } from '@wtpool/lock';
import {
  BLOCK_START,
  HOOK_MARKER,
  fixerLines,
  hookScript,
  placeBlock,
  removeBlock,
} from './hook-text.js';

export { HOOK_BLOCK, HOOK_MARKER, hookScript } from './hook-text.js';

/** The gates bin of this installation (the fallback the hook uses). */
export const GATES_BIN = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  'bin',
  'gates.js',
);

export type HookManager = 'husky' | 'simple-git-hooks' | 'lefthook' | 'pre-commit' | 'plain';

export interface HookManagerInfo {
  manager: HookManager;
  /** The local core.hooksPath, if any. */
  hooksPath: string | null;
  /** The config file or directory that showed the manager. */
  evidence: string | null;
}

export interface WorktreeHookState {
  path: string;
  /** The pre-commit hook git runs in this worktree. */
  hook: string;
  active: boolean;
  /** Why not, when inactive. */
  reason?: string;
}

export interface InstallResult {
  mode: 'shared' | 'directory' | 'guidance';
  manager: HookManager;
  /** Where the gates are: the shared hooks dir, or the repository's hook directory. */
  hooksDir: string;
  /** The file holding the gates: the shared hook, or the directory's pre-commit script. */
  hook: string;
  gatesBin: string;
  /** core.hooksPath before install (local scope), if any. */
  previousHooksPath: string | null;
  /** Set when a global/system core.hooksPath forced a local absolute one. */
  hooksPath: string | null;
  /** A foreign pre-commit hook moved aside and chained after the gates. */
  chained: string | null;
  /** Worktrees whose git-ignored hook directory was copied from the main checkout. */
  armed: string[];
  worktrees: WorktreeHookState[];
  /** Steps left to the user (commit the hook script, lines for lefthook, …). */
  notes: string[];
}

interface SavedState {
  mode: 'shared' | 'directory';
  previousHooksPath: string | null;
  hooksPath: string | null;
  chained: string | null;
  /** directory mode: install created the pre-commit script. */
  created: boolean;
  hook: string;
}

const real = (p: string) => (existsSync(p) ? realpathSync(p) : path.resolve(p));
const stateFile = (repo: RepoPaths) => path.join(repo.commonDir, 'wtpool-gates.json');

/** Worktree directories of the repository (main checkout first), existing ones only. */
export async function listWorktrees(cwd: string): Promise<string[]> {
  const out = await git(['worktree', 'list', '--porcelain'], { cwd });
  return out
    .split('\n')
    .filter((l) => l.startsWith('worktree '))
    .map((l) => l.slice('worktree '.length))
    .filter((p) => existsSync(p));
}

/** Where git looks for the pre-commit hook in `worktree`. */
export async function effectiveHook(worktree: string): Promise<string> {
  return real(
    (
      await git(['rev-parse', '--path-format=absolute', '--git-path', 'hooks/pre-commit'], {
        cwd: worktree,
      })
    ).trim(),
  );
}

function readHead(file: string, n = 400): string {
  try {
    return readFileSync(file, 'utf8').slice(0, n);
  } catch {
    return '';
  }
}

async function localHooksPath(repo: RepoPaths): Promise<string | null> {
  const local = await gitRun(['config', '--local', '--get', 'core.hooksPath'], {
    cwd: repo.worktree,
  });
  return local.code === 0 && local.stdout.trim() ? local.stdout.trim() : null;
}

/** Which hook manager a repository uses, from its config files and core.hooksPath. */
export async function detectHookManager(repo: RepoPaths): Promise<HookManagerInfo> {
  const root = repo.mainRoot;
  const hooksPath = await localHooksPath(repo);
  const has = (f: string) => existsSync(path.join(root, f));
  if ((hooksPath && /(^|\/)\.husky(\/_)?\/?$/.test(hooksPath)) || has('.husky'))
    return { manager: 'husky', hooksPath, evidence: '.husky' };
  for (const f of ['lefthook.yml', 'lefthook.yaml', '.lefthook.yml', '.lefthook.yaml'])
    if (has(f)) return { manager: 'lefthook', hooksPath, evidence: f };
  if (has('.pre-commit-config.yaml'))
    return { manager: 'pre-commit', hooksPath, evidence: '.pre-commit-config.yaml' };
  for (const f of ['.simple-git-hooks.json', '.simple-git-hooks.cjs', '.simple-git-hooks.js'])
    if (has(f)) return { manager: 'simple-git-hooks', hooksPath, evidence: f };
  const pkg = readHead(path.join(root, 'package.json'), 1 << 20);
  if (pkg.includes('"simple-git-hooks"'))
    return { manager: 'simple-git-hooks', hooksPath, evidence: 'package.json' };
  return { manager: 'plain', hooksPath, evidence: null };
}

/** The script a hook directory runs for pre-commit (husky: `.husky/pre-commit`, not `_/`). */
function directoryScript(root: string, hooksPath: string): string {
  const dir = path.resolve(root, hooksPath);
  const base = path.basename(dir) === '_' ? path.dirname(dir) : dir;
  return path.join(base, 'pre-commit');
}

/** Exact lines for managers that write hooks from their own config. */
function guidanceFor(info: HookManagerInfo): string[] {
  if (info.manager === 'lefthook')
    return [
      `lefthook writes the hooks from ${info.evidence}: add the gates there, then run \`npx lefthook install\`:`,
      'pre-commit:',
      '  commands:',
      '    wtpool-gates:',
      '      run: npx --no-install gates pre-commit',
    ];
  return [
    'pre-commit (Python) writes the hooks from .pre-commit-config.yaml: add the gates there, then run `pre-commit install`:',
    'repos:',
    '  - repo: local',
    '    hooks:',
    '      - id: wtpool-gates',
    '        name: worktree-pool gates',
    '        entry: npx --no-install gates pre-commit',
    '        language: system',
    '        pass_filenames: false',
  ];
}

export async function hookStates(repo: RepoPaths): Promise<WorktreeHookState[]> {
  const hooksPath = await localHooksPath(repo);
  const directory = hooksPath !== null && existsSync(path.resolve(repo.mainRoot, hooksPath));
  const ours = real(path.join(repo.commonDir, 'hooks', 'pre-commit'));
  const states: WorktreeHookState[] = [];
  for (const wt of await listWorktrees(repo.worktree)) {
    const hook = await effectiveHook(wt);
    if (directory) {
      const script = directoryScript(wt, hooksPath);
      const runs = existsSync(hook);
      const has = readHead(script, 1 << 16).includes(BLOCK_START);
      const reason = !runs
        ? `${hook} is missing (hooks not armed: run \`gates install\` again, or husky's install, there)`
        : !has
          ? `${path.relative(wt, script)} has no gates block in this checkout (commit it on the branch)`
          : undefined;
      states.push({ path: wt, hook, active: runs && has, ...(reason ? { reason } : {}) });
    } else {
      const isOurs = hook === ours && existsSync(hook) && readHead(hook).includes(HOOK_MARKER);
      states.push({ path: wt, hook, active: isOurs });
    }
  }
  return states;
}

async function readState(repo: RepoPaths): Promise<SavedState | null> {
  try {
    return JSON.parse(await fs.readFile(stateFile(repo), 'utf8')) as SavedState;
  } catch {
    return null;
  }
}

/**
 * Adds the block to a hook script (or moves it to its place, hook-text.ts's placeBlock: after
 * the script's own fixer, e.g. lint-staged); `changed` false when it already is there.
 */
async function addBlock(
  script: string,
): Promise<{ changed: boolean; created: boolean; after: string | null; warning: string | null }> {
  const created = !existsSync(script);
  const text = created ? '#!/usr/bin/env sh\n' : await fs.readFile(script, 'utf8');
  const placed = placeBlock(text);
  const { after, warning } = placed;
  if (placed.text === text) return { changed: false, created: false, after, warning };
  await fs.mkdir(path.dirname(script), { recursive: true });
  await writeFileAtomic(script, placed.text);
  await fs.chmod(script, 0o755);
  return { changed: true, created, after, warning };
}

export async function installHooks(
  repo: RepoPaths,
  opts: { gatesBin?: string } = {},
): Promise<InstallResult> {
  const gatesBin = opts.gatesBin ?? GATES_BIN;
  const info = await detectHookManager(repo);
  const saved = await readState(repo);
  const base = { manager: info.manager, gatesBin, armed: [] as string[] };

  if (info.manager === 'lefthook' || info.manager === 'pre-commit') {
    return {
      ...base,
      mode: 'guidance',
      hooksDir: repo.mainRoot,
      hook: path.join(repo.mainRoot, info.evidence!),
      previousHooksPath: info.hooksPath,
      hooksPath: null,
      chained: null,
      worktrees: await hookStates(repo),
      notes: guidanceFor(info),
    };
  }

  const hooksPath = info.hooksPath;
  if (info.manager === 'husky')
    return installInDirectory(repo, hooksPath ?? '.husky/_', base, saved);
  if (hooksPath !== null && existsSync(path.resolve(repo.mainRoot, hooksPath))) {
    return installInDirectory(repo, hooksPath, base, saved);
  }

  const hooksDir = path.join(repo.commonDir, 'hooks');
  const hook = path.join(hooksDir, 'pre-commit');
  await fs.mkdir(hooksDir, { recursive: true });

  // 1. Keep a foreign pre-commit hook: move it aside, the new hook runs it after the gates,
  //    or before them when it fixes what is staged (lint-staged…: D331).
  let chained: string | null = null;
  if (existsSync(hook) && !readHead(hook).includes(HOOK_MARKER)) {
    chained = `${hook}.pre-gates`;
    if (existsSync(chained)) chained = `${hook}.pre-gates.${Date.now()}`;
    await fs.rename(hook, chained);
  }
  const chainedFixes = fixerLines(readHead(`${hook}.pre-gates`, 1 << 16)).length > 0;
  await writeFileAtomic(hook, hookScript(gatesBin, { chainedFixes }));
  await fs.chmod(hook, 0o755);

  // 2. A core.hooksPath naming a directory that does not exist runs no hook at all (husky's
  //    `.husky/_` before its install ran): unset it, local and per worktree, so git uses the
  //    shared directory. It is kept in the state file; uninstall puts it back.
  const previousHooksPath = hooksPath;
  if (previousHooksPath !== null)
    await gitRun(['config', '--local', '--unset-all', 'core.hooksPath'], { cwd: repo.worktree });
  const worktrees = await listWorktrees(repo.worktree);
  const perWorktree = await gitRun(['config', '--bool', '--get', 'extensions.worktreeConfig'], {
    cwd: repo.worktree,
  });
  if (perWorktree.stdout.trim() === 'true') {
    for (const wt of worktrees)
      await gitRun(['config', '--worktree', '--unset-all', 'core.hooksPath'], { cwd: wt });
  }

  // 3. A global or system core.hooksPath would still win: pin the local one to our directory.
  let pinned: string | null = null;
  const effective = await gitRun(['config', '--get', 'core.hooksPath'], { cwd: repo.worktree });
  if (effective.code === 0 && effective.stdout.trim()) {
    pinned = hooksDir;
    await git(['config', '--local', 'core.hooksPath', hooksDir], { cwd: repo.worktree });
  }
  await writeFileAtomic(
    stateFile(repo),
    JSON.stringify({
      mode: 'shared',
      previousHooksPath: saved?.previousHooksPath ?? previousHooksPath,
      hooksPath: pinned ?? saved?.hooksPath ?? null,
      chained: saved?.chained ?? chained,
      created: false,
      hook,
    } satisfies SavedState) + '\n',
  );

  // 4. Verify every worktree resolves the hook to ours.
  const states = await hookStates(repo);
  const inactive = states.filter((s) => !s.active);
  if (inactive.length) {
    throw failure(
      'ERR_HOOKS_INACTIVE',
      `the gates hook is not active in ${inactive.map((s) => s.path).join(', ')} (git runs ${inactive[0]!.hook})`,
      { hint: 'check `git config --show-origin --get-all core.hooksPath` in that worktree' },
    );
  }
  const notes =
    info.manager === 'simple-git-hooks'
      ? [
          'simple-git-hooks rewrites .git/hooks/pre-commit when it runs: run `gates install` again after it (its hook stays chained to the gates)',
        ]
      : [];
  if (chainedFixes)
    notes.push(
      `the previous pre-commit hook fixes what is staged: it runs first, then the gates check its result`,
    );
  return {
    ...base,
    mode: 'shared',
    hooksDir,
    hook,
    previousHooksPath,
    hooksPath: pinned,
    chained,
    worktrees: states,
    notes,
  };
}

async function installInDirectory(
  repo: RepoPaths,
  hooksPath: string,
  base: { manager: HookManager; gatesBin: string; armed: string[] },
  saved: SavedState | null,
): Promise<InstallResult> {
  const script = directoryScript(repo.mainRoot, hooksPath);
  const { created, after, warning } = await addBlock(script);
  await writeFileAtomic(
    stateFile(repo),
    JSON.stringify({
      mode: 'directory',
      previousHooksPath: hooksPath,
      hooksPath: null,
      chained: null,
      created: created || (saved?.mode === 'directory' && saved.created),
      hook: script,
    } satisfies SavedState) + '\n',
  );
  // Arm every other worktree: a relative hooks directory that is git-ignored (husky's `_`) is
  // missing there, and git then runs no hook at all.
  // husky not run yet in this clone (no `.husky/_`): run the repository's own husky, which sets
  // core.hooksPath itself, as its `prepare` script would.
  const huskyBin = path.join(repo.mainRoot, 'node_modules', '.bin', 'husky');
  if (base.manager === 'husky' && !existsSync(path.resolve(repo.mainRoot, hooksPath, 'h'))) {
    if (existsSync(huskyBin)) await runHusky(huskyBin, repo.mainRoot);
  }
  const { armHooks } = await import('@wtpool/services');
  const armed: string[] = [];
  for (const wt of await listWorktrees(repo.worktree)) {
    if (real(wt) === real(repo.mainRoot)) continue;
    if ((await armHooks(repo.mainRoot, wt)).armed) armed.push(wt);
  }
  const states = await hookStates(repo);
  const main = states.find((s) => real(s.path) === real(repo.mainRoot));
  // HUSKY=0 is the user turning husky's hooks off (CI images often do): the gates go with them,
  // and an install running our `prepare` must not fail for it.
  const huskyOff = base.manager === 'husky' && process.env.HUSKY === '0';
  if (main && !main.active && !huskyOff) {
    throw failure(
      'ERR_HOOKS_INACTIVE',
      `the gates are not active in ${main.path}: ${main.reason}`,
      {
        hint:
          base.manager === 'husky'
            ? 'run husky once (`npx husky`), then `gates install` again'
            : 'check `git config --show-origin --get-all core.hooksPath`',
      },
    );
  }
  const rel = path.relative(repo.mainRoot, script);
  // Only while the script with the gates is not committed as it is (a clone of a repository
  // that already committed it has nothing to do).
  const pending = await gitRun(['status', '--porcelain', '--', rel], { cwd: repo.mainRoot });
  const notes =
    pending.code !== 0 || pending.stdout.trim()
      ? [
          `commit ${rel} (\`git add ${rel} && git commit\`) so every branch and worktree runs the gates`,
        ]
      : [];
  if (after) notes.push(`the gates run after \`${after}\` in ${rel}: they check what it fixed`);
  if (warning) notes.push(warning);
  if (huskyOff && main && !main.active)
    notes.push('HUSKY=0: husky did not arm its hooks, so the gates do not run on commit here');
  return {
    ...base,
    armed,
    mode: 'directory',
    hooksDir: path.dirname(script),
    hook: script,
    previousHooksPath: hooksPath,
    hooksPath: null,
    chained: null,
    worktrees: states,
    notes,
  };
}

/** husky's own install (it prints why when it does nothing; the check after it reports). */
async function runHusky(bin: string, cwd: string): Promise<void> {
  await run(bin, [], { cwd }).catch(() => undefined); // best effort, as before: the checks below tell
}

export interface UninstallResult {
  mode: 'shared' | 'directory' | 'none';
  removed: string | null;
  /** The chained hook put back in place. */
  restored: string | null;
  /** core.hooksPath set back (shared mode), if install had removed one. */
  hooksPath: string | null;
}

/** Undoes `gates install`: removes what it wrote, puts back what it moved or unset. */
export async function uninstallHooks(repo: RepoPaths): Promise<UninstallResult> {
  const saved = await readState(repo);
  const hooksPath = await localHooksPath(repo);
  const directory = hooksPath !== null && existsSync(path.resolve(repo.mainRoot, hooksPath));
  if (saved?.mode === 'directory' || (!saved && directory)) {
    const script = saved?.hook ?? directoryScript(repo.mainRoot, hooksPath!);
    let removed: string | null = null;
    if (existsSync(script)) {
      const text = await fs.readFile(script, 'utf8');
      const left = removeBlock(text);
      if (left !== text) {
        removed = script;
        if (saved?.created && left.replace(/^#!.*\n?/, '').trim() === '') await fs.rm(script);
        else await writeFileAtomic(script, left);
      }
    }
    await fs.rm(stateFile(repo), { force: true });
    return { mode: 'directory', removed, restored: null, hooksPath: null };
  }
  const hook = path.join(repo.commonDir, 'hooks', 'pre-commit');
  let removed: string | null = null;
  if (existsSync(hook) && readHead(hook).includes(HOOK_MARKER)) {
    await fs.rm(hook);
    removed = hook;
  }
  let restored: string | null = null;
  const chained = saved?.chained ?? `${hook}.pre-gates`;
  if (existsSync(chained) && !existsSync(hook)) {
    await fs.rename(chained, hook);
    restored = hook;
  }
  if (saved?.hooksPath)
    await gitRun(['config', '--local', '--unset-all', 'core.hooksPath'], { cwd: repo.worktree });
  let putBack: string | null = null;
  if (saved?.previousHooksPath) {
    await git(['config', '--local', 'core.hooksPath', saved.previousHooksPath], {
      cwd: repo.worktree,
    });
    putBack = saved.previousHooksPath;
  }
  await fs.rm(stateFile(repo), { force: true });
  return { mode: saved || removed ? 'shared' : 'none', removed, restored, hooksPath: putBack };
}
