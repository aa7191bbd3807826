/**
 * The shapes of the merge queue: its results, its state on disk and the reports of its
 * commands (the JSON of `integrate … --json`, docs/integration.md). Types only.
 */
import type { Owner } from '../candidates.js';

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

export interface PromoteReport {
  target: string;
  to: string;
  from: string;
  head: string;
  promoted: boolean;
  /** How `to` was moved: a fast-forward merge in its checkout, or a ref update. */
  via: 'checkout' | 'update-ref' | 'none';
}

export interface StatusCandidate {
  branch: string;
  head: string;
  owner?: Owner;
  held?: Held;
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
  candidates: StatusCandidate[];
  /** Heads that conflicted or were rejected, not retried until their branch moves. */
  held: (Held & { branch: string })[];
  dropped: { branch: string; head: string | null; at: string }[];
  /** Latest results, newest last. */
  results: MergeResult[];
  logsDir: string;
}

export interface DropReport {
  branch: string;
  head: string;
  dropped: boolean;
}

export interface RetryReport {
  branch: string;
  /** The remembered result that is forgotten, if any. */
  held: Held | null;
  /** It had been dropped and is a candidate again. */
  undropped: boolean;
}
