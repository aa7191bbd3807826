/**
 * One analysis: read the input (beads dir, issue file or a bv plan), build the graph, gather
 * file evidence from the repository, and produce the plan in the requested format.
 */
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { errno, failure, notFoundError, usageError } from '@wtpool/core';
import { buildGraph, type Dangling } from './graph.js';
import { bvRobotPlan, type BvPlan, type BvRobotPlan } from './bv.js';
import {
  gatherEvidence,
  gitCommits,
  gitLsFiles,
  indexRepoFiles,
  type Commit,
  type FileEvidence,
  type RepoFiles,
} from './evidence.js';
import { findIssueFile, readIssueFile, type Issue, type LineProblem } from './reader.js';
import {
  IN_FLIGHT_STATUSES,
  findConflicts,
  trackPlan,
  type Conflict,
  type HeldItem,
  type LaterItem,
  type Track,
  type TrackOptions,
} from './tracks.js';

export interface AnalyzeOptions extends TrackOptions {
  /** Repository whose files and commits are the evidence (null: no git evidence). */
  repo: string | null;
  beadsDir?: string;
  file?: string;
  fromBv?: string;
  strict?: boolean;
  /** How many recent commits to scan for issue ids (0: none). */
  commits?: number;
  now?: number;
  /** Also plan the file as `bv --robot-plan` does (`analysis.bv`). */
  bv?: boolean;
  /** Keep the issues read (`analysis.issues`, for dispatch's items files). */
  keepIssues?: boolean;
  /** What `--file -` reads (default: process.stdin). */
  stdin?: AsyncIterable<Buffer | string>;
}

/** What the plan knows about the files each issue touches. */
export interface EvidenceStatus {
  /** The repository whose files and commits were read, or null. */
  repo: string | null;
  /** False without a repository: no file is known, so no conflict can be ruled out. */
  files: boolean;
  /** Track items for which no file is known (they may touch anything). */
  items_without_files: number;
  /** One sentence for people. */
  note: string;
}

export interface Warnings {
  malformed: LineProblem[];
  dangling: Dangling[];
  cycles: string[][];
}

export interface Analysis {
  source: { kind: 'beads' | 'bv'; file: string; issues: number; open: number; tombstones: number };
  tracks: Track[];
  /** Free work actionable now: the items of the tracks. */
  total_actionable: number;
  /** Free work that waits (blocked, deferred, in a cycle). */
  total_blocked: number;
  /** Work someone has (hooked, in progress, in review, assigned): never assigned. */
  in_flight: HeldItem[];
  /** Open issues that are not work (types, wisps, pinned): never assigned. */
  not_work: HeldItem[];
  /** Open issues whose status is unknown (no meaning, no category): never assigned. */
  unknown_status: HeldItem[];
  evidence: EvidenceStatus;
  conflicts: Conflict[];
  /** Open work in no track (its group has nothing free: a cycle, deferred, or held work). */
  stranded: LaterItem[];
  warnings: Warnings;
  /** The same lines as `bv --robot-plan` plans them (with `bv: true`, not for --from-bv). */
  bv?: BvRobotPlan;
  /** The issues read (with `keepIssues`; never printed). */
  issues?: Issue[];
}

function evidenceStatus(
  repo: string | null,
  files: RepoFiles | null,
  tracks: Track[],
  commitsOnly = false,
): EvidenceStatus {
  const items = tracks.flatMap((t) => t.items);
  const without = items.filter((i) => i.files.length === 0).length;
  if (!files && !commitsOnly) {
    return {
      repo,
      files: false,
      items_without_files: items.length,
      note: 'no file evidence (no git repository): tracks are grouped by dependencies and kind only and may touch the same files',
    };
  }
  return {
    repo,
    files: true,
    items_without_files: without,
    note: without
      ? `file evidence for ${items.length - without} of ${items.length} track items; the other ${without} may touch any file`
      : `file evidence for every track item`,
  };
}

export const DEFAULT_COMMITS = 500;

async function repoEvidence(
  repo: string | null,
  commits: number,
): Promise<{ files: RepoFiles | null; commits: Commit[] }> {
  if (!repo) return { files: null, commits: [] };
  try {
    const [ls, log] = await Promise.all([
      gitLsFiles(repo),
      gitCommits(repo, commits).catch(() => []),
    ]);
    return { files: indexRepoFiles(ls), commits: log };
  } catch {
    // not a git repository (or git missing): the analysis still works, without file evidence
    return { files: null, commits: [] };
  }
}

export async function analyze(opts: AnalyzeOptions): Promise<Analysis> {
  if ([opts.file, opts.fromBv, opts.beadsDir].filter(Boolean).length > 1) {
    throw usageError('--file, --beads-dir and --from-bv are alternatives: give one');
  }
  const evidenceP = repoEvidence(opts.repo, opts.commits ?? DEFAULT_COMMITS);
  if (opts.fromBv) return fromBv(opts.fromBv, opts.repo, await evidenceP);
  const file = opts.file ?? findIssueFile(resolveBeadsDir(opts));
  const read = await readIssueFile(file, {
    strict: opts.strict ?? false,
    bv: opts.bv === true,
    ...(opts.stdin ? { stdin: opts.stdin } : {}),
  });
  const g = buildGraph(read.issues, opts.now);
  const { files, commits } = await evidenceP;
  const open = read.issues.filter((_, i) => g.open[i]);
  const ev = gatherEvidence(open, files, commits);
  const plan = trackPlan(g, ev, opts);
  return {
    source: {
      kind: 'beads',
      file: read.file,
      issues: read.issues.length,
      open: open.length,
      tombstones: read.tombstones,
    },
    tracks: plan.tracks,
    total_actionable: plan.actionable,
    total_blocked: plan.waiting,
    in_flight: plan.in_flight,
    not_work: plan.not_work,
    unknown_status: plan.unknown_status,
    evidence: evidenceStatus(opts.repo, files, plan.tracks),
    conflicts: plan.conflicts,
    stranded: plan.stranded,
    warnings: { malformed: read.malformed, dangling: g.dangling, cycles: g.cycles },
    ...(read.bv ? { bv: bvRobotPlan(read.bv.issues, opts.now) } : {}),
    ...(opts.keepIssues ? { issues: read.issues } : {}),
  };
}

function resolveBeadsDir(opts: AnalyzeOptions): string {
  if (opts.beadsDir) return path.resolve(opts.beadsDir);
  if (!opts.repo) return path.resolve('.beads');
  return path.join(opts.repo, '.beads');
}

/** `--from-bv plan.json`: bv's tracks become ours; evidence comes from commits naming the ids. */
function fromBv(
  file: string,
  repoDir: string | null,
  repo: { files: RepoFiles | null; commits: Commit[] },
): Analysis {
  let raw: unknown;
  try {
    if (statSync(file).isDirectory())
      throw usageError(`${file} is a directory; --from-bv takes a JSON file`);
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    if (errno(e) === 'ENOENT') throw notFoundError(`bv plan not found: ${file}`);
    if (e instanceof SyntaxError) {
      throw failure('ERR_NOT_BV_PLAN', `${file} is not JSON: ${e.message}`, {
        hint: 'save the output of `bv --robot-plan` to the file',
      });
    }
    throw e;
  }
  const doc = raw as { plan?: BvPlan } & Partial<BvPlan>;
  const plan = doc.plan ?? doc;
  // bv prints `"tracks": null` for a plan without tracks
  if (plan && plan.tracks === null) plan.tracks = [];
  if (!plan || !Array.isArray(plan.tracks)) {
    throw failure('ERR_NOT_BV_PLAN', `${file} is not a bv plan: no plan.tracks array`, {
      hint: 'save the output of `bv --robot-plan` to the file',
    });
  }
  const tracksIn = plan.tracks as NonNullable<BvPlan['tracks']>;
  const ids = tracksIn.flatMap((t) =>
    Array.isArray(t.items) ? t.items.map((i) => String(i.id)) : [],
  );
  const ev: FileEvidence = gatherEvidence(
    ids.map((id) => ({
      id,
      title: '',
      status: 'open',
      priority: 2,
      issueType: 'task',
      labels: [],
      deps: [],
      text: {},
      metadataFiles: [],
      ephemeral: false,
      assignee: '',
      wispType: '',
    })),
    null,
    repo.commits,
  );
  // bv counts hooked and in-progress issues as actionable; they are in flight here.
  const inFlight: HeldItem[] = [];
  const tracks: Track[] = tracksIn.map((t, k) => {
    const all = (Array.isArray(t.items) ? t.items : []).map((i) => ({
      id: String(i.id),
      title: String(i.title ?? ''),
      priority: typeof i.priority === 'number' ? i.priority : 2,
      status: String(i.status ?? 'open'),
      type: 'task',
      assignee: '',
      unblocks: Array.isArray(i.unblocks) ? i.unblocks.map(String) : [],
      files: [...(ev.get(String(i.id))?.keys() ?? [])].sort(),
      evidence: [...(ev.get(String(i.id)) ?? [])]
        .sort((a, b) => (a[0] < b[0] ? -1 : 1))
        .map(([f, how]) => ({
          file: f,
          how: [
            ...new Set(
              how.map((h) => (h.kind === 'commit' ? `commit ${h.commit.slice(0, 8)}` : h.kind)),
            ),
          ],
        })),
    }));
    for (const i of all) {
      if (IN_FLIGHT_STATUSES.has(i.status)) {
        inFlight.push({
          id: i.id,
          title: i.title,
          priority: i.priority,
          status: i.status,
          type: i.type,
          assignee: '',
          reason: i.status,
        });
      }
    }
    const items = all.filter((i) => !IN_FLIGHT_STATUSES.has(i.status));
    return {
      track_id: String(t.track_id ?? `track-${k + 1}`),
      priority: items.length ? Math.min(...items.map((i) => i.priority)) : 4,
      size: items.length,
      reason: String(t.reason ?? ''),
      items,
      later: [],
      files: [...new Set(items.flatMap((i) => i.files))].sort(),
      shared_files: [],
    };
  });
  const kept = tracks.filter((t) => t.size > 0);
  const actionable = kept.reduce((sum, t) => sum + t.size, 0);
  return {
    source: {
      kind: 'bv',
      file,
      issues: ids.length,
      open: actionable + (plan.total_blocked ?? 0),
      tombstones: 0,
    },
    tracks: kept,
    total_actionable: actionable,
    total_blocked: typeof plan.total_blocked === 'number' ? plan.total_blocked : 0,
    in_flight: inFlight,
    not_work: [],
    unknown_status: [],
    evidence: evidenceStatus(repoDir, repo.files, kept),
    conflicts: findConflicts(
      kept.map((t) => ({ track: t.track_id, issues: t.items.map((i) => i.id) })),
      ev,
    ),
    stranded: [],
    warnings: { malformed: [], dangling: [], cycles: [] },
  };
}
