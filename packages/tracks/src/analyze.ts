/**
 * One analysis: read the input (beads dir, issue file or a bv plan), build the graph, gather
 * file evidence from the repository, and produce the plan in the requested format.
 */
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { errno, failure, notFoundError, usageError } from '@wtpool/core';
import { buildGraph, type Dangling } from './graph.js';
import { bvPlan, type BvPlan } from './bv.js';
import {
  gatherEvidence,
  gitCommits,
  gitLsFiles,
  indexRepoFiles,
  type Commit,
  type FileEvidence,
  type RepoFiles,
} from './evidence.js';
import { findIssueFile, readIssueFile, type LineProblem } from './reader.js';
import {
  findConflicts,
  trackPlan,
  type Conflict,
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
}

export interface Warnings {
  malformed: LineProblem[];
  dangling: Dangling[];
  cycles: string[][];
}

export interface Analysis {
  source: { kind: 'beads' | 'bv'; file: string; issues: number; open: number; tombstones: number };
  tracks: Track[];
  total_actionable: number;
  total_blocked: number;
  conflicts: Conflict[];
  /** Open issues in no track (their whole group is in a cycle or deferred). */
  stranded: LaterItem[];
  warnings: Warnings;
  /** The same input as `bv --robot-plan` would plan it (absent for --from-bv). */
  bv?: BvPlan;
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
  if (opts.fromBv) return fromBv(opts.fromBv, await evidenceP);
  const file = opts.file ?? findIssueFile(resolveBeadsDir(opts));
  const read = await readIssueFile(file, { strict: opts.strict ?? false });
  const g = buildGraph(read.issues, opts.now);
  const { files, commits } = await evidenceP;
  const open = read.issues.filter((_, i) => g.open[i]);
  const ev = gatherEvidence(open, files, commits);
  const plan = trackPlan(g, ev, opts);
  const bv = bvPlan(g);
  return {
    source: {
      kind: 'beads',
      file,
      issues: read.issues.length,
      open: open.length,
      tombstones: read.tombstones,
    },
    tracks: plan.tracks,
    total_actionable: bv.total_actionable,
    total_blocked: bv.total_blocked,
    conflicts: plan.conflicts,
    stranded: plan.stranded,
    warnings: { malformed: read.malformed, dangling: g.dangling, cycles: g.cycles },
    bv,
  };
}

function resolveBeadsDir(opts: AnalyzeOptions): string {
  if (opts.beadsDir) return path.resolve(opts.beadsDir);
  if (!opts.repo) return path.resolve('.beads');
  return path.join(opts.repo, '.beads');
}

/** `--from-bv plan.json`: bv's tracks become ours; evidence comes from commits naming the ids. */
function fromBv(file: string, repo: { files: RepoFiles | null; commits: Commit[] }): Analysis {
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
  if (!plan || !Array.isArray(plan.tracks)) {
    throw failure('ERR_NOT_BV_PLAN', `${file} is not a bv plan: no plan.tracks array`, {
      hint: 'save the output of `bv --robot-plan` to the file',
    });
  }
  const ids = plan.tracks.flatMap((t) =>
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
    })),
    null,
    repo.commits,
  );
  const tracks: Track[] = plan.tracks.map((t, k) => {
    const items = (Array.isArray(t.items) ? t.items : []).map((i) => ({
      id: String(i.id),
      title: String(i.title ?? ''),
      priority: typeof i.priority === 'number' ? i.priority : 2,
      status: String(i.status ?? 'open'),
      type: 'task',
      unblocks: Array.isArray(i.unblocks) ? i.unblocks.map(String) : [],
      files: [...(ev.get(String(i.id))?.keys() ?? [])].sort(),
    }));
    return {
      track_id: String(t.track_id ?? `track-${k + 1}`),
      priority: items.length ? Math.min(...items.map((i) => i.priority)) : 4,
      size: items.length,
      reason: String(t.reason ?? ''),
      items,
      later: [],
      files: [...new Set(items.flatMap((i) => i.files))].sort(),
    };
  });
  const actionable = typeof plan.total_actionable === 'number' ? plan.total_actionable : ids.length;
  return {
    source: {
      kind: 'bv',
      file,
      issues: ids.length,
      open: actionable + (plan.total_blocked ?? 0),
      tombstones: 0,
    },
    tracks: tracks.filter((t) => t.size > 0),
    total_actionable: actionable,
    total_blocked: typeof plan.total_blocked === 'number' ? plan.total_blocked : 0,
    conflicts: findConflicts(
      tracks.map((t) => ({ track: t.track_id, issues: t.items.map((i) => i.id) })),
      ev,
    ),
    stranded: [],
    warnings: { malformed: [], dangling: [], cycles: [] },
  };
}
