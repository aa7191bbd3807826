/**
 * The merge queue's decisions, pure: no git, no file, no clock (times come in as arguments).
 * The effectful modules (merge.ts, run.ts, promote.ts, …) read the facts from git and the
 * state, ask this module what they mean, and do it. What lives here:
 * - which candidates (`--branches` or `--from-pool`, never both, never none);
 * - the base: checked, or cached because that head already passed;
 * - each candidate: skipped (missing, already in the target, dropped, held at this head) or
 *   merged;
 * - what an attempt means (conflict, a preparation step or a gate failed, kept);
 * - what a result changes in the state (results, green heads, held heads) and in the event log;
 * - drop and retry, promote's refusals, the exit code of a run, what `status` lists.
 * Property tests (policy.test.ts) run this in milliseconds; the slow suites keep only what
 * needs real merges.
 */
import { conflictError, failure, notFoundError, usageError } from '@wtpool/core';
import type { Owner } from '../candidates.js';
import type { GateName } from '../gate-types.js';
import type {
  BaseCheck,
  Held,
  InProgress,
  IntegrationState,
  MergeResult,
  ResultStatus,
  RetryReport,
  RunReport,
  StatusCandidate,
} from './types.js';

/** Results and green heads the state keeps (oldest dropped first). */
export const KEEP_RESULTS = 200;
export const KEEP_GREEN = 100;

export const short = (sha: string) => sha.slice(0, 12);

export const isGreen = (s: Pick<IntegrationState, 'green'>, target: string, head: string) =>
  s.green.some((g) => g.target === target && g.head === head);

/** The base check: a head that passed before is not checked again. */
export const baseIsCached = (s: Pick<IntegrationState, 'green'>, target: string, head: string) =>
  isGreen(s, target, head);

/** A red base is nobody's fault among the candidates: none is tried. */
export const triesCandidates = (base: Pick<BaseCheck, 'status'>) => base.status !== 'red';

/** Where the candidates come from: exactly one of `--branches` and `--from-pool`. */
export function candidateSource(opts: {
  branches?: string[] | undefined;
  fromPool?: boolean | undefined;
}): 'pool' | 'branches' {
  if (opts.branches?.length && opts.fromPool) {
    throw usageError('give either --branches or --from-pool, not both');
  }
  if (opts.fromPool) return 'pool';
  if (!opts.branches?.length) {
    throw usageError('no candidates: pass --branches A,B or --from-pool', {
      hint: 'see `integrate run --help`',
    });
  }
  return 'branches';
}

/** What git says about a candidate before it is tried. */
export interface CandidateFacts {
  branch: string;
  /** Its head, or null when the local branch does not exist. */
  head: string | null;
  /** Its head is already in the target (an ancestor of the integration head). */
  inTarget: boolean;
}

export type Decision =
  { action: 'merge'; head: string } | { action: 'skip'; reason: string; previous?: Held };

/** Merge the candidate, or skip it and why. */
export function decideCandidate(
  state: Pick<IntegrationState, 'held' | 'dropped'>,
  target: string,
  facts: CandidateFacts,
): Decision {
  const { branch, head } = facts;
  if (!head) return { action: 'skip', reason: 'no such local branch' };
  if (facts.inTarget) return { action: 'skip', reason: `already in ${target}` };
  if (state.dropped?.[branch]) {
    return {
      action: 'skip',
      reason: `dropped from the candidates; \`integrate retry ${branch}\` takes it back`,
    };
  }
  const held = state.held?.[branch];
  if (held?.head === head) {
    return {
      action: 'skip',
      reason: `${held.status} at this head (${short(head)}) on ${held.at}; retried after a new commit or \`integrate retry ${branch}\``,
      previous: held,
    };
  }
  return { action: 'merge', head };
}

/** How a tried merge ended. */
export type Attempt =
  | { kind: 'conflict' }
  /** A preparation step (dependencies, gates.setup) failed. */
  | { kind: 'prepare-failed'; gate: GateName }
  /** The merge pipeline ran: the gate that failed, or null when all passed. */
  | { kind: 'gates'; failed: GateName | null };

export interface Outcome {
  status: Extract<ResultStatus, 'kept' | 'rejected' | 'conflict'>;
  reason: string;
  failedGate?: string;
}

/** What an attempt means: a conflict, a rejection naming its gate, or a kept merge. */
export function outcomeOf(a: Attempt): Outcome {
  if (a.kind === 'conflict') return { status: 'conflict', reason: 'merge conflict' };
  if (a.kind === 'prepare-failed') {
    return { status: 'rejected', reason: `${a.gate} failed`, failedGate: a.gate };
  }
  if (a.failed) {
    return { status: 'rejected', reason: `${a.failed} gate failed`, failedGate: a.failed };
  }
  return { status: 'kept', reason: 'gates passed' };
}

/** The undo of an outcome: everything but a kept merge restores the previous head. */
export const keepsMerge = (o: Pick<Outcome, 'status'>) => o.status === 'kept';

/** Records a passing head of `target` (the newest KEEP_GREEN are kept). */
export function addGreen(s: IntegrationState, target: string, head: string, at: string): void {
  s.green = [...s.green, { target, head, at }].slice(-KEEP_GREEN);
}

/** What a result changes in the state: the results list, green heads and held heads. */
export function applyResult(s: IntegrationState, r: MergeResult): void {
  s.results = [...s.results, r].slice(-KEEP_RESULTS);
  if (r.mergedAs) addGreen(s, r.target, r.mergedAs, r.at);
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
}

/** The `integrate` event of a result for the pool's event log, or null (skipped: nothing happened). */
export function resultEvent(r: MergeResult): Record<string, unknown> | null {
  if (r.status === 'skipped') return null;
  return {
    branch: r.branch,
    branchHead: r.branchHead,
    target: r.target,
    status: r.status,
    reason: r.reason,
    ...(r.owner ? { slot: r.owner.slot, agent: r.owner.agent, task: r.owner.task } : {}),
    ...(r.failedGate ? { failedGate: r.failedGate } : {}),
    ...(r.log ? { log: r.log } : {}),
  };
}

/** The result the recovery step records for a run that died mid-merge. */
export function interruptedResult(current: InProgress, at: string): MergeResult {
  return {
    branch: current.branch,
    branchHead: null,
    target: current.target,
    status: 'interrupted',
    reason: `run of pid ${current.pid} stopped mid-merge; restored ${short(current.prevHead)}`,
    at,
    ms: 0,
  };
}

/** A run's exit code: 1 when the base is red or a candidate was rejected or conflicted. */
export function runExitCode(r: Pick<RunReport, 'base' | 'results'>): 0 | 1 {
  if (r.base.status === 'red') return 1;
  return r.results.some((x) => x.status === 'rejected' || x.status === 'conflict') ? 1 : 0;
}

/** The exit code of a run a signal stopped (after the integration was restored). */
export const signalExitCode = (signal: NodeJS.Signals) =>
  signal === 'SIGINT' ? 130 : signal === 'SIGHUP' ? 129 : 143;

/** `integrate drop`: marks the branch dropped; false when it already was (the first drop stays). */
export function markDropped(
  s: IntegrationState,
  branch: string,
  head: string,
  at: string,
): boolean {
  const d = (s.dropped ??= {});
  const dropped = !d[branch];
  d[branch] ??= { head, at };
  return dropped;
}

/** `integrate retry`: forgets the branch's held head and its drop; what was forgotten. */
export function forget(s: IntegrationState, branch: string): RetryReport {
  const report = {
    branch,
    held: s.held?.[branch] ?? null,
    undropped: Boolean(s.dropped?.[branch]),
  };
  delete s.held?.[branch];
  delete s.dropped?.[branch];
  return report;
}

/** A retry that forgot nothing is "not found". */
export function checkRetry(r: RetryReport): RetryReport {
  if (!r.held && !r.undropped) {
    throw notFoundError(`${r.branch} has no conflicted, rejected or dropped head to retry`, {
      hint: 'the next `integrate run` tries it anyway when it is a candidate',
    });
  }
  return r;
}

/** What git and the state say about a promote. */
export interface PromoteFacts {
  target: string;
  to: string;
  /** `to`'s commit. */
  from: string;
  /** The target's head. */
  head: string;
  green: boolean;
  /** `from` is an ancestor of `head`. */
  fastForward: boolean;
}

/** `none` when `to` is already there; `move` when allowed; else the refusal is thrown. */
export function promoteDecision(f: PromoteFacts): 'none' | 'move' {
  if (f.from === f.head) return 'none';
  if (!f.green) {
    throw failure(
      'ERR_NOT_GREEN',
      `${f.target} head ${short(f.head)} has not passed \`gates ci\`; ${f.to} stays at ${short(f.from)}`,
      {
        hint: 'run `integrate run` to merge and check candidates; only a green head is promoted',
      },
    );
  }
  if (!f.fastForward) {
    throw conflictError(
      `${f.to} (${short(f.from)}) is not an ancestor of ${f.target}: not a fast-forward`,
      {
        hint: `merge ${f.to} into the candidates (or ${f.target}) and run \`integrate run\` again`,
      },
    );
  }
  return 'move';
}

/**
 * `status`'s candidates: the kept pool branches (in order) that are not dropped and not in the
 * target, with their owner and, when their head waits for a new commit, the held result.
 */
export function statusCandidates(
  state: Pick<IntegrationState, 'held' | 'dropped'>,
  kept: { branch: string; head: string; inTarget: boolean }[],
  owners: Map<string, Owner>,
): StatusCandidate[] {
  const out: StatusCandidate[] = [];
  for (const { branch, head, inTarget } of kept) {
    if (state.dropped?.[branch] || inTarget) continue;
    const owner = owners.get(branch);
    const held = state.held?.[branch]?.head === head ? state.held[branch] : undefined;
    out.push({ branch, head, ...(owner ? { owner } : {}), ...(held ? { held } : {}) });
  }
  return out;
}

/** The file name of a log: its time and the branch, made safe for a path. */
export function logName(branch: string, now: Date): string {
  const stamp = now.toISOString().replace(/[:.]/g, '-');
  return `${stamp}-${branch.replace(/[^A-Za-z0-9._-]+/g, '_')}.log`;
}
