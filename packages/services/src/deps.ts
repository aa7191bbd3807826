/**
 * Dependencies per slot, installed once and re-run only when the slot's lockfile hash changes
 * (the hash is kept in the slot: node_modules/.wtpool-deps.json, so it survives releases with
 * node_modules and disappears with it). Strategies:
 *   auto      hard-link clone of the main checkout's node_modules when the lockfiles match;
 *             else a hard-link clone of a slot already installed from the same lockfile (the
 *             "seed"); else one install, with the package manager the repository names, in
 *             this slot, which becomes the seed of the others (D180)
 *   hardlink  the clone of the main checkout only (fails when the lockfiles differ)
 *   pnpm|npm  the package manager's frozen install
 *   command   deps.command, run in the worktree
 *   none      nothing
 * The clone copies every node_modules of the workspace (root and packages) with `cp -lRP`:
 * files become hard links (no extra data on disk), symlinks stay symlinks (pnpm's layout is
 * relative links into node_modules/.pnpm, so they resolve inside the slot). The `.bin` shims,
 * which name the source's absolute path, are rewritten for the slot.
 *
 * An install's whole output goes to `<stateDir>/logs/deps-<slot>.log` (0600); a failure names
 * that log and quotes the first line of the output that says why (D181). A `packageManager` pin
 * is honoured: the named manager runs (through corepack when the installed one is another major
 * or is missing), and a pin it cannot honour is reported with what to do (D182).
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ExitCode, WtpoolError, failure, errno, redact, run, type RunResult } from '@wtpool/core';
import type { Config } from '@wtpool/config';
import { ensurePrivateDir, writePrivateFile } from '@wtpool/lock';
import { hardlinkClone } from './deps-clone.js';
import { addSeed, readMarker, seedOrInstall, writeMarker, type Lock } from './deps-seed.js';
import { primeAfterInstall } from './disk-records.js';
import type { SlotProvider } from './provider.js';

export { hardlinkClone };

export const LOCKFILES = [
  'pnpm-lock.yaml',
  'package-lock.json',
  'npm-shrinkwrap.json',
  'yarn.lock',
];

export interface DepsResult {
  strategy: 'hardlink' | 'pnpm' | 'npm' | 'yarn' | 'command' | 'skipped';
  reason: string;
  /** The checkout a hard-link clone copied (its disk records stand for the clone's). */
  source?: string;
}

export interface DepsOptions {
  /** The pool's state dir: install logs and the seed records live there (none: no log, no seed). */
  stateDir?: string | undefined;
  /** The slot, for the log's name and messages (default: the worktree's directory name). */
  slot?: string | undefined;
  /** Progress of long steps, for a terminal. */
  progress?: ((message: string) => void) | undefined;
}

async function exists(p: string): Promise<boolean> {
  return fs.lstat(p).then(
    () => true,
    () => false,
  );
}

/** The first lockfile of a checkout and the sha256 of its content. */
export async function lockfileHash(dir: string): Promise<Lock | null> {
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

// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/g;
const CAUSE =
  /\b(ERR_[A-Z0-9_]+|E[A-Z0-9]{3,}|ERROR|[Ee]rror|ERR!|fatal|[Ff]ailed|Refusing|[Cc]annot|[Cc]ould not|not found|[Nn]o matching|Unsupported|[Uu]nable to)\b/;
const NOISE = /^(npm (warn|WARN|notice)|WARN\b|warning\b|Progress:|Packages:|\+{3,}|-{3,})/;

const SCRIPT = /^(\S+ (?:preinstall|install|postinstall|prepare)): ?(.*)$/;

/**
 * The first line of a failed install's output that says why (not the package manager's last
 * line, usually a hint). When a dependency's install script failed (pnpm prints
 * `<pkg> postinstall: Failed`), the first such line of that script's own output; lines of
 * scripts that succeeded are not causes. npm's `npm error code X` is joined to the next line.
 */
export function firstCause(output: string): string {
  const lines = output
    .replace(ANSI, '')
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const isCause = (l: string) => !NOISE.test(l) && CAUSE.test(l);
  const failedScript = lines
    .map((l) => SCRIPT.exec(l))
    .find((m) => m !== null && m[2] === 'Failed')?.[1];
  if (failedScript) {
    const own = lines
      .map((l) => SCRIPT.exec(l))
      .filter((m) => m !== null && m[1] === failedScript && m[2] !== 'Failed')
      .map((m) => m![2]!);
    const why = own.find(isCause);
    if (why) return `${failedScript}: ${why}`;
  }
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    if (SCRIPT.test(l) || !isCause(l)) continue;
    const code = /^npm (?:error|ERR!) code (\S+)$/.exec(l);
    if (code && lines[i + 1])
      return `${code[1]}: ${lines[i + 1]!.replace(/^npm (?:error|ERR!) /, '')}`;
    return l;
  }
  return lines.at(-1) ?? '';
}

/** The package.json `packageManager` pin of a checkout, e.g. pnpm@10.34.5 (hash dropped). */
export async function packageManagerPin(
  dir: string,
): Promise<{ name: 'pnpm' | 'npm' | 'yarn'; version: string; spec: string } | null> {
  try {
    const pkg = JSON.parse(await fs.readFile(path.join(dir, 'package.json'), 'utf8')) as {
      packageManager?: unknown;
    };
    const m =
      typeof pkg.packageManager === 'string'
        ? /^(pnpm|npm|yarn)@(\d+\.\d+\.\d+[^+\s]*)/.exec(pkg.packageManager)
        : null;
    return m ? { name: m[1] as 'pnpm', version: m[2]!, spec: `${m[1]}@${m[2]}` } : null;
  } catch {
    return null;
  }
}

const major = (v: string | null) => (v ? /^(\d+)\./.exec(v)?.[1] : undefined);

/** Where a failing slot's install output is kept. */
export const depsLogFile = (stateDir: string, slot: string) =>
  path.join(stateDir, 'logs', `deps-${slot}.log`);

interface Install {
  what: string;
  /** The package manager (for pin messages), or null for deps.command. */
  pm: 'pnpm' | 'npm' | 'yarn' | null;
  cmd: string;
  args: string[];
}

/**
 * Runs an install, keeping its whole output in the slot's log; a failure is one line naming
 * the first cause and the log, with what to do.
 */
async function runInstall(
  inst: Install,
  worktree: string,
  opts: DepsOptions,
  pin: Awaited<ReturnType<typeof packageManagerPin>>,
  installed: string | null,
): Promise<void> {
  const slot = opts.slot ?? path.basename(worktree);
  opts.progress?.(`${slot}: ${inst.what}…`);
  // CI=true: no prompts, no interactive progress from the package manager.
  const r = await run(inst.cmd, inst.args, { cwd: worktree, extraEnv: { CI: 'true' } });
  const log = opts.stateDir ? depsLogFile(opts.stateDir, slot) : null;
  if (log) {
    ensurePrivateDir(path.dirname(log));
    await writePrivateFile(
      log,
      `# ${new Date().toISOString()} ${slot}: ${[inst.cmd, ...inst.args].join(' ')} in ${worktree} (exit ${r.code})\n` +
        redact(r.output),
    );
  }
  if (r.code === 0) return;
  throw installFailed(inst, worktree, r, log, pin, installed);
}

function installFailed(
  inst: Install,
  worktree: string,
  r: RunResult,
  log: string | null,
  pin: Awaited<ReturnType<typeof packageManagerPin>>,
  installed: string | null,
) {
  const cause = r.code === 127 ? `${inst.cmd}: not found` : firstCause(r.output);
  const pinTrouble =
    pin &&
    pin.name === inst.pm &&
    (r.code === 127 ||
      r.output.includes(pin.spec) ||
      /Refusing to run|packageManager|BAD_PM_VERSION|corepack|manage-package-manager-versions/i.test(
        r.output,
      ));
  const where = `${inst.what} failed in ${worktree} (exit ${r.code}): ${cause}${log ? ` (log: ${log})` : ''}`;
  if (pinTrouble) {
    // The pool's own messages keep only the first line of an error (a broken slot's reason):
    // what to do about the pin goes in the message itself.
    const fix =
      pin.name === 'pnpm'
        ? `set manage-package-manager-versions=false in the repository's .npmrc to use ${installed ? `pnpm ${installed}` : 'the installed pnpm'}, or install ${pin.spec} (\`npm i -g ${pin.spec}\`)`
        : `install ${pin.spec} (\`corepack enable\`, or \`npm i -g ${pin.spec}\`)`;
    return failure(
      'ERR_DEPS',
      redact(
        `package.json pins ${pin.spec} (packageManager) and ${installed ? `${pin.name} ${installed}` : 'the installed package manager'} could not run it: ${fix}; ${where}`,
      ),
      {
        hint: `${fix}, then \`pool doctor --fix\``,
        details: { command: [inst.cmd, ...inst.args], log, exitCode: r.code },
      },
    );
  }
  return failure('ERR_DEPS', redact(where), {
    hint: `fix the install${log ? ` (full log: ${log})` : ''} or set deps.strategy in pool.config.yaml, then \`pool doctor --fix\``,
    details: { command: [inst.cmd, ...inst.args], log, exitCode: r.code },
  });
}

/** The version a package manager binary reports, or null when it is missing. */
async function versionOf(cmd: string, cwd: string): Promise<string | null> {
  // In a directory whose pin pnpm would switch to, `pnpm --version` itself may download it:
  // ask from the filesystem root, where no package.json pins anything.
  const r = await run(cmd, ['--version'], { cwd: path.parse(cwd).root, extraEnv: { CI: 'true' } });
  return r.code === 0 ? r.stdout.trim() : null;
}

/**
 * How to call the package manager the repository names: its pin (package.json
 * `packageManager`), else its lockfile's. The installed binary when its major matches the pin
 * (pnpm itself then switches to the exact version, unless told not to); corepack when the
 * binary is missing or another major; an error saying what to do when neither can.
 */
async function managerCommand(
  pm: 'pnpm' | 'npm' | 'yarn',
  args: string[],
  worktree: string,
  pin: Awaited<ReturnType<typeof packageManagerPin>>,
): Promise<{ inst: Install; installed: string | null }> {
  const installed = await versionOf(pm, worktree);
  const what = `${pm} ${args[0]}`;
  const wantMajor = pin && pin.name === pm ? major(pin.version) : undefined;
  if (!wantMajor || major(installed) === wantMajor) {
    return { inst: { what, pm, cmd: pm, args }, installed };
  }
  if ((await versionOf('corepack', worktree)) !== null) {
    // corepack runs the exact pinned version (it downloads it once, from the npm registry).
    return {
      inst: { what: `${what} (corepack, ${pin!.spec})`, pm, cmd: 'corepack', args: [pm, ...args] },
      installed,
    };
  }
  throw failure(
    'ERR_DEPS',
    `package.json pins ${pin!.spec} (packageManager) but ${installed ? `${pm} ${installed}` : `no ${pm}`} is installed and corepack is not available`,
    { hint: `install ${pin!.spec} (\`npm i -g ${pin!.spec}\`), then \`pool doctor --fix\`` },
  );
}

type DepsConfig = Config['deps'];

/** Brings the worktree's dependencies up to date with its lockfile; a no-op when they are. */
export async function installDeps(
  mainRoot: string,
  worktree: string,
  deps: DepsConfig,
  opts: DepsOptions = {},
): Promise<DepsResult> {
  if (deps.strategy === 'none') return { strategy: 'skipped', reason: 'deps.strategy is none' };
  if (!(await exists(path.join(worktree, 'package.json')))) {
    return { strategy: 'skipped', reason: 'no package.json' };
  }
  const lock = await lockfileHash(worktree);
  const marker = await readMarker(worktree);
  if (
    marker &&
    marker.hash === (lock?.hash ?? null) &&
    (await exists(path.join(worktree, 'node_modules')))
  ) {
    return { strategy: 'skipped', reason: 'lockfile unchanged' };
  }
  const result = await choose(mainRoot, worktree, deps, lock, opts);
  await writeMarker(worktree, lock, result.strategy);
  if (opts.stateDir) await primeAfterInstall(opts.stateDir, worktree, result.source);
  return result;
}

async function choose(
  mainRoot: string,
  worktree: string,
  deps: DepsConfig,
  lock: Lock | null,
  opts: DepsOptions,
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
    const inst = { what: 'deps.command', pm: null, cmd: 'sh', args: ['-c', deps.command] };
    await runInstall(inst, worktree, opts, null, null);
    return { strategy: 'command', reason: deps.command };
  }
  if (s === 'auto' || s === 'hardlink') {
    const main = await lockfileHash(mainRoot);
    const same = lock !== null && main?.hash === lock.hash && main.file === lock.file;
    if (same && (await exists(path.join(mainRoot, 'node_modules')))) {
      await hardlinkClone(mainRoot, worktree);
      return {
        strategy: 'hardlink',
        reason: `${lock.file} matches the main checkout`,
        source: mainRoot,
      };
    }
    if (s === 'hardlink') {
      throw failure(
        'ERR_DEPS',
        `cannot hard-link node_modules: the slot's lockfile differs from the main checkout's (or main has no node_modules)`,
        { hint: 'install in the main checkout, or use deps.strategy auto' },
      );
    }
  }
  if (s !== 'auto' || !lock || !opts.stateDir) return managerInstall(worktree, s, lock, opts);
  // auto, no usable main checkout: the first slot to get here installs, every other slot with
  // the same lockfile waits for it and clones its node_modules (one install for the pool).
  const stateDir = opts.stateDir;
  const found = await seedOrInstall(stateDir, worktree, lock, () =>
    managerInstall(worktree, s, lock, opts),
  );
  if ('r' in found) return found.r;
  opts.progress?.(`${opts.slot ?? path.basename(worktree)}: cloning node_modules of ${found.src}…`);
  await hardlinkClone(found.src, worktree);
  await writeMarker(worktree, lock, 'hardlink');
  await addSeed(stateDir, lock.hash, worktree);
  return { strategy: 'hardlink', reason: `${lock.file} matches ${found.src}`, source: found.src };
}

/** The frozen install of the package manager the repository names (its pin, else its lockfile). */
async function managerInstall(
  worktree: string,
  s: DepsConfig['strategy'],
  lock: Lock | null,
  opts: DepsOptions,
): Promise<DepsResult> {
  const pin = await packageManagerPin(worktree);
  const pm = s === 'pnpm' || s === 'npm' ? s : (pin?.name ?? managerOf(lock?.file));
  if (pm === 'pnpm') {
    const { inst, installed } = await managerCommand(
      'pnpm',
      ['install', '--frozen-lockfile', '--prefer-offline'],
      worktree,
      pin,
    );
    await runInstall(inst, worktree, opts, pin, installed);
    return { strategy: 'pnpm', reason: inst.what };
  }
  if (pm === 'yarn') {
    const { inst, installed } = await managerCommand(
      'yarn',
      ['install', '--frozen-lockfile'],
      worktree,
      pin,
    );
    await runInstall(inst, worktree, opts, pin, installed);
    return { strategy: 'yarn', reason: inst.what };
  }
  // Without a lockfile, `npm install` would write one into the slot, leaving it dirty: every
  // release would then refuse. Install without creating it.
  const args = lock
    ? ['ci', '--prefer-offline', '--no-audit', '--no-fund']
    : ['install', '--no-package-lock', '--prefer-offline', '--no-audit', '--no-fund'];
  const { inst, installed } = await managerCommand('npm', args, worktree, pin);
  await runInstall(inst, worktree, opts, pin, installed);
  return { strategy: 'npm', reason: inst.what };
}

const managerOf = (lockfile: string | undefined) =>
  lockfile === 'pnpm-lock.yaml' ? 'pnpm' : lockfile === 'yarn.lock' ? 'yarn' : 'npm';

export function depsProvider(config: Config): SlotProvider {
  const sync = async (ctx: Parameters<NonNullable<SlotProvider['provision']>>[0]) => {
    const r = await installDeps(ctx.repo.mainRoot, ctx.names.path, config.deps, {
      stateDir: ctx.repo.stateDir,
      slot: ctx.names.id,
      progress: (m) => ctx.progress(m),
    });
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
    // So does the base a release returns to (setup, which runs after, needs them current).
    refresh: async (ctx, why) => {
      if (why === 'release') await sync(ctx);
    },
  };
}
