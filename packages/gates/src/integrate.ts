/**
 * The local merge queue. `run` merges candidate branches one by one (`--no-ff`) into the
 * integration branch, in a worktree of its own, and runs `gates ci` after each: what passes is
 * kept, what fails is undone (the previous head restored) and recorded as rejected with its log.
 * `promote` fast-forwards main only to an integration head that passed.
 *
 * Like lint-staged's git workflow, every step knows how to undo itself: before a merge the
 * previous head is recorded in the state (`current`); a failure, a signal (SIGINT/SIGTERM/SIGHUP)
 * or, after a crash, the recovery step at the start of the next command aborts the merge and
 * resets to that head. The repository is never left mid-merge.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { WtpoolError, conflictError, failure, notFoundError, usageError } from '@wtpool/core';
import { integrationWorktree, resolveRepo, type LoadedConfig } from '@wtpool/config';
import { JsonStore, PRIVATE_FILE_MODE, ensurePrivateDir, withLock } from '@wtpool/lock';
import { branchHead, checkBranch, keptBranches } from './candidates.js';
import { gateEnv, git, gitTry, shell, stopChildren } from './exec.js';
import { formatReport, runPipeline } from './pipeline.js';

export type ResultStatus = 'kept' | 'rejected' | 'conflict' | 'skipped' | 'interrupted';

export interface MergeResult {
  branch: string;
  /** The branch's commit that was tried. */
  branchHead: string | null;
  target: string;
  status: ResultStatus;
  reason: string;
  /** Integration head after the merge (kept only). */
  mergedAs?: string;
  /** The gate that failed (rejected only). */
  failedGate?: string;
  /** Log file of a rejected or conflicting merge. */
  log?: string;
  at: string;
  ms: number;
}

export interface InProgress {
  target: string;
  branch: string;
  prevHead: string;
  worktree: string;
  pid: number;
  startedAt: string;
}

export interface IntegrationState {
  current: InProgress | null;
  results: MergeResult[];
  /** Integration heads that passed `gates ci`. */
  green: { target: string; head: string; at: string }[];
}

const KEEP_RESULTS = 200;
const KEEP_GREEN = 100;

export function integrationDir(loaded: LoadedConfig): string {
  return path.join(loaded.repo.stateDir, 'integration');
}

function store(loaded: LoadedConfig): JsonStore<IntegrationState> {
  return new JsonStore<IntegrationState>(path.join(integrationDir(loaded), 'state.json'), {
    initial: { current: null, results: [], green: [] },
  });
}

/** Serializes integrate commands of one repository; a second one fails fast, naming the holder. */
async function exclusive<T>(
  loaded: LoadedConfig,
  purpose: string,
  fn: () => Promise<T>,
): Promise<T> {
  ensurePrivateDir(integrationDir(loaded));
  return withLock(path.join(integrationDir(loaded), 'queue'), fn, { timeout: 2000, purpose });
}

async function checkTarget(cwd: string, target: string): Promise<string> {
  if (
    target.startsWith('-') ||
    (await gitTry(['check-ref-format', '--branch', target], cwd)).code
  ) {
    throw usageError(`invalid target branch ${JSON.stringify(target)}`);
  }
  return target;
}

async function isAncestor(cwd: string, a: string, b: string): Promise<boolean> {
  return (await gitTry(['merge-base', '--is-ancestor', a, b], cwd)).code === 0;
}

async function dirty(cwd: string): Promise<string> {
  return git(['status', '--porcelain', '--untracked-files=no'], cwd);
}

/** The integration worktree on `target`, created (with the branch, from the base) when missing. */
export async function ensureWorktree(loaded: LoadedConfig, target: string): Promise<string> {
  const { repo, config } = loaded;
  const wt = integrationWorktree(config, repo);
  if (!(await branchHead(repo.worktree, target))) {
    const base = await branchHead(repo.worktree, config.pool.base);
    if (!base) throw failure('ERR_NO_BASE', `base branch ${config.pool.base} does not exist`);
    await git(['branch', '--no-track', target, base], repo.worktree);
  }
  if (!existsSync(wt)) {
    await git(['worktree', 'prune'], repo.worktree);
    await fs.mkdir(path.dirname(wt), { recursive: true });
    await git(['worktree', 'add', '--quiet', wt, target], repo.worktree);
    return wt;
  }
  if (resolveRepo(wt).commonDir !== repo.commonDir) {
    throw conflictError(`${wt} exists but is not a worktree of this repository`, {
      hint: 'move it away; `integrate run` creates its worktree there',
    });
  }
  const current = (await gitTry(['symbolic-ref', '--quiet', '--short', 'HEAD'], wt)).stdout.trim();
  if (current !== target) {
    if (await dirty(wt)) throw dirtyError(wt);
    await git(['switch', '--quiet', target], wt);
  }
  return wt;
}

const dirtyError = (wt: string) =>
  conflictError(`the integration worktree ${wt} has uncommitted changes`, {
    hint: `nobody should edit it: inspect with \`git -C ${wt} status\`, then stash or reset them`,
  });

/** Aborts a half-done merge and returns to the recorded head. Synchronous: usable in a signal handler. */
function restoreSync(wt: string, prevHead: string): void {
  const run = (args: string[]) =>
    execFileSync('git', args, { cwd: wt, stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    run(['rev-parse', '-q', '--verify', 'MERGE_HEAD']);
    run(['merge', '--abort']);
  } catch {
    // no merge in progress
  }
  run(['reset', '--quiet', '--hard', prevHead]);
  // Files the build or tests left behind (ignored ones, e.g. node_modules and dist, stay).
  run(['clean', '-fdq']);
}

/**
 * Recovery step: a previous run that died mid-merge (crash, SIGKILL) left `current` behind.
 * Abort its merge, restore its head and record it as interrupted (it is tried again later).
 */
export async function recover(loaded: LoadedConfig): Promise<MergeResult | null> {
  const st = store(loaded);
  const { current } = await st.read();
  if (!current) return null;
  if (existsSync(current.worktree)) restoreSync(current.worktree, current.prevHead);
  const result: MergeResult = {
    branch: current.branch,
    branchHead: null,
    target: current.target,
    status: 'interrupted',
    reason: `run of pid ${current.pid} stopped mid-merge; restored ${current.prevHead.slice(0, 12)}`,
    at: new Date().toISOString(),
    ms: 0,
  };
  await st.update((s) => {
    s.current = null;
    s.results.push(result);
  });
  return result;
}

class Interrupted extends WtpoolError {
  constructor(signal: NodeJS.Signals) {
    const code = signal === 'SIGINT' ? 130 : signal === 'SIGHUP' ? 129 : 143;
    super('ERR_INTERRUPTED', code, `integrate run interrupted by ${signal}; integration restored`, {
      hint: 'run `integrate run` again to continue with the remaining branches',
    });
  }
}

const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/** While `fn` runs, a signal stops the running child and is rethrown as Interrupted at the next step. */
async function interruptible<T>(fn: (check: () => void) => Promise<T>): Promise<T> {
  let caught: NodeJS.Signals | null = null;
  const onSignal = (sig: NodeJS.Signals) => {
    caught ??= sig;
    stopChildren('SIGTERM');
  };
  for (const s of SIGNALS) process.on(s, onSignal);
  try {
    return await fn(() => {
      if (caught) throw new Interrupted(caught);
    });
  } finally {
    for (const s of SIGNALS) process.off(s, onSignal);
  }
}

export interface RunOptions {
  branches?: string[];
  fromPool?: boolean;
  target?: string;
  /** Progress lines (stderr on a terminal). */
  progress?: (message: string) => void;
}

export interface RunReport {
  target: string;
  worktree: string;
  startHead: string;
  head: string;
  /** The final head passed `gates ci` (or nothing was merged onto a green head). */
  green: boolean;
  recovered: MergeResult | null;
  results: MergeResult[];
}

function logName(branch: string): string {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  return `${stamp}-${branch.replace(/[^A-Za-z0-9._-]+/g, '_')}.log`;
}

async function writeLog(loaded: LoadedConfig, branch: string, text: string): Promise<string> {
  const dir = path.join(integrationDir(loaded), 'logs');
  // A CI log may print credentials from the environment: owner-only, like the rest of the state.
  ensurePrivateDir(dir);
  const file = path.join(dir, logName(branch));
  await fs.writeFile(file, text, { mode: PRIVATE_FILE_MODE });
  return file;
}

async function resolveCandidates(loaded: LoadedConfig, opts: RunOptions): Promise<string[]> {
  if (opts.branches?.length && opts.fromPool) {
    throw usageError('give either --branches or --from-pool, not both');
  }
  if (opts.fromPool) return keptBranches(loaded);
  if (!opts.branches?.length) {
    throw usageError('no candidates: pass --branches A,B or --from-pool', {
      hint: 'see `integrate run --help`',
    });
  }
  const out: string[] = [];
  for (const b of opts.branches) out.push(await checkBranch(loaded.repo.worktree, b));
  return out;
}

/** Merges one candidate, runs the gates, keeps or undoes it. */
async function tryCandidate(
  loaded: LoadedConfig,
  st: JsonStore<IntegrationState>,
  wt: string,
  target: string,
  branch: string,
  check: () => void,
): Promise<MergeResult> {
  const started = Date.now();
  const head = await branchHead(wt, branch);
  const base = { branch, branchHead: head, target, at: new Date().toISOString() };
  const done = (r: Omit<MergeResult, keyof typeof base | 'ms'>): MergeResult => ({
    ...base,
    ...r,
    ms: Date.now() - started,
  });
  if (!head) return done({ status: 'skipped', reason: 'no such local branch' });
  if (await isAncestor(wt, head, 'HEAD')) {
    return done({ status: 'skipped', reason: `already in ${target}` });
  }
  const prevHead = await git(['rev-parse', 'HEAD'], wt);
  await st.update((s) => {
    s.current = {
      target,
      branch,
      prevHead,
      worktree: wt,
      pid: process.pid,
      startedAt: base.at,
    };
  });
  const header = `integrate ${branch} (${head}) into ${target} (${prevHead})\n${base.at}\n\n`;
  // Undo the merge, then forget it. If undoing throws, `current` stays for the recovery step.
  const undo = async () => {
    restoreSync(wt, prevHead);
    await clearCurrent(st);
  };
  try {
    const merge = await gitTry(
      ['merge', '--no-ff', '--no-edit', '-m', `integrate: merge ${branch} into ${target}`, head],
      wt,
    );
    check();
    if (merge.code !== 0) {
      await undo();
      const log = await writeLog(loaded, branch, `${header}$ git merge --no-ff\n${merge.output}`);
      return done({ status: 'conflict', reason: 'merge conflict', log });
    }
    const env = gateEnv([wt, loaded.repo.mainRoot]);
    if (loaded.config.gates.setup) {
      const setup = await shell(loaded.config.gates.setup, { cwd: wt, env });
      check();
      if (setup.code !== 0) {
        await undo();
        const text = `${header}$ ${loaded.config.gates.setup}\n${setup.output}`;
        const log = await writeLog(loaded, branch, text);
        return done({ status: 'rejected', reason: 'setup failed', failedGate: 'setup', log });
      }
    }
    const report = await runPipeline('ci', {
      cwd: wt,
      mainRoot: loaded.repo.mainRoot,
      config: loaded.config,
    });
    check();
    if (!report.ok) {
      await undo();
      const log = await writeLog(loaded, branch, header + formatReport(report) + '\n');
      return done({
        status: 'rejected',
        reason: `${report.failed} gate failed`,
        failedGate: report.failed!,
        log,
      });
    }
    const mergedAs = await git(['rev-parse', 'HEAD'], wt);
    await git(['clean', '-fdq'], wt);
    await clearCurrent(st);
    return done({ status: 'kept', reason: 'gates ci passed', mergedAs });
  } catch (e) {
    // Interrupted or failed unexpectedly: never leave the worktree mid-merge.
    await undo();
    throw e;
  }
}

const clearCurrent = (st: JsonStore<IntegrationState>) =>
  st.update((s) => {
    s.current = null;
  });

export async function integrateRun(loaded: LoadedConfig, opts: RunOptions): Promise<RunReport> {
  const target = await checkTarget(loaded.repo.worktree, opts.target ?? 'integration');
  const candidates = await resolveCandidates(loaded, opts);
  return exclusive(loaded, `integrate run → ${target}`, async () => {
    const recovered = await recover(loaded);
    const wt = await ensureWorktree(loaded, target);
    if (await dirty(wt)) throw dirtyError(wt);
    // Main moved on (e.g. after a promote): start from it when that is a fast-forward.
    const base = await branchHead(wt, loaded.config.pool.base);
    if (base && (await isAncestor(wt, 'HEAD', base))) {
      await git(['merge', '--ff-only', '--quiet', base], wt);
    }
    const st = store(loaded);
    const startHead = await git(['rev-parse', 'HEAD'], wt);
    const results: MergeResult[] = [];
    await interruptible(async (check) => {
      for (const branch of candidates) {
        opts.progress?.(`integrate: ${branch} → ${target}…`);
        const r = await tryCandidate(loaded, st, wt, target, branch, check);
        results.push(r);
        opts.progress?.(`integrate: ${branch}: ${r.status} (${r.reason})`);
        await st.update((s) => {
          s.results = [...s.results, r].slice(-KEEP_RESULTS);
          if (r.mergedAs) {
            s.green = [...s.green, { target, head: r.mergedAs, at: r.at }].slice(-KEEP_GREEN);
          }
        });
      }
    });
    const head = await git(['rev-parse', 'HEAD'], wt);
    const state = await st.read();
    return {
      target,
      worktree: wt,
      startHead,
      head,
      green: state.green.some((g) => g.target === target && g.head === head),
      recovered,
      results,
    };
  });
}

export interface PromoteReport {
  target: string;
  to: string;
  from: string;
  head: string;
  promoted: boolean;
  /** How `to` was moved: a fast-forward merge in its checkout, or a ref update. */
  via: 'checkout' | 'update-ref' | 'none';
}

/** The worktree where `branch` is checked out, if any. */
async function checkoutOf(cwd: string, branch: string): Promise<string | null> {
  const out = await git(['worktree', 'list', '--porcelain'], cwd);
  let wt: string | null = null;
  for (const line of out.split('\n')) {
    if (line.startsWith('worktree ')) wt = line.slice('worktree '.length);
    if (line === `branch refs/heads/${branch}`) return wt;
  }
  return null;
}

export async function integratePromote(
  loaded: LoadedConfig,
  opts: { to?: string; target?: string } = {},
): Promise<PromoteReport> {
  const cwd = loaded.repo.worktree;
  const target = await checkTarget(cwd, opts.target ?? 'integration');
  const to = await checkTarget(cwd, opts.to ?? loaded.config.pool.base);
  return exclusive(loaded, `integrate promote ${target} → ${to}`, async () => {
    await recover(loaded);
    const head = await branchHead(cwd, target);
    if (!head) throw notFoundError(`no ${target} branch yet; run \`integrate run\` first`);
    const from = await branchHead(cwd, to);
    if (!from) throw notFoundError(`branch ${to} does not exist`);
    const report = { target, to, from, head };
    if (from === head) return { ...report, promoted: false, via: 'none' };
    const { green } = await store(loaded).read();
    if (!green.some((g) => g.target === target && g.head === head)) {
      throw failure(
        'ERR_NOT_GREEN',
        `${target} head ${head.slice(0, 12)} has not passed \`gates ci\`; ${to} stays at ${from.slice(0, 12)}`,
        {
          hint: 'run `integrate run` to merge and check candidates; only a green head is promoted',
        },
      );
    }
    if (!(await isAncestor(cwd, from, head))) {
      throw conflictError(
        `${to} (${from.slice(0, 12)}) is not an ancestor of ${target}: not a fast-forward`,
        {
          hint: `merge ${to} into the candidates (or ${target}) and run \`integrate run\` again`,
        },
      );
    }
    const checkout = await checkoutOf(cwd, to);
    if (checkout) {
      if (await dirty(checkout)) {
        throw conflictError(`${to}'s checkout ${checkout} has uncommitted changes`, {
          hint: `commit or stash them in ${checkout}, then promote again`,
        });
      }
      await git(['merge', '--ff-only', '--quiet', head], checkout);
      return { ...report, promoted: true, via: 'checkout' };
    }
    // Not checked out anywhere: move the ref only if it still is where we checked it.
    await git(
      ['update-ref', '-m', `integrate promote ${target}`, `refs/heads/${to}`, head, from],
      cwd,
    );
    return { ...report, promoted: true, via: 'update-ref' };
  });
}

export interface StatusReport {
  target: string;
  worktree: string;
  head: string | null;
  green: boolean;
  current: InProgress | null;
  /** Kept pool branches not yet in the target. */
  candidates: { branch: string; head: string }[];
  /** Latest results, newest last. */
  results: MergeResult[];
  logsDir: string;
}

export async function integrateStatus(
  loaded: LoadedConfig,
  opts: { target?: string; limit?: number } = {},
): Promise<StatusReport> {
  const cwd = loaded.repo.worktree;
  const target = await checkTarget(cwd, opts.target ?? 'integration');
  const head = await branchHead(cwd, target);
  const state = await store(loaded).read();
  const candidates: StatusReport['candidates'] = [];
  for (const branch of await keptBranches(loaded)) {
    const h = (await branchHead(cwd, branch))!;
    if (!head || !(await isAncestor(cwd, h, head))) candidates.push({ branch, head: h });
  }
  return {
    target,
    worktree: integrationWorktree(loaded.config, loaded.repo),
    head,
    green: head !== null && state.green.some((g) => g.target === target && g.head === head),
    current: state.current,
    candidates,
    results: state.results.filter((r) => r.target === target).slice(-(opts.limit ?? 20)),
    logsDir: path.join(integrationDir(loaded), 'logs'),
  };
}
