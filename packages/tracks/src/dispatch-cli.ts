/**
 * `tracks dispatch` as a command: the plan, signals, progress on stderr, the summary, and
 * `--then integrate`. The work itself is dispatch.ts.
 */
import { ExitCode, formatDuration, redact, usageError, type CommandContext } from '@wtpool/core';
import { WorktreePool } from '@wtpool/pool';
import type { Analysis } from './analyze.js';
import {
  dispatch,
  dispatchPlan,
  freeCapacity,
  integrateKept,
  itemRecord,
  type DispatchCommand,
  type DispatchEntry,
  type DispatchResult,
  type IntegrateOutcome,
  type TrackRun,
} from './dispatch.js';
import type { Issue } from './reader.js';

export interface DispatchDeps {
  /** The analysis of the input options (default mode, issues kept). */
  load(ctx: CommandContext): Promise<Analysis>;
  nonWorkTypes(ctx: CommandContext): readonly string[];
}

function commandOf(ctx: CommandContext): DispatchCommand {
  const shell = ctx.opts.command as string | undefined;
  const argv = (ctx.args.argv as string[] | undefined) ?? [];
  if (shell !== undefined && argv.length) {
    throw usageError('give the command once: --command CMD, or an argv after --');
  }
  if (argv.length) return { argv };
  if (shell === undefined || !shell.trim()) {
    throw usageError('tracks dispatch needs a command', {
      hint: 'pass --command "CMD" (run by sh -c in each slot) or -- CMD ARG…',
    });
  }
  return { shell };
}

const commandText = (c: DispatchCommand) =>
  'shell' in c ? c.shell : c.argv.map((a) => JSON.stringify(a)).join(' ');

function planText(plan: DispatchEntry[], max: number, cmd: DispatchCommand): string {
  if (!plan.length) return 'Nothing to dispatch: no track has free, ready work.';
  return [
    `Would run \`${commandText(cmd)}\` for ${plan.length} track(s), at most ${max} at a time:`,
    ...plan.map(
      (e) =>
        `  ${e.track}  P${e.priority}  agent ${e.agent}  task ${e.task}  items ${e.items.join(',')}`,
    ),
  ].join('\n');
}

const secs = (ms: number | null) => (ms === null ? '-' : formatDuration(ms));

/** One line per track: what it ran in, how it ended, what it left. */
export function runLine(r: TrackRun): string {
  if (r.status === 'not_started') return `${r.track}  not started`;
  if (r.status === 'error') return `${r.track}  error: ${r.error?.message ?? 'unknown'}`;
  const kept = r.kept
    ? `kept ${r.branch} (${r.commits.length} commit${r.commits.length === 1 ? '' : 's'})`
    : 'nothing committed';
  const rescue = r.rescueRef ? `; uncommitted work saved to ${r.rescueRef}` : '';
  const how = r.signal ? `${r.signal} (exit ${r.exitCode})` : `exit ${r.exitCode}`;
  return `${r.track}  ${r.slot}  ${how}  ${secs(r.durationMs)}  ${kept}${rescue}`;
}

function integrateText(i: IntegrateOutcome): string {
  const doc = i.report as { results?: { branch: string; status: string }[]; target?: string };
  if (!doc?.results) return `integrate run --from-pool: exit ${i.exitCode}\n${i.log.trim()}`;
  return [
    `integrate run --from-pool → ${doc.target ?? 'integration'}: exit ${i.exitCode}`,
    ...doc.results.map((r) => `  ${r.branch}  ${r.status}`),
  ].join('\n');
}

function summaryText(res: DispatchResult, integrated: IntegrateOutcome | null): string {
  const ok = res.tracks.filter((t) => t.status === 'ok').length;
  const lines = [
    `${ok} of ${res.tracks.length} track(s) exited 0${res.interrupted ? ' (interrupted: every slot released, uncommitted work in rescue refs)' : ''}:`,
    ...res.tracks.map((t) => `  ${runLine(t)}`),
  ];
  if (integrated) lines.push('', integrateText(integrated));
  return lines.join('\n');
}

/** The live line on a terminal: what runs now and for how long. */
function liveLine(running: Map<string, { slot: string; t0: number }>, done: number, all: number) {
  const now = Date.now();
  const parts = [...running].map(([t, r]) => `${t} ${formatDuration(now - r.t0)}`);
  return `dispatch: ${done}/${all} done${parts.length ? `; running ${parts.join(', ')}` : ''}`;
}

export async function runDispatch(ctx: CommandContext, deps: DispatchDeps): Promise<number> {
  const cmd = commandOf(ctx);
  const analysis = await deps.load(ctx);
  const plan = dispatchPlan(analysis.tracks, {
    agentPrefix: ctx.opts['agent-prefix'] as string,
    nonWorkTypes: deps.nonWorkTypes(ctx),
  });
  const pool = new WorktreePool({ repo: ctx.repo, config: ctx.config });
  pool.reporter = { progress: () => {}, warn: (m) => ctx.out.warn(m) };
  const max = (ctx.opts.max as number | undefined) ?? (await freeCapacity(pool));
  const then = ctx.opts.then as string | undefined;
  if (ctx.opts['dry-run'] === true || !plan.length) {
    ctx.out.result(
      { dry_run: ctx.opts['dry-run'] === true, max, command: commandText(cmd), tracks: plan },
      () => planText(plan, max, cmd),
    );
    return ExitCode.OK;
  }
  const byId = new Map<string, Issue>((analysis.issues ?? []).map((is) => [is.id, is]));
  const filesOf = new Map(
    analysis.tracks.flatMap((t) => t.items.map((i) => [i.id, i.files] as const)),
  );
  const items = (e: DispatchEntry) =>
    e.items.flatMap((id) => {
      const is = byId.get(id);
      return is ? [itemRecord(is, filesOf.get(id) ?? [])] : [];
    });

  // A signal: start nothing new; runInSlot forwards it to the running commands and releases.
  const stop = new AbortController();
  let signal: NodeJS.Signals | null = null;
  const onSignal = (s: NodeJS.Signals) => () => {
    if (!signal) {
      signal = s;
      ctx.out.warn(`${s}: stopping the running commands; every slot is released, work is saved`);
    }
    stop.abort();
  };
  const onInt = onSignal('SIGINT');
  const onTerm = onSignal('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);

  const tty = ctx.out.interactive;
  const running = new Map<string, { slot: string; t0: number }>();
  let done = 0;
  const draw = () => {
    if (tty) process.stderr.write(`\r\x1b[K${liveLine(running, done, plan.length)}`);
  };
  const timer = tty ? setInterval(draw, 1000) : null;
  let res: DispatchResult;
  try {
    res = await dispatch(pool, plan, items, {
      command: cmd,
      max,
      ...(ctx.opts.timeout !== undefined ? { timeoutMs: ctx.opts.timeout as number } : {}),
      signal: stop.signal,
      hooks: {
        onStart: (r) => {
          running.set(r.track, { slot: '', t0: Date.now() });
          draw();
        },
        onEnd: (r) => {
          running.delete(r.track);
          done++;
          // A log line, also with --json: the document only comes at the end.
          process.stderr.write(`${tty ? '\r\x1b[K' : ''}${redact(runLine(r))}\n`);
          draw();
        },
        warn: (m) => {
          if (tty) process.stderr.write('\r\x1b[K');
          ctx.out.warn(m);
          draw();
        },
      },
    });
  } finally {
    if (timer) clearInterval(timer);
    if (tty) process.stderr.write('\r\x1b[K');
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
  }
  let integrated: IntegrateOutcome | null = null;
  if (then === 'integrate' && !res.interrupted) {
    if (res.tracks.some((t) => t.kept)) {
      ctx.out.info('integrate run --from-pool …');
      integrated = await integrateKept({ repo: pool.repo.mainRoot, config: ctx.config });
    } else ctx.out.info('nothing kept: no merge queue run');
  }
  ctx.out.result(
    {
      max: res.max,
      interrupted: res.interrupted,
      command: commandText(cmd),
      tracks: res.tracks,
      ...(then === 'integrate'
        ? { integrate: integrated && { exitCode: integrated.exitCode, ...wrap(integrated) } }
        : {}),
    },
    () => summaryText(res, integrated),
  );
  if (res.interrupted) return signal === 'SIGTERM' ? ExitCode.SIGTERM : ExitCode.SIGINT;
  if (res.exitCode !== ExitCode.OK) return res.exitCode;
  return integrated && integrated.exitCode !== 0 ? integrated.exitCode : ExitCode.OK;
}

const wrap = (i: IntegrateOutcome) => (i.report ? { report: i.report } : { log: i.log });
