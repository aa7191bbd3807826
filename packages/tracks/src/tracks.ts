/**
 * The default track plan, built for assigning worktrees. See docs/tracks.md for the algorithm;
 * in short: components of open issues joined by blocking/parent-child dependencies and by
 * shared files (an epic's children, a dependency chain, issues touching the same file stay
 * together), then packed into at most `maxTracks` tracks, preferring to put components with the
 * same label or directory together. Packing only joins independent components, so tracks stay
 * independent: no blocking path and no merged file between two tracks (a file too common to
 * merge on is reported as a conflict instead).
 */
import { NON_WORK_TYPES } from '@wtpool/config';
import { UnionFind, unblocks, type Graph } from './graph.js';
import type { Evidence, FileEvidence } from './evidence.js';
import type { Issue } from './reader.js';
import { trackName } from './bv.js';
import { KNOWN_STATUSES, statusMeaning } from './status.js';
import { mostCommon, unitShape } from './unit-shape.js';
import { binReason, packUnits, unitOrder, type Unit } from './pack.js';
import { orderIssues } from './order.js';
export type { UnitShape } from './unit-shape.js';
export { packUnits, type Unit } from './pack.js';
export { orderIssues } from './order.js';

/** What every listed item shows: who it is, how urgent, its status and assignee. */
export interface ItemBase {
  id: string;
  title: string;
  priority: number;
  status: string;
  type: string;
  /** Who has it; always empty for a track item (an assigned issue is in flight, never handed out). */
  assignee: string;
  /** The issue's fields this tool does not read, as the export has them (`created_at`, `owner`…). */
  extra?: Record<string, unknown>;
}

export interface TrackItem extends ItemBase {
  /** Issues that become actionable when this one is closed. */
  unblocks: string[];
  files: string[];
  /** Why each file is expected: `description`, `notes`, `metadata.files`, `commit 1a2b3c4d`. */
  evidence: { file: string; how: string[] }[];
}

export interface LaterItem extends ItemBase {
  /** Open issues it waits for (blockers, or a blocked parent); empty when only deferred. */
  waits_on: string[];
}

/** An open issue that is never assigned: not work, or work someone already has. */
export interface HeldItem extends ItemBase {
  reason: string;
}

export interface Track {
  track_id: string;
  /** The most urgent priority among the items (0 = highest). */
  priority: number;
  /** Number of actionable items. */
  size: number;
  reason: string;
  /** Actionable now, in the order to do them (dependencies, then priority). */
  items: TrackItem[];
  /** Open issues of the same work that wait on dependencies, in the order they unblock. */
  later: LaterItem[];
  /** Files the track is expected to touch (from its items and later issues). */
  files: string[];
  /** Files named by two or more of the track's issues, and which. */
  shared_files: { file: string; issues: string[] }[];
}

export interface ConflictFile {
  file: string;
  evidence: { track: string; issue: string; how: Evidence[] }[];
}

export interface Conflict {
  tracks: [string, string];
  files: ConflictFile[];
}

export interface TrackOptions {
  /** At most this many tracks (independent components are packed together beyond it). */
  maxTracks?: number;
  /**
   * A file named by more than this many actionable issues (README.md, package.json…) does not
   * join them into one track; it is reported as a conflict instead.
   */
  hotFile?: number;
  /** Issue types that are not work (config `tracks.nonWorkTypes`). */
  nonWorkTypes?: readonly string[];
}

/** beads' types that are not work to hand out (the default of config `tracks.nonWorkTypes`). */
export const DEFAULT_NON_WORK_TYPES: readonly string[] = NON_WORK_TYPES;

/** beads' statuses of work someone is doing (or reviewing): never handed out again. */
export const IN_FLIGHT_STATUSES: ReadonlySet<string> = new Set(
  Object.keys(KNOWN_STATUSES).filter((s) => KNOWN_STATUSES[s] === 'in_flight'),
);

export interface Hold {
  /** `unknown_status`: a status without a known meaning or category (listed, never assigned). */
  kind: 'not_work' | 'in_flight' | 'unknown_status';
  reason: string;
}

/** Why an open issue is never assigned, or null for free work. */
export function holdOf(is: Issue, nonWork: ReadonlySet<string>): Hold | null {
  if (nonWork.has(is.issueType)) return { kind: 'not_work', reason: `type ${is.issueType}` };
  if (is.ephemeral || is.wispType) return { kind: 'not_work', reason: 'ephemeral (wisp)' };
  const meaning = statusMeaning(is.status, is.statusCategory);
  const custom = KNOWN_STATUSES[is.status] === undefined;
  const status = custom ? `${is.status} (${is.statusCategory})` : is.status;
  if (meaning === 'not_work') return { kind: 'not_work', reason: status };
  if (meaning === 'in_flight') {
    return { kind: 'in_flight', reason: is.assignee ? `${status}, ${is.assignee}` : status };
  }
  if (meaning === 'unknown') {
    return {
      kind: 'unknown_status',
      reason: is.statusCategory
        ? `unknown status ${is.status} (category ${is.statusCategory})`
        : `unknown status ${is.status}`,
    };
  }
  if (is.assignee) return { kind: 'in_flight', reason: `assigned to ${is.assignee}` };
  return null;
}

export const DEFAULT_MAX_TRACKS = 10;
export const DEFAULT_HOT_FILE = 6;

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

const WORK_TYPES = new Set(['task', 'bug', 'feature', 'chore', 'epic', 'story', 'spike', 'docs']);

/**
 * What an issue is "about", to pack independent components sensibly: the top directory of its
 * files, else its type when it is not code work, else ephemeral, else its first label, else its
 * id prefix (`bd-wisp-x1` → `bd-wisp`).
 */
export function affinityOf(is: Issue, ev: FileEvidence): string {
  const files = [...(ev.get(is.id)?.keys() ?? [])];
  const dir = mostCommon(files.map((f) => (f.includes('/') ? f.slice(0, f.indexOf('/')) : '.')));
  if (dir) return `directory ${dir}`;
  if (!WORK_TYPES.has(is.issueType)) return `type ${is.issueType}`;
  if (is.ephemeral) return 'ephemeral issues';
  if (is.labels[0]) return `label ${is.labels[0]}`;
  const base = is.id.replace(/(\.\d+)+$/, '');
  return `prefix ${base.includes('-') ? base.slice(0, base.lastIndexOf('-')) : base}`;
}

export interface TrackPlanResult {
  tracks: Track[];
  conflicts: Conflict[];
  /** Open work in no track: its group has no free issue (a cycle, deferred, or waiting on held work). */
  stranded: LaterItem[];
  /** Open work someone has: hooked, in progress, in review, or assigned. Never assigned again. */
  in_flight: HeldItem[];
  /** Open issues that are not work: non-work types, wisps, pinned beads. Never assigned. */
  not_work: HeldItem[];
  /** Open issues whose status has no known meaning nor category. Never assigned. */
  unknown_status: HeldItem[];
  /** Free work: actionable now (in a track) and waiting (later or stranded). */
  actionable: number;
  waiting: number;
}

const howText = (h: Evidence) =>
  h.kind === 'text'
    ? h.field
    : h.kind === 'commit'
      ? `commit ${h.commit.slice(0, 8)}`
      : 'metadata.files';

export function trackPlan(g: Graph, ev: FileEvidence, opts: TrackOptions = {}): TrackPlanResult {
  const maxTracks = Math.max(1, opts.maxTracks ?? DEFAULT_MAX_TRACKS);
  const hotFile = Math.max(2, opts.hotFile ?? DEFAULT_HOT_FILE);
  const n = g.issues.length;
  const nonWork = new Set(opts.nonWorkTypes ?? DEFAULT_NON_WORK_TYPES);
  const holds = g.issues.map((is, i) => (g.open[i] ? holdOf(is, nonWork) : null));
  /** Actionable and free: the only issues a track hands out. */
  const free = g.actionable.map((a, i) => a && !holds[i]);
  const uf = new UnionFind(n);
  for (let i = 0; i < n; i++) {
    if (!g.open[i]) continue;
    for (const t of g.blockers[i]!) if (g.open[t]) uf.union(i, t);
    for (const t of g.parents[i]!) if (g.open[t]) uf.union(i, t);
  }
  // Hierarchical ids (bd-abc.1 is a child of bd-abc) belong together even without a dependency.
  for (let i = 0; i < n; i++) {
    const id = g.issues[i]!.id;
    const dot = id.lastIndexOf('.');
    const parent =
      dot > 0 && /^\d+$/.test(id.slice(dot + 1)) ? g.index.get(id.slice(0, dot)) : undefined;
    if (parent !== undefined && g.open[i] && g.open[parent]) uf.union(i, parent);
  }
  // Join actionable issues that name the same file, unless the file is everywhere.
  const byFile = new Map<string, number[]>();
  for (let i = 0; i < n; i++) {
    if (!free[i]) continue;
    for (const f of ev.get(g.issues[i]!.id)?.keys() ?? []) {
      const list = byFile.get(f);
      if (list) list.push(i);
      else byFile.set(f, [i]);
    }
  }
  const fileJoined = new Set<number>();
  for (const list of byFile.values()) {
    if (list.length < 2 || list.length > hotFile) continue;
    for (const x of list) {
      if (uf.find(x) !== uf.find(list[0]!)) {
        fileJoined.add(x);
        fileJoined.add(list[0]!);
      }
      uf.union(x, list[0]!);
    }
  }
  const comps = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    if (!g.open[i]) continue;
    const r = uf.find(i);
    const c = comps.get(r);
    if (c) c.push(i);
    else comps.set(r, [i]);
  }
  const units: Unit[] = [];
  const strandedIdx: number[] = [];
  for (const all of comps.values()) {
    // held issues stay in the graph (they block and join) but are listed apart, never assigned
    const members = all.filter((m) => !holds[m]);
    const actionable = members.filter((m) => free[m]);
    if (!actionable.length) {
      strandedIdx.push(...members);
      continue;
    }
    const affinity = mostCommon(actionable.map((m) => affinityOf(g.issues[m]!, ev))) ?? 'mixed';
    units.push({
      members,
      actionable,
      priority: Math.min(...actionable.map((m) => g.issues[m]!.priority)),
      minId: actionable.map((m) => g.issues[m]!.id).sort(cmp)[0]!,
      affinity,
      shape: unitShape(
        g,
        members,
        actionable,
        new Set(members.filter((m) => fileJoined.has(m))),
        ev,
      ),
    });
  }
  units.sort(unitOrder);
  const bins = packUnits(units, maxTracks);
  const unblocksOf = (i: number) => unblocks(g, i);
  const filesOf = (i: number) => [...(ev.get(g.issues[i]!.id)?.keys() ?? [])].sort(cmp);
  const evidenceOf = (i: number) =>
    [...(ev.get(g.issues[i]!.id) ?? [])]
      .sort((a, b) => cmp(a[0], b[0]))
      .map(([file, how]) => ({ file, how: [...new Set(how.map(howText))] }));
  const itemBase = (i: number): ItemBase => {
    const is = g.issues[i]!;
    return {
      id: is.id,
      title: is.title,
      priority: is.priority,
      status: is.status,
      type: is.issueType,
      assignee: is.assignee,
      ...(is.extra ? { extra: is.extra } : {}),
    };
  };
  const heldItem = (i: number): HeldItem => ({ ...itemBase(i), reason: holds[i]!.reason });
  const laterItem = (i: number): LaterItem => {
    const waits = [
      ...g.blockers[i]!.filter((b) => g.open[b]),
      ...g.parents[i]!.filter((p) => g.open[p] && g.blocked[p]),
    ].map((x) => g.issues[x]!.id);
    return { ...itemBase(i), waits_on: [...new Set(waits)].sort(cmp) };
  };
  const built = bins.map((bin) => {
    const members = bin.units.flatMap((u) => u.members);
    const order = orderIssues(g, members);
    const items = order
      .filter((i) => free[i])
      .map((i): TrackItem => ({
        ...itemBase(i),
        unblocks: unblocksOf(i),
        files: filesOf(i),
        evidence: evidenceOf(i),
      }));
    const later = order.filter((i) => !free[i]).map(laterItem);
    const files = [...new Set(members.flatMap(filesOf))].sort(cmp);
    const named = new Map<string, string[]>();
    for (const i of order)
      for (const f of filesOf(i)) named.set(f, [...(named.get(f) ?? []), g.issues[i]!.id]);
    const shared_files = [...named]
      .filter(([, ids]) => ids.length > 1)
      .map(([file, issues]) => ({ file, issues }))
      .sort((a, b) => b.issues.length - a.issues.length || cmp(a.file, b.file));
    const reason = binReason(bin);
    return {
      track_id: '',
      priority: Math.min(...items.map((i) => i.priority)),
      size: items.length,
      reason,
      items,
      later,
      files,
      shared_files,
      members,
    };
  });
  built.sort(
    (a, b) => a.priority - b.priority || b.size - a.size || cmp(a.items[0]!.id, b.items[0]!.id),
  );
  built.forEach((t, k) => (t.track_id = trackName(k + 1)));
  const conflicts = findConflicts(
    built.map((t) => ({ track: t.track_id, issues: t.members.map((m) => g.issues[m]!.id) })),
    ev,
  );
  const tracks: Track[] = built.map(({ members: _m, ...t }) => t);
  const held = (kind: Hold['kind']) =>
    orderIssues(
      g,
      holds.flatMap((h, i) => (h?.kind === kind ? [i] : [])),
    ).map(heldItem);
  const openWork = g.open.filter((o, i) => o && !holds[i]).length;
  const actionable = free.filter(Boolean).length;
  return {
    tracks,
    conflicts,
    stranded: orderIssues(g, strandedIdx).map(laterItem),
    in_flight: held('in_flight'),
    not_work: held('not_work'),
    unknown_status: held('unknown_status'),
    actionable,
    waiting: openWork - actionable,
  };
}

/** Pairs of tracks whose issues name the same file, with the evidence on both sides. */
export function findConflicts(
  tracks: { track: string; issues: string[] }[],
  ev: FileEvidence,
): Conflict[] {
  // file → track → issue → evidence
  const byFile = new Map<string, Map<string, { issue: string; how: Evidence[] }[]>>();
  for (const t of tracks) {
    for (const id of t.issues) {
      for (const [file, how] of ev.get(id) ?? []) {
        let m = byFile.get(file);
        if (!m) byFile.set(file, (m = new Map()));
        const list = m.get(t.track);
        if (list) list.push({ issue: id, how });
        else m.set(t.track, [{ issue: id, how }]);
      }
    }
  }
  const pairs = new Map<string, Conflict>();
  for (const [file, perTrack] of [...byFile].sort((a, b) => cmp(a[0], b[0]))) {
    if (perTrack.size < 2) continue;
    const names = [...perTrack.keys()].sort(cmp);
    for (let i = 0; i < names.length; i++) {
      for (let j = i + 1; j < names.length; j++) {
        const a = names[i]!;
        const b = names[j]!;
        const key = `${a}\0${b}`;
        let c = pairs.get(key);
        if (!c) pairs.set(key, (c = { tracks: [a, b], files: [] }));
        c.files.push({
          file,
          evidence: [a, b].flatMap((t) => perTrack.get(t)!.map((e) => ({ track: t, ...e }))),
        });
      }
    }
  }
  return [...pairs.values()].sort(
    (x, y) => cmp(x.tracks[0], y.tracks[0]) || cmp(x.tracks[1], y.tracks[1]),
  );
}
