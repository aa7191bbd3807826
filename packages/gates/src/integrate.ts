/**
 * The local merge queue. `run` first checks the target head itself (base first: `gates ci`
 * once per commit, cached; a red base stops the run and blames nobody), then merges candidate
 * branches one by one (`--no-ff`) into the integration branch, in a worktree of its own, and
 * checks each merge in proportion to what it changed (`merge` pipeline: format of the changed
 * files, the build/typecheck/test commands of the changed paths). What passes is kept, what
 * fails is undone (the previous head restored) and recorded as rejected with its log; a
 * conflicting or rejected head is remembered and not retried until the branch moves (or
 * `integrate retry`). `promote` fast-forwards main only to an integration head that passed.
 *
 * Like lint-staged's git workflow, every step knows how to undo itself: before a merge the
 * previous head is recorded in the state (`current`); a failure, a signal (SIGINT/SIGTERM/SIGHUP)
 * or, after a crash, the recovery step at the start of the next command aborts the merge and
 * resets to that head. The repository is never left mid-merge.
 */
import {
  existsSync,
  promises as fs,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import {
  GIT_ENV,
  WtpoolError,
  commandFailed,
  conflictError,
  failure,
  git,
  gitRun,
  notFoundError,
  runSync,
  stopChildren,
  usageError,
} from '@wtpool/core';
import {
  integrationStateDir,
  integrationWorktree,
  resolveRepo,
  type LoadedConfig,
} from '@wtpool/config';
import { JsonStore, PRIVATE_FILE_MODE, ensurePrivateDir, pidAlive, withLock } from '@wtpool/lock';
import { appendEvent } from '@wtpool/pool';
import { installDeps } from '@wtpool/services';
import { branchHead, checkBranch, keptBranches, owners, type Owner } from './candidates.js';
import { gateEnv, shell } from './exec.js';
import { formatReport, runPipeline, type GateName, type GateReport } from './pipeline.js';

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
  /** The agent and task whose lease made the branch (pool branches). */
  owner?: Owner;
  /** Skipped because this head already conflicted or was rejected: that earlier result. */
  previous?: Held;
  at: string;
  ms: number;
}

/** A branch head that conflicted or was rejected: not tried again until the branch moves. */
export interface Held {
  head: string;
  status: 'conflict' | 'rejected';
  reason: string;
  failedGate?: string;
  log?: string;
  at: string;
}

/** The run in progress (what `integrate status` shows while `integrate run` works). */
export interface Running {
  pid: number;
  target: string;
  worktree: string;
  startedAt: string;
  /** Candidate being checked, 1-based; 0 while the base is checked. */
  index: number;
  total: number;
  branch: string | null;
  gate: string | null;
  gateStartedAt: string | null;
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
  /** Integration heads that passed the gates (a merge's checks, or `gates ci` for a base). */
  green: { target: string; head: string; at: string }[];
  /** branch → its head that conflicted or was rejected. */
  held?: Record<string, Held>;
  /** Branches `integrate drop` removed from the candidates (the branches themselves stay). */
  dropped?: Record<string, { head: string | null; at: string }>;
  /** Every worktree integrate has used: protected from leak cleanup and `pool doctor`. */
  worktrees?: string[];
}

const KEEP_RESULTS = 200;
const KEEP_GREEN = 100;

export function integrationDir(loaded: LoadedConfig): string {
  return integrationStateDir(loaded.repo);
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
    (await gitRun(['check-ref-format', '--branch', target], { cwd })).code
  ) {
    throw usageError(`invalid target branch ${JSON.stringify(target)}`);
  }
  return target;
}

async function isAncestor(cwd: string, a: string, b: string): Promise<boolean> {
  return (await gitRun(['merge-base', '--is-ancestor', a, b], { cwd })).code === 0;
}

async function dirty(cwd: string): Promise<string> {
  return git(['status', '--porcelain', '--untracked-files=no'], { cwd });
}

/** The integration worktree on `target`, created (with the branch, from the base) when missing. */
export async function ensureWorktree(loaded: LoadedConfig, target: string): Promise<string> {
  const { repo, config } = loaded;
  const wt = integrationWorktree(config, repo);
  if (!(await branchHead(repo.worktree, target))) {
    const base = await branchHead(repo.worktree, config.pool.base);
    if (!base) throw failure('ERR_NO_BASE', `base branch ${config.pool.base} does not exist`);
    await git(['branch', '--no-track', target, base], { cwd: repo.worktree });
  }
  if (!existsSync(wt)) {
    await git(['worktree', 'prune'], { cwd: repo.worktree });
    await fs.mkdir(path.dirname(wt), { recursive: true });
    await git(['worktree', 'add', '--quiet', wt, target], { cwd: repo.worktree });
    return wt;
  }
  if (resolveRepo(wt).commonDir !== repo.commonDir) {
    throw conflictError(`${wt} exists but is not a worktree of this repository`, {
      hint: 'move it away; `integrate run` creates its worktree there',
    });
  }
  const current = (
    await gitRun(['symbolic-ref', '--quiet', '--short', 'HEAD'], { cwd: wt })
  ).stdout.trim();
  if (current !== target) {
    if (await dirty(wt)) throw dirtyError(wt);
    await git(['switch', '--quiet', target], { cwd: wt });
  }
  return wt;
}

const dirtyError = (wt: string) =>
  conflictError(`the integration worktree ${wt} has uncommitted changes`, {
    hint: `nobody should edit it: inspect with \`git -C ${wt} status\`, then stash or reset them`,
  });

/** Aborts a half-done merge and returns to the recorded head. Synchronous: usable in a signal handler. */
function restoreSync(wt: string, prevHead: string): void {
  const run = (args: string[]) => {
    const r = runSync('git', args, { cwd: wt, extraEnv: GIT_ENV });
    if (r.code !== 0) throw commandFailed('git', args, r, { code: 'ERR_GIT', cwd: wt });
  };
  if (runSync('git', ['rev-parse', '-q', '--verify', 'MERGE_HEAD'], { cwd: wt }).code === 0) {
    runSync('git', ['merge', '--abort'], { cwd: wt, extraEnv: GIT_ENV }); // reset --hard follows
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
  /** Seconds between "still running" progress lines of a long gate (default 15). */
  tickSeconds?: number;
}

/** The check of the target head before any merge. */
export interface BaseCheck {
  head: string;
  /** `cached`: this commit already passed; `green`: it passed now; `red`: a gate failed. */
  status: 'cached' | 'green' | 'red';
  failedGate?: string;
  log?: string;
  ms: number;
}

export interface RunReport {
  target: string;
  worktree: string;
  startHead: string;
  head: string;
  /** The final head passed the gates (or nothing was merged onto a green head). */
  green: boolean;
  recovered: MergeResult | null;
  base: BaseCheck;
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

const short = (sha: string) => sha.slice(0, 12);
const secs = (ms: number) => `${(ms / 1000).toFixed(1)}s`;

/** `running.json`: where the run in progress is (ephemeral; a dead pid means no run). */
const runningFile = (loaded: LoadedConfig) => path.join(integrationDir(loaded), 'running.json');

function readRunning(loaded: LoadedConfig): Running | null {
  try {
    const r = JSON.parse(readFileSync(runningFile(loaded), 'utf8')) as Running;
    return pidAlive(r.pid) ? r : null;
  } catch {
    return null;
  }
}

/**
 * Progress of a run: one line when a gate starts, a "still running" line every `tick` seconds
 * while it runs, and where the run is in `running.json` (for `integrate status`). That file is
 * written without the state's lock and fsync (temp file + rename): it is only a view of a live
 * process, and a per-gate locked write would cost the queue time on every candidate.
 */
class Progress {
  private timer: NodeJS.Timeout | null = null;
  private readonly file: string;
  constructor(
    loaded: LoadedConfig,
    private readonly running: Running,
    private readonly print: ((m: string) => void) | undefined,
    private readonly tickMs: number,
  ) {
    this.file = runningFile(loaded);
    this.write();
  }

  private write(): void {
    try {
      const tmp = `${this.file}.${process.pid}.tmp`;
      writeFileSync(tmp, JSON.stringify(this.running) + '\n');
      renameSync(tmp, this.file);
    } catch {
      // progress is best effort: the run's own state writes report real failures
    }
  }

  /** Records where the run is (a new candidate, or the base with index 0). */
  at(patch: Partial<Running>): void {
    this.stop();
    Object.assign(this.running, patch);
    this.write();
  }

  /** A gate starts (synchronous: runPipeline's `onGate`). */
  gate(prefix: string, gate: string, command: string): void {
    this.stop();
    const started = Date.now();
    this.print?.(`${prefix}: ${gate} (${command})…`);
    if (this.print) {
      this.timer = setInterval(
        () => this.print!(`${prefix}: ${gate} still running, ${secs(Date.now() - started)}`),
        this.tickMs,
      );
      this.timer.unref();
    }
    this.running.gate = gate;
    this.running.gateStartedAt = new Date(started).toISOString();
    this.write();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** The run is over. */
  end(): void {
    this.stop();
    rmSync(this.file, { force: true });
  }
}

interface Ctx {
  loaded: LoadedConfig;
  st: JsonStore<IntegrationState>;
  wt: string;
  target: string;
  progress: Progress;
  check: () => void;
}

/** A failed preparation step (dependencies or gates.setup) as a gate result, or null. */
async function prepare(
  ctx: Ctx,
  prefix: string,
): Promise<{ gate: GateName; command: string; output: string } | null> {
  const { loaded, wt } = ctx;
  ctx.progress.gate(prefix, 'deps', `deps.strategy ${loaded.config.deps.strategy}`);
  try {
    // The integration worktree gets its dependencies the way slots do (hard-link clone or the
    // repository's install), re-run only when its lockfile changed (a marker in node_modules).
    await installDeps(loaded.repo.mainRoot, wt, loaded.config.deps);
  } catch (e) {
    const err = e as Error & { hint?: string };
    return {
      gate: 'deps',
      command: `deps.strategy ${loaded.config.deps.strategy}`,
      output: `${err.message}\n${err.hint ?? ''}`,
    };
  }
  ctx.check();
  const setup = loaded.config.gates.setup;
  if (setup) {
    ctx.progress.gate(prefix, 'setup', setup);
    const r = await shell(setup, { cwd: wt, env: gateEnv([wt, loaded.repo.mainRoot]) });
    ctx.check();
    if (r.code !== 0) return { gate: 'setup', command: setup, output: r.output };
  }
  return null;
}

const isGreen = (s: IntegrationState, target: string, head: string) =>
  s.green.some((g) => g.target === target && g.head === head);

/**
 * Base first: the target head runs `gates ci` once (a head that passed before is cached). A red
 * base is nobody's fault among the candidates, so the run stops before merging any of them.
 */
async function checkBase(ctx: Ctx): Promise<BaseCheck> {
  const { loaded, st, wt, target } = ctx;
  const started = Date.now();
  const head = (await git(['rev-parse', 'HEAD'], { cwd: wt })).trim();
  if (isGreen(await st.read(), target, head)) return { head, status: 'cached', ms: 0 };
  const prefix = `integrate: base ${target} ${short(head)}`;
  const header = `integrate: base check of ${target} at ${head}\n${new Date().toISOString()}\n\n`;
  const red = async (gate: string, text: string): Promise<BaseCheck> => {
    const log = await writeLog(loaded, `base-${target}`, header + text + '\n');
    return { head, status: 'red', failedGate: gate, log, ms: Date.now() - started };
  };
  const failedPrep = await prepare(ctx, prefix);
  if (failedPrep) return red(failedPrep.gate, `$ ${failedPrep.command}\n${failedPrep.output}`);
  const report = await runPipeline('ci', {
    cwd: wt,
    mainRoot: loaded.repo.mainRoot,
    config: loaded.config,
    onGate: (g, c) => ctx.progress.gate(prefix, g, c),
  });
  ctx.progress.stop();
  ctx.check();
  await git(['clean', '-fdq'], { cwd: wt });
  if (!report.ok) return red(report.failed!, formatReport(report));
  const at = new Date().toISOString();
  await st.update((s) => {
    s.green = [...s.green, { target, head, at }].slice(-KEEP_GREEN);
  });
  return { head, status: 'green', ms: Date.now() - started };
}

/** Merges one candidate, runs the gates of what it changed, keeps or undoes it. */
async function tryCandidate(
  ctx: Ctx,
  branch: string,
  prefix: string,
  owner: Owner | undefined,
): Promise<MergeResult> {
  const { loaded, st, wt, target, check } = ctx;
  const started = Date.now();
  const head = await branchHead(wt, branch);
  const base = {
    branch,
    branchHead: head,
    target,
    ...(owner ? { owner } : {}),
    at: new Date().toISOString(),
  };
  const done = (r: Omit<MergeResult, keyof typeof base | 'ms'>): MergeResult => ({
    ...base,
    ...r,
    ms: Date.now() - started,
  });
  if (!head) return done({ status: 'skipped', reason: 'no such local branch' });
  if (await isAncestor(wt, head, 'HEAD')) {
    return done({ status: 'skipped', reason: `already in ${target}` });
  }
  const state = await st.read();
  if (state.dropped?.[branch]) {
    return done({
      status: 'skipped',
      reason: `dropped from the candidates; \`integrate retry ${branch}\` takes it back`,
    });
  }
  const held = state.held?.[branch];
  if (held?.head === head) {
    return done({
      status: 'skipped',
      reason: `${held.status} at this head (${short(head)}) on ${held.at}; retried after a new commit or \`integrate retry ${branch}\``,
      previous: held,
    });
  }
  const prevHead = (await git(['rev-parse', 'HEAD'], { cwd: wt })).trim();
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
  const who = owner ? ` (agent ${owner.agent}, task ${owner.task})` : '';
  const header = `integrate ${branch}${who} (${head}) into ${target} (${prevHead})\n${base.at}\n\n`;
  // Undo the merge, then forget it. If undoing throws, `current` stays for the recovery step.
  const undo = async () => {
    restoreSync(wt, prevHead);
    await clearCurrent(st);
  };
  try {
    ctx.progress.gate(prefix, 'merge', `git merge --no-ff ${short(head)}`);
    const merge = await gitRun(
      ['merge', '--no-ff', '--no-edit', '-m', `integrate: merge ${branch} into ${target}`, head],
      { cwd: wt },
    );
    check();
    if (merge.code !== 0) {
      await undo();
      const log = await writeLog(loaded, branch, `${header}$ git merge --no-ff\n${merge.output}`);
      return done({ status: 'conflict', reason: 'merge conflict', log });
    }
    const mergedAs = (await git(['rev-parse', 'HEAD'], { cwd: wt })).trim();
    const failedPrep = await prepare(ctx, prefix);
    if (failedPrep) {
      await undo();
      const text = `${header}$ ${failedPrep.command}\n${failedPrep.output}`;
      const log = await writeLog(loaded, branch, text);
      const gate = failedPrep.gate;
      return done({ status: 'rejected', reason: `${gate} failed`, failedGate: gate, log });
    }
    const report: GateReport = await runPipeline('merge', {
      cwd: wt,
      mainRoot: loaded.repo.mainRoot,
      config: loaded.config,
      range: { from: prevHead, to: mergedAs },
      onGate: (g, c) => ctx.progress.gate(prefix, g, c),
    });
    ctx.progress.stop();
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
    await git(['clean', '-fdq'], { cwd: wt });
    await clearCurrent(st);
    return done({ status: 'kept', reason: 'gates passed', mergedAs });
  } catch (e) {
    // Interrupted or failed unexpectedly: never leave the worktree mid-merge.
    ctx.progress.stop();
    await undo();
    throw e;
  }
}

const clearCurrent = (st: JsonStore<IntegrationState>) =>
  st.update((s) => {
    s.current = null;
  });

/** Records a result: the results list, green heads, held heads, and an event naming the owner. */
async function record(ctx: Ctx, r: MergeResult): Promise<void> {
  await ctx.st.update((s) => {
    s.results = [...s.results, r].slice(-KEEP_RESULTS);
    if (r.mergedAs) {
      s.green = [...s.green, { target: ctx.target, head: r.mergedAs, at: r.at }].slice(-KEEP_GREEN);
    }
    const held = (s.held ??= {});
    if ((r.status === 'conflict' || r.status === 'rejected') && r.branchHead) {
      held[r.branch] = {
        head: r.branchHead,
        status: r.status,
        reason: r.reason,
        ...(r.failedGate ? { failedGate: r.failedGate } : {}),
        ...(r.log ? { log: r.log } : {}),
        at: r.at,
      };
    } else if (r.status === 'kept') delete held[r.branch];
  });
  if (r.status === 'skipped') return;
  await appendEvent(ctx.loaded.repo.stateDir, 'integrate', {
    branch: r.branch,
    branchHead: r.branchHead,
    target: r.target,
    status: r.status,
    reason: r.reason,
    ...(r.owner ? { slot: r.owner.slot, agent: r.owner.agent, task: r.owner.task } : {}),
    ...(r.failedGate ? { failedGate: r.failedGate } : {}),
    ...(r.log ? { log: r.log } : {}),
  });
}

export async function integrateRun(loaded: LoadedConfig, opts: RunOptions): Promise<RunReport> {
  const target = await checkTarget(loaded.repo.worktree, opts.target ?? 'integration');
  const candidates = await resolveCandidates(loaded, opts);
  return exclusive(loaded, `integrate run → ${target}`, async () => {
    const recovered = await recover(loaded);
    const st = store(loaded);
    const wtPath = integrationWorktree(loaded.config, loaded.repo);
    // Known before it exists: leak detection and `pool doctor` leave it alone from now on.
    await st.update((s) => {
      s.worktrees = [...new Set([...(s.worktrees ?? []), wtPath])];
    });
    const running: Running = {
      pid: process.pid,
      target,
      worktree: wtPath,
      startedAt: new Date().toISOString(),
      index: 0,
      total: candidates.length,
      branch: null,
      gate: null,
      gateStartedAt: null,
    };
    const progress = new Progress(loaded, running, opts.progress, (opts.tickSeconds ?? 15) * 1000);
    try {
      const wt = await ensureWorktree(loaded, target);
      if (await dirty(wt)) throw dirtyError(wt);
      // Main moved on (e.g. after a promote): start from it when that is a fast-forward.
      const mainHead = await branchHead(wt, loaded.config.pool.base);
      if (mainHead && (await isAncestor(wt, 'HEAD', mainHead))) {
        await git(['merge', '--ff-only', '--quiet', mainHead], { cwd: wt });
      }
      const startHead = (await git(['rev-parse', 'HEAD'], { cwd: wt })).trim();
      const who = await owners(loaded);
      const results: MergeResult[] = [];
      const baseCheck = await interruptible(async (check) => {
        const ctx: Ctx = { loaded, st, wt, target, progress, check };
        const b = await checkBase(ctx);
        opts.progress?.(
          b.status === 'red'
            ? `integrate: base ${target} ${short(b.head)} is red (${b.failedGate})`
            : `integrate: base ${target} ${short(b.head)} ${b.status === 'cached' ? 'green (cached)' : `green in ${secs(b.ms)}`}`,
        );
        if (b.status === 'red') return b;
        for (const [i, branch] of candidates.entries()) {
          const prefix = `integrate [${i + 1}/${candidates.length}] ${branch}`;
          progress.at({ index: i + 1, branch, gate: null, gateStartedAt: null });
          const r = await tryCandidate(ctx, branch, prefix, who.get(branch));
          results.push(r);
          opts.progress?.(`${prefix}: ${r.status} (${r.reason}) in ${secs(r.ms)}`);
          await record(ctx, r);
        }
        return b;
      });
      const head = (await git(['rev-parse', 'HEAD'], { cwd: wt })).trim();
      const state = await st.read();
      return {
        target,
        worktree: wt,
        startHead,
        head,
        green: isGreen(state, target, head),
        recovered,
        base: baseCheck,
        results,
      };
    } finally {
      progress.end();
    }
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
  const out = await git(['worktree', 'list', '--porcelain'], { cwd });
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
      await git(['merge', '--ff-only', '--quiet', head], { cwd: checkout });
      return { ...report, promoted: true, via: 'checkout' };
    }
    // Not checked out anywhere: move the ref only if it still is where we checked it.
    await git(['update-ref', '-m', `integrate promote ${target}`, `refs/heads/${to}`, head, from], {
      cwd,
    });
    return { ...report, promoted: true, via: 'update-ref' };
  });
}

export interface StatusReport {
  target: string;
  worktree: string;
  head: string | null;
  green: boolean;
  current: InProgress | null;
  /** The `integrate run` working now (its process is alive), or null. */
  running: Running | null;
  /** Kept pool branches not yet in the target and not dropped. */
  candidates: { branch: string; head: string; owner?: Owner; held?: Held }[];
  /** Heads that conflicted or were rejected, not retried until their branch moves. */
  held: (Held & { branch: string })[];
  dropped: { branch: string; head: string | null; at: string }[];
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
  const who = await owners(loaded);
  const candidates: StatusReport['candidates'] = [];
  for (const branch of await keptBranches(loaded)) {
    if (state.dropped?.[branch]) continue;
    const h = (await branchHead(cwd, branch))!;
    if (head && (await isAncestor(cwd, h, head))) continue;
    const owner = who.get(branch);
    const held = state.held?.[branch]?.head === h ? state.held[branch] : undefined;
    candidates.push({ branch, head: h, ...(owner ? { owner } : {}), ...(held ? { held } : {}) });
  }
  const running = readRunning(loaded);
  return {
    target,
    worktree: integrationWorktree(loaded.config, loaded.repo),
    head,
    green: head !== null && isGreen(state, target, head),
    current: state.current,
    running,
    candidates,
    held: Object.entries(state.held ?? {}).map(([branch, h]) => ({ branch, ...h })),
    dropped: Object.entries(state.dropped ?? {}).map(([branch, d]) => ({ branch, ...d })),
    results: state.results.filter((r) => r.target === target).slice(-(opts.limit ?? 20)),
    logsDir: path.join(integrationDir(loaded), 'logs'),
  };
}

export interface DropReport {
  branch: string;
  head: string;
  dropped: boolean;
}

/** `integrate drop <branch>`: no longer a candidate (the branch itself is kept). */
export async function integrateDrop(loaded: LoadedConfig, branch: string): Promise<DropReport> {
  const cwd = loaded.repo.worktree;
  await checkBranch(cwd, branch);
  const head = await branchHead(cwd, branch);
  if (!head) throw notFoundError(`no local branch ${branch}`);
  let dropped = false;
  await store(loaded).update((s) => {
    const d = (s.dropped ??= {});
    dropped = !d[branch];
    d[branch] ??= { head, at: new Date().toISOString() };
  });
  await appendEvent(loaded.repo.stateDir, 'integrate-drop', { branch, branchHead: head });
  return { branch, head, dropped };
}

export interface RetryReport {
  branch: string;
  /** The remembered result that is forgotten, if any. */
  held: Held | null;
  /** It had been dropped and is a candidate again. */
  undropped: boolean;
}

/** `integrate retry <branch>`: forget its held head (and a drop), so the next run tries it. */
export async function integrateRetry(loaded: LoadedConfig, branch: string): Promise<RetryReport> {
  await checkBranch(loaded.repo.worktree, branch);
  let report: RetryReport = { branch, held: null, undropped: false };
  await store(loaded).update((s) => {
    report = { branch, held: s.held?.[branch] ?? null, undropped: Boolean(s.dropped?.[branch]) };
    delete s.held?.[branch];
    delete s.dropped?.[branch];
  });
  if (!report.held && !report.undropped) {
    throw notFoundError(`${branch} has no conflicted, rejected or dropped head to retry`, {
      hint: 'the next `integrate run` tries it anyway when it is a candidate',
    });
  }
  return report;
}
