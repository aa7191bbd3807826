/**
 * `--format bv`: the plan of `bv --robot-plan` (beads_viewer), for consumers of that shape.
 * bv's algorithm: connected components (union-find, edges taken as undirected) over every issue
 * of the file, joined by blocking and parent-child dependencies whose target exists; each
 * component's actionable issues form one track, sorted by priority then id; components without
 * actionable issues are dropped; tracks are named track-A, track-B, … in the order of their
 * component's smallest id.
 */
import { UnionFind, unblocks, type Graph } from './graph.js';

export interface BvPlanItem {
  id: string;
  title: string;
  priority: number;
  status: string;
  unblocks: string[];
}

export interface BvTrack {
  track_id: string;
  items: BvPlanItem[];
  reason: string;
}

export interface BvPlan {
  tracks: BvTrack[];
  total_actionable: number;
  total_blocked: number;
  summary: { highest_impact: string; impact_reason: string; unblocks_count: number };
}

/** `track-A` … `track-Z`, `track-AA`, … (1-based). */
export function trackName(n: number): string {
  let letters = '';
  for (let k = n - 1; k >= 0; k = Math.floor(k / 26) - 1) {
    letters = String.fromCharCode(65 + (k % 26)) + letters;
  }
  return `track-${letters}`;
}

const byId = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

export function bvPlan(g: Graph): BvPlan {
  const n = g.issues.length;
  const uf = new UnionFind(n);
  for (let i = 0; i < n; i++) {
    for (const t of g.blockers[i]!) uf.union(i, t);
    for (const t of g.parents[i]!) uf.union(i, t);
  }
  const members = new Map<number, number[]>();
  const rootMinId = new Map<number, string>();
  for (let i = 0; i < n; i++) {
    const r = uf.find(i);
    const id = g.issues[i]!.id;
    const m = rootMinId.get(r);
    if (m === undefined || id < m) rootMinId.set(r, id);
    if (!g.actionable[i]) continue;
    const list = members.get(r);
    if (list) list.push(i);
    else members.set(r, [i]);
  }
  const unblocksOf = new Map<number, string[]>();
  for (let i = 0; i < n; i++) if (g.actionable[i]) unblocksOf.set(i, unblocks(g, i));
  const roots = [...members.keys()].sort((a, b) => byId(rootMinId.get(a)!, rootMinId.get(b)!));
  const components = rootMinId.size;
  const tracks = roots.map((r, k): BvTrack => {
    const items = members
      .get(r)!
      .map((i) => g.issues[i]!)
      .sort((a, b) => a.priority - b.priority || byId(a.id, b.id))
      .map((is) => ({
        id: is.id,
        title: is.title,
        priority: is.priority,
        status: is.status,
        unblocks: unblocksOf.get(g.index.get(is.id)!)!,
      }));
    const reason =
      items.length === 1
        ? 'Single actionable item'
        : components === 1
          ? 'All issues in connected graph'
          : 'Independent work stream';
    return { track_id: trackName(k + 1), items, reason };
  });
  const actionable = [...unblocksOf.keys()];
  const totalOpen = g.open.filter(Boolean).length;
  let highest = '';
  let count = -1;
  for (const i of actionable.sort((a, b) => byId(g.issues[a]!.id, g.issues[b]!.id))) {
    const c = unblocksOf.get(i)!.length;
    if (c > count) {
      count = c;
      highest = g.issues[i]!.id;
    }
  }
  return {
    tracks,
    total_actionable: actionable.length,
    total_blocked: totalOpen - actionable.length,
    summary: actionable.length
      ? {
          highest_impact: highest,
          impact_reason:
            count === 0
              ? 'No downstream dependencies'
              : count === 1
                ? 'Unblocks 1 task'
                : 'Unblocks multiple tasks',
          unblocks_count: count,
        }
      : { highest_impact: '', impact_reason: '', unblocks_count: 0 },
  };
}

/** A bv-shaped plan from our analysis (for `--from-bv … --format bv` round trips). */
export function toBvPlan(a: {
  tracks: { track_id: string; reason: string; items: BvPlanItem[] }[];
  total_actionable: number;
  total_blocked: number;
}): BvPlan {
  const all = a.tracks.flatMap((t) => t.items).sort((x, y) => byId(x.id, y.id));
  const top = all.reduce<BvPlanItem | undefined>(
    (best, i) => (!best || i.unblocks.length > best.unblocks.length ? i : best),
    undefined,
  );
  return {
    tracks: a.tracks.map((t) => ({
      track_id: t.track_id,
      reason: t.reason,
      items: t.items.map((i) => ({
        id: i.id,
        title: i.title,
        priority: i.priority,
        status: i.status,
        unblocks: i.unblocks,
      })),
    })),
    total_actionable: a.total_actionable,
    total_blocked: a.total_blocked,
    summary: top
      ? {
          highest_impact: top.id,
          impact_reason:
            top.unblocks.length === 0
              ? 'No downstream dependencies'
              : top.unblocks.length === 1
                ? 'Unblocks 1 task'
                : 'Unblocks multiple tasks',
          unblocks_count: top.unblocks.length,
        }
      : { highest_impact: '', impact_reason: '', unblocks_count: 0 },
  };
}
