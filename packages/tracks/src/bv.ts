/**
 * `--format bv`: the output of `bv --robot-plan` (beads_viewer), computed as bv's code does it
 * (pkg/analysis/plan.go `GetExecutionPlan`, graph.go `NewAnalyzer`/`GetActionableIssues`,
 * cache.go `ComputeDataHash`, cmd/bv/main.go's robot-plan envelope). Input: the issues bv's
 * loader keeps (bv-loader.ts). See docs/tracks.md § `--format bv` for the rules in prose.
 */
import { createHash } from 'node:crypto';
import { goCompare, type BvIssue, type GoTime } from './bv-loader.js';

export interface BvPlanItem {
  id: string;
  title: string;
  priority: number;
  status: string;
  /** Go's nil slice: null when the item unblocks nothing. */
  unblocks: string[] | null;
}

export interface BvTrack {
  track_id: string;
  items: BvPlanItem[];
  reason: string;
}

export interface BvPlan {
  /** null when there is no track (a nil slice in Go). */
  tracks: BvTrack[] | null;
  total_actionable: number;
  total_blocked: number;
  summary: { highest_impact: string; impact_reason: string; unblocks_count: number };
}

/** `track-A` … `track-Z`, `track-AA`, … (1-based; `track-?` below 1, as bv). */
export function trackName(n: number): string {
  if (n <= 0) return 'track-?';
  let letters = '';
  for (let k = n - 1; k >= 0; k = Math.floor(k / 26) - 1) {
    letters = String.fromCharCode(65 + (k % 26)) + letters;
  }
  return `track-${letters}`;
}

/** model.DependencyType.IsBlocking: `blocks` and the empty legacy type, nothing else. */
export const bvBlocking = (type: string): boolean => type === '' || type === 'blocks';
/** isClosedLikeStatus: only closed and tombstone are done. */
export const bvClosed = (status: string): boolean => status === 'closed' || status === 'tombstone';

function impactReason(count: number): string {
  return count === 1
    ? 'Unblocks 1 task'
    : count > 1
      ? 'Unblocks multiple tasks'
      : 'No downstream dependencies';
}

/**
 * bv's execution plan. The analyzer's graph has one node per input issue (duplicates
 * included); an id maps to its last node and its last issue; an issue's blocking dependencies
 * on existing ids are edges from the id's last node (one per target per input issue).
 */
export function bvExecutionPlan(input: BvIssue[]): BvPlan {
  const lastNode = new Map<string, number>();
  input.forEach((is, k) => lastNode.set(is.id, k));
  const issueOf = (id: string) => input[lastNode.get(id)!]!;
  const out: number[][] = input.map(() => []);
  const into: number[][] = input.map(() => []);
  for (const is of input) {
    const u = lastNode.get(is.id)!;
    const seen = new Set<number>();
    for (const d of is.dependencies) {
      if (!d || !bvBlocking(d.type)) continue;
      const v = lastNode.get(d.dependsOn);
      if (v === undefined || seen.has(v)) continue;
      seen.add(v);
      out[u]!.push(v);
      into[v]!.push(u);
    }
  }
  const ids = [...lastNode.keys()].sort(goCompare);
  // GetActionableIssues: open, and no blocking dependency on an existing, open issue.
  const actionable = ids
    .map(issueOf)
    .filter(
      (is) =>
        !bvClosed(is.status) &&
        !is.dependencies.some(
          (d) =>
            d &&
            bvBlocking(d.type) &&
            lastNode.has(d.dependsOn) &&
            !bvClosed(issueOf(d.dependsOn).status),
        ),
    );
  // computeUnblocks: dependents (edges into the issue) whose other blockers are all done.
  const unblocksOf = new Map<string, string[] | null>();
  for (const is of actionable) {
    const list: string[] = [];
    for (const u of into[lastNode.get(is.id)!]!) {
      const dep = input[u]!;
      if (bvClosed(issueOf(dep.id).status)) continue;
      const still = out[u]!.some(
        (v) => input[v]!.id !== is.id && !bvClosed(issueOf(input[v]!.id).status),
      );
      if (!still) list.push(dep.id);
    }
    unblocksOf.set(is.id, list.length ? list.sort(goCompare) : null);
  }
  // findConnectedComponents: union-find over the sorted ids, blocking edges either way; the
  // root of a component is its smallest id, and components are taken in root order.
  const pos = new Map(ids.map((id, k) => [id, k]));
  const parent = ids.map((_, k) => k);
  const find = (x: number): number => {
    while (parent[x] !== x) {
      parent[x] = parent[parent[x]!]!;
      x = parent[x]!;
    }
    return x;
  };
  for (const id of ids) {
    for (const d of issueOf(id).dependencies) {
      if (!d || !bvBlocking(d.type) || !lastNode.has(d.dependsOn)) continue;
      const a = find(pos.get(id)!);
      const b = find(pos.get(d.dependsOn)!);
      if (a !== b) parent[Math.max(a, b)] = Math.min(a, b);
    }
  }
  const members = new Map<number, BvIssue[]>();
  const roots = new Set<number>();
  for (let k = 0; k < ids.length; k++) roots.add(find(k));
  for (const is of actionable) {
    const r = find(pos.get(is.id)!);
    const m = members.get(r);
    if (m) m.push(is);
    else members.set(r, [is]);
  }
  const tracks: BvTrack[] = [];
  for (const r of [...members.keys()].sort((a, b) => a - b)) {
    const items = members
      .get(r)!
      .sort((a, b) => a.priority - b.priority || goCompare(a.id, b.id))
      .map((is) => ({
        id: is.id,
        title: is.title,
        priority: is.priority,
        status: is.status,
        unblocks: unblocksOf.get(is.id) ?? null,
      }));
    const reason =
      items.length === 1
        ? 'Single actionable item'
        : roots.size === 1
          ? 'All issues in connected graph'
          : 'Independent work stream';
    tracks.push({ track_id: trackName(tracks.length + 1), items, reason });
  }
  const open = ids.filter((id) => !bvClosed(issueOf(id).status)).length;
  let highest = '';
  let count = -1;
  for (const is of actionable) {
    // actionable is in id order: the first of the largest wins ties
    const c = unblocksOf.get(is.id)?.length ?? 0;
    if (c > count) {
      count = c;
      highest = is.id;
    }
  }
  return {
    tracks: tracks.length ? tracks : null,
    total_actionable: actionable.length,
    total_blocked: open - actionable.length,
    summary: actionable.length
      ? { highest_impact: highest, impact_reason: impactReason(count), unblocks_count: count }
      : { highest_impact: '', impact_reason: '', unblocks_count: 0 },
  };
}

/** `analysis.ComputeDataHash`: sha256 over the issues sorted by id, first 16 hex digits. */
export function bvDataHash(issues: BvIssue[]): string {
  if (!issues.length) return 'empty';
  // the bytes are gathered and hashed once: one update per field would cost more than the hash
  const parts: string[] = [];
  const w = (s: string) => {
    parts.push(s, '\0');
  };
  const t = (x: GoTime) => x.text;
  // sort.Slice is not stable; duplicate ids keep their file order here
  const sorted = [...issues].sort((a, b) => goCompare(a.id, b.id));
  for (const is of sorted) {
    for (const s of [is.id, is.title, is.description, is.notes, is.design, is.acceptanceCriteria])
      w(s);
    w(is.assignee);
    w(is.sourceRepo);
    w(is.externalRef ?? '');
    w(is.status);
    w(is.issueType);
    w(String(is.priority));
    w(is.estimatedMinutes === null ? '' : String(is.estimatedMinutes));
    w(t(is.createdAt));
    w(t(is.updatedAt));
    w(is.closedAt ? t(is.closedAt) : '');
    for (const l of [...is.labels].sort(goCompare)) w(l);
    parts.push('\0');
    const deps = is.dependencies
      .filter((d) => d !== null)
      .map((d) => [d.dependsOn, d.type, t(d.createdAt), d.createdBy] as const)
      .sort(
        (a, b) =>
          goCompare(a[0], b[0]) ||
          goCompare(a[1], b[1]) ||
          goCompare(a[2], b[2]) ||
          goCompare(a[3], b[3]),
      );
    for (const d of deps) for (const s of d) w(s);
    parts.push('\0');
    const comments = is.comments
      .filter((c) => c !== null)
      .map((c) => [String(c.id), t(c.createdAt), c.author, c.text] as const)
      .sort(
        (a, b) =>
          goCompare(a[0], b[0]) ||
          goCompare(a[1], b[1]) ||
          goCompare(a[2], b[2]) ||
          goCompare(a[3], b[3]),
      );
    for (const [id, at, author, text] of comments) for (const s of [id, author, text, at]) w(s);
    parts.push('\x01');
  }
  return createHash('sha256').update(parts.join(''), 'utf8').digest('hex').slice(0, 16);
}

const MS = 1_000_000; // time.Duration is in nanoseconds
const SKIP = 'not computed for --robot-plan';

/**
 * `analysis.ConfigForSize(n, blocks edges)` with the robot-plan overrides (no BV_* variables):
 * only the timeouts, sample size and cycle limit still depend on the size.
 */
export function bvRobotPlanConfig(nodes: number, edges: number): Record<string, unknown> {
  const density = nodes > 1 ? edges / (nodes * (nodes - 1)) : 0;
  // [betweenness timeout, sample, pagerank, hits, cycles timeout (ms), cycles kept]
  let c: [number, number, number, number, number, number];
  if (nodes < 100) c = [2000, 0, 2000, 2000, 2000, 1000];
  else if (nodes < 500) c = [500, 0, 500, 500, 500, 100];
  else if (nodes < 2000)
    c = [density < 0.01 ? 500 : 0, density < 0.01 ? 100 : 0, 300, 300, 300, 50];
  else c = [500, 200, 200, density < 0.001 ? 200 : 0, 0, 10];
  return {
    ComputeBetweenness: false,
    BetweennessTimeout: c[0] * MS,
    BetweennessSkipReason: SKIP,
    BetweennessMode: 'skip',
    BetweennessSampleSize: c[1],
    BetweennessIsApproximate: false,
    ComputePageRank: false,
    PageRankTimeout: c[2] * MS,
    PageRankSkipReason: SKIP,
    ComputeHITS: false,
    HITSTimeout: c[3] * MS,
    HITSSkipReason: SKIP,
    ComputeCycles: false,
    CyclesTimeout: c[4] * MS,
    MaxCyclesToStore: c[5],
    CyclesSkipReason: SKIP,
    ComputeEigenvector: false,
    ComputeCriticalPath: false,
    ComputeKCore: true,
    ComputeArticulation: true,
    ComputeSlack: true,
  };
}

/** What bv's `status` reports for a robot-plan run. */
function bvStatus(uniqueIds: number): Record<string, Record<string, unknown>> {
  const skipped = { state: 'skipped' };
  const why = { state: 'skipped', reason: SKIP };
  // bv computes these three structural metrics but prints none of them in --robot-plan; tracks
  // does not compute them, and says so (on an empty graph there is nothing to compute).
  const notHere = uniqueIds
    ? { state: 'skipped', reason: 'not computed by tracks (not part of the plan)' }
    : { state: 'computed' };
  return {
    PageRank: skipped,
    Betweenness: uniqueIds ? why : skipped,
    Eigenvector: skipped,
    HITS: uniqueIds ? why : skipped,
    Critical: skipped,
    Cycles: uniqueIds ? why : skipped,
    KCore: notHere,
    Articulation: notHere,
    Slack: notHere,
  };
}

export interface BvRobotPlan {
  generated_at: string;
  data_hash: string;
  analysis_config: Record<string, unknown>;
  status: Record<string, Record<string, unknown>>;
  plan: BvPlan;
  usage_hints: string[];
}

export const BV_USAGE_HINTS: readonly string[] = [
  "jq '.plan.tracks | length' - Number of parallel execution tracks",
  "jq '.plan.tracks[0].items | map(.id)' - First track item IDs",
  "jq '.plan.tracks[].items[] | select(.unblocks | length > 0)' - Items that unblock others",
  "jq '.plan.summary' - High-level execution summary",
  "jq '[.plan.tracks[].items[]] | length' - Total items across all tracks",
];

/** The whole `bv --robot-plan` document for the issues bv's loader keeps. */
export function bvRobotPlan(issues: BvIssue[], now: number = Date.now()): BvRobotPlan {
  const edges = issues.reduce(
    (s, is) => s + is.dependencies.filter((d) => d && d.type === 'blocks').length,
    0,
  );
  return {
    generated_at: new Date(Math.floor(now / 1000) * 1000).toISOString().replace('.000Z', 'Z'),
    data_hash: bvDataHash(issues),
    analysis_config: bvRobotPlanConfig(issues.length, edges),
    status: bvStatus(new Set(issues.map((i) => i.id)).size),
    plan: bvExecutionPlan(issues),
    usage_hints: [...BV_USAGE_HINTS],
  };
}

/** A bv-shaped plan from our tracks (for `--from-bv … --format bv` round trips). */
export function toBvPlan(a: {
  tracks: { track_id: string; reason: string; items: BvPlanItem[] }[];
  total_actionable: number;
  total_blocked: number;
}): BvPlan {
  const all = a.tracks.flatMap((t) => t.items).sort((x, y) => goCompare(x.id, y.id));
  const n = (i: BvPlanItem) => i.unblocks?.length ?? 0;
  const top = all.reduce<BvPlanItem | undefined>(
    (best, i) => (!best || n(i) > n(best) ? i : best),
    undefined,
  );
  return {
    tracks: a.tracks.length
      ? a.tracks.map((t) => ({
          track_id: t.track_id,
          items: t.items.map((i) => ({
            id: i.id,
            title: i.title,
            priority: i.priority,
            status: i.status,
            unblocks: i.unblocks?.length ? i.unblocks : null,
          })),
          reason: t.reason,
        }))
      : null,
    total_actionable: a.total_actionable,
    total_blocked: a.total_blocked,
    summary: top
      ? { highest_impact: top.id, impact_reason: impactReason(n(top)), unblocks_count: n(top) }
      : { highest_impact: '', impact_reason: '', unblocks_count: 0 },
  };
}
