/**
 * `tracks dispatch`: one command per ready track, each in a slot leased from the pool, through
 * the same code as `pool run` (runInSlot: queue, priority, heartbeats, release with rescue).
 * At most `max` run at a time. A stop (SIGINT/SIGTERM) lets the running commands end (runInSlot
 * forwards the signal to their process groups and releases each slot, saving what they left
 * uncommitted in a rescue ref) and starts nothing new.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ExitCode, git, isWtpoolError, run, serviceUnavailableError } from '@wtpool/core';
import { checkName } from '@wtpool/config';
import { runInSlot, type WorktreePool } from '@wtpool/pool';
import type { Issue } from './reader.js';
import { assignable, trackTask } from './recommend.js';
import { DEFAULT_NON_WORK_TYPES, type Track } from './tracks.js';

/** The user's command: a shell string (`--command`, run by `sh -c`), or an argv (after `--`). */
export type DispatchCommand = { shell: string } | { argv: string[] };

export interface DispatchEntry {
  track: string;
  agent: string;
  task: string;
  priority: number;
  /** Ids of the track's free items, in the order to do them. */
  items: string[];
}

export interface TrackRun extends DispatchEntry {
  /**
   * `ok` exit 0 · `failed` non-zero exit · `interrupted` stopped by the dispatch's signal ·
   * `error` no slot or lost lease · `not_started` the dispatch stopped before it.
   */
  status: 'ok' | 'failed' | 'interrupted' | 'error' | 'not_started';
  slot: string | null;
  branch: string | null;
  exitCode: number | null;
  signal: string | null;
  startedAt: string | null;
  endedAt: string | null;
  durationMs: number | null;
  /** The branch had commits and the release kept it for the merge queue. */
  kept: boolean;
  /** The kept branch's commits not in the base, oldest first. */
  commits: { sha: string; subject: string }[];
  /** Where the command's uncommitted work was saved, if it left any. */
  rescueRef: string | null;
  error?: { code: string; message: string };
}

export interface DispatchResult {
  max: number;
  interrupted: boolean;
  tracks: TrackRun[];
  /** 0 when every track ran and exited 0; 130 when stopped by a signal; else 1. */
  exitCode: number;
}

export interface DispatchHooks {
  onStart?(run: TrackRun): void;
  onEnd?(run: TrackRun): void;
  /** A warning from the pool or the run (stopped commands, rescues). */
  warn?(message: string): void;
}

export interface DispatchOptions {
  command: DispatchCommand;
  /** At most this many commands at once. */
  max: number;
  timeoutMs?: number;
  ttlMs?: number;
  hooks?: DispatchHooks;
  /** Aborted: start nothing new; the running commands get the signal (from runInSlot). */
  signal?: AbortSignal;
}

/** What dispatch would run: one entry per track with free work, most urgent first. */
export function dispatchPlan(
  tracks: Track[],
  opts: { agentPrefix?: string; nonWorkTypes?: readonly string[] } = {},
): DispatchEntry[] {
  const prefix = opts.agentPrefix ?? 'dispatch';
  const nonWork = new Set(opts.nonWorkTypes ?? DEFAULT_NON_WORK_TYPES);
  return tracks
    .map((t) => ({ t, free: t.items.filter((i) => assignable(i, nonWork)) }))
    .filter(({ free }) => free.length > 0)
    .sort((a, b) => a.t.priority - b.t.priority || a.t.track_id.localeCompare(b.t.track_id))
    .map(({ t, free }) => ({
      track: t.track_id,
      agent: checkName(`${prefix}-${t.track_id}`, 'agent'),
      task: trackTask(t),
      priority: t.priority,
      items: free.map((i) => i.id),
    }));
}

/** How many at once by default: ready slots plus room to grow (at least 1: then it queues). */
export async function freeCapacity(pool: WorktreePool): Promise<number> {
  const st = await pool.getStatus();
  const ready = st.slots.filter((s) => s.state === 'ready' && !s.lease).length;
  const growable = Math.max(0, st.pool.max - st.pool.size - st.pool.waiters);
  return Math.max(1, ready + growable);
}

/** The items file's record of an issue: its export fields, as beads writes them. */
export function itemRecord(is: Issue, files: string[]): Record<string, unknown> {
  return {
    ...is.extra,
    id: is.id,
    title: is.title,
    status: is.status,
    ...(is.statusCategory ? { status_category: is.statusCategory } : {}),
    priority: is.priority,
    issue_type: is.issueType,
    labels: is.labels,
    ...is.text,
    dependencies: is.deps.map((d) => ({ issue_id: is.id, depends_on_id: d.target, type: d.type })),
    ...(is.assignee ? { assignee: is.assignee } : {}),
    files,
  };
}

/**
 * The argv runInSlot runs. A guard first: a command whose slot was granted after the stop
 * exits 130 at once, before doing anything (the stop marker exists from the moment the signal
 * is handled, and runInSlot forwards signals from the moment it spawns).
 */
export function commandArgv(cmd: DispatchCommand): string[] {
  const guard = 'if [ -e "$WTPOOL_DISPATCH_STOP" ]; then exit 130; fi';
  if ('shell' in cmd) return ['sh', '-c', `${guard}\n${cmd.shell}`];
  return ['sh', '-c', `${guard}; exec "$@"`, 'sh', ...cmd.argv];
}

async function keptCommits(
  pool: WorktreePool,
  branch: string,
): Promise<{ sha: string; subject: string }[]> {
  const out = await git(
    ['log', '--reverse', '--format=%H%x09%s', `${pool.config.pool.base}..${branch}`, '--'],
    { cwd: pool.repo.mainRoot },
  ).catch(() => '');
  return out
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const tab = l.indexOf('\t');
      return { sha: l.slice(0, tab), subject: l.slice(tab + 1) };
    });
}

const notStarted = (e: DispatchEntry): TrackRun => ({
  ...e,
  status: 'not_started',
  slot: null,
  branch: null,
  exitCode: null,
  signal: null,
  startedAt: null,
  endedAt: null,
  durationMs: null,
  kept: false,
  commits: [],
  rescueRef: null,
});

/**
 * Runs the plan. `items` gives each track's records for WTPOOL_ITEMS_FILE (a 0600 file in a
 * private temp directory, removed at the end).
 */
export async function dispatch(
  pool: WorktreePool,
  plan: DispatchEntry[],
  items: (e: DispatchEntry) => Record<string, unknown>[],
  opts: DispatchOptions,
): Promise<DispatchResult> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'wtpool-dispatch-'));
  const stopFile = path.join(dir, 'stop');
  const markStop = () => {
    try {
      writeFileSync(stopFile, '', { mode: 0o600 });
    } catch {
      // the directory is ours; a failure here leaves the guard off, not the signal
    }
  };
  const stopped = () => opts.signal?.aborted === true;
  opts.signal?.addEventListener('abort', markStop, { once: true });
  if (stopped()) markStop();
  const hooks = opts.hooks ?? {};
  const runs: TrackRun[] = plan.map(notStarted);
  const argv = commandArgv(opts.command);
  const max = Math.max(1, opts.max);
  // runInSlot adds a SIGINT and a SIGTERM listener per running command.
  process.setMaxListeners(Math.max(process.getMaxListeners(), 2 * max + 10));
  let next = 0;
  const worker = async () => {
    for (let k = next++; k < plan.length && !stopped(); k = next++) {
      const e = plan[k]!;
      const file = path.join(dir, `items-${k + 1}.json`);
      writeFileSync(file, JSON.stringify(items(e), null, 2) + '\n', { mode: 0o600, flag: 'wx' });
      const run: TrackRun = { ...runs[k]!, startedAt: new Date().toISOString() };
      const t0 = Date.now();
      runs[k] = run;
      hooks.onStart?.(run);
      try {
        const r = await runInSlot(
          pool,
          {
            agent: e.agent,
            task: e.task,
            priority: e.priority,
            ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
            ...(opts.ttlMs !== undefined ? { ttlMs: opts.ttlMs } : {}),
            command: argv,
            stdout: 'log',
            env: {
              WTPOOL_TRACK: e.track,
              WTPOOL_ITEMS: e.items.join(','),
              WTPOOL_ITEMS_FILE: file,
              WTPOOL_DISPATCH_STOP: stopFile,
            },
          },
          {
            info: () => {},
            progress: () => {},
            warn: (m) => hooks.warn?.(`${e.track}: ${m}`),
          },
        );
        Object.assign(run, {
          status: r.exitCode === 0 ? 'ok' : stopped() ? 'interrupted' : 'failed',
          slot: r.lease.slot,
          branch: r.lease.branch,
          exitCode: r.exitCode,
          signal: r.signal,
          kept: r.kept,
          rescueRef: r.rescueRef,
          commits: r.kept ? await keptCommits(pool, r.lease.branch) : [],
        });
      } catch (err) {
        run.status = 'error';
        run.error = {
          code: isWtpoolError(err) ? err.code : 'ERR_INTERNAL',
          message: err instanceof Error ? err.message : String(err),
        };
      }
      run.endedAt = new Date().toISOString();
      run.durationMs = Date.now() - t0;
      hooks.onEnd?.(run);
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(max, plan.length) }, worker));
  } finally {
    opts.signal?.removeEventListener('abort', markStop);
    rmSync(dir, { recursive: true, force: true });
  }
  const interrupted = stopped();
  const failed = runs.some((r) => r.status !== 'ok');
  return {
    max,
    interrupted,
    tracks: runs,
    exitCode: interrupted ? ExitCode.SIGINT : failed ? ExitCode.FAILURE : ExitCode.OK,
  };
}

/** The integrate CLI's bin: beside this code (the one-package install), else @wtpool/gates'. */
export function integrateBin(): string {
  const beside = fileURLToPath(new URL('../bin/integrate.js', import.meta.url));
  if (existsSync(beside)) return beside;
  try {
    // Not a dependency of tracks (gates is a sibling, D360): found where it is installed.
    const entry = createRequire(import.meta.url).resolve('@wtpool/gates');
    return path.join(path.dirname(entry), '..', 'bin', 'integrate.js');
  } catch {
    throw serviceUnavailableError('the integrate CLI (@wtpool/gates) is not installed', {
      hint: 'install worktree-pool (or @wtpool/gates) to use --then integrate',
    });
  }
}

export interface IntegrateOutcome {
  exitCode: number;
  /** `integrate run --json`'s document (null when it printed none). */
  report: unknown;
  /** Its stderr (progress, warnings). */
  log: string;
}

/** `integrate run --from-pool`: the merge queue over the branches the releases kept. */
export async function integrateKept(opts: {
  repo: string;
  config?: string | undefined;
  bin?: string;
}): Promise<IntegrateOutcome> {
  const bin = opts.bin ?? integrateBin();
  const r = await run(process.execPath, [
    bin,
    'run',
    '--from-pool',
    '--json',
    '--repo',
    opts.repo,
    ...(opts.config ? ['--config', opts.config] : []),
  ]);
  let report: unknown = null;
  try {
    report = JSON.parse(r.stdout);
  } catch {
    report = null;
  }
  return { exitCode: r.code, report, log: r.stderr };
}
