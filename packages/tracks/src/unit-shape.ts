/**
 * What holds a unit of the track plan together (an epic, a dependency chain, shared files, an
 * id family, a single issue), and the words of a track's reason built from it (tracks.ts).
 */
import type { Graph } from './graph.js';
import type { FileEvidence } from './evidence.js';

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

export function mostCommon(values: string[]): string | null {
  const counts = new Map<string, number>();
  let best: string | null = null;
  let bestN = 0;
  for (const v of values) {
    const c = (counts.get(v) ?? 0) + 1;
    counts.set(v, c);
    if (c > bestN || (c === bestN && best !== null && v < best)) {
      best = v;
      bestN = c;
    }
  }
  return best;
}

/** What holds a unit together: the material of its track's reason. */
export interface UnitShape {
  /** The unit's epic and how many open children it has. */
  epic?: { id: string; children: number };
  /** Open issues of the unit that wait on dependencies (a dependency chain when > 0). */
  waiting: number;
  /** Issues joined because they name the same files, and those files (most shared first). */
  shared?: { issues: string[]; files: string[] };
  /** The smallest id of a unit joined only by hierarchical ids (`bd-x` for `bd-x.1`). */
  family?: string;
  /** The id of a unit's only actionable issue. */
  single: string | null;
}

export function unitShape(
  g: Graph,
  members: number[],
  actionable: number[],
  fileJoined: Set<number>,
  ev: FileEvidence,
): UnitShape {
  const inUnit = new Set(members);
  const shape: UnitShape = {
    waiting: members.length - actionable.length,
    single: actionable.length === 1 ? g.issues[actionable[0]!]!.id : null,
  };
  const e = members.find((m) => g.children[m]!.some((c) => inUnit.has(c)));
  if (e !== undefined) {
    shape.epic = { id: g.issues[e]!.id, children: g.children[e]!.filter((c) => g.open[c]).length };
  }
  if (fileJoined.size) {
    const shared = new Map<string, number>();
    for (const m of fileJoined)
      for (const f of ev.get(g.issues[m]!.id)?.keys() ?? [])
        shared.set(f, (shared.get(f) ?? 0) + 1);
    const files = [...shared]
      .filter(([, c]) => c > 1)
      .sort((x, y) => y[1] - x[1] || cmp(x[0], y[0]))
      .map(([f]) => f);
    shape.shared = { issues: [...fileJoined].map((m) => g.issues[m]!.id).sort(cmp), files };
  }
  if (!shape.epic && !shape.shared && actionable.length > 1) {
    shape.family = members.map((m) => g.issues[m]!.id).sort((x, y) => x.length - y.length)[0];
  }
  return shape;
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;
const fileList = (files: string[]) =>
  `(${files.slice(0, 3).join(', ')}${files.length > 3 ? ', …' : ''})`;

/** The reason of a track made of one unit: every part of its shape. */
export function shapeText(u: UnitShape): string {
  const parts: string[] = [];
  if (u.epic) {
    parts.push(`epic ${u.epic.id} with ${plural(u.epic.children, 'open child', 'open children')}`);
  }
  if (u.waiting)
    parts.push(u.epic ? `${u.waiting} waiting` : `a dependency chain (${u.waiting} waiting)`);
  if (u.shared) {
    const who = u.shared.issues;
    parts.push(
      who.length <= 3
        ? `${who.join(who.length === 2 ? ' and ' : ', ')} share ${u.shared.files.slice(0, 3).join(', ')}${u.shared.files.length > 3 ? ', …' : ''}`
        : `${who.length} issues sharing files ${fileList(u.shared.files)}`,
    );
  }
  if (u.family) parts.push(`${u.family} and its sub-issues (hierarchical ids)`);
  if (!parts.length && u.single) parts.push(`independent item ${u.single}`);
  return parts.join(', ');
}

export type ShapeKind = 'epic' | 'chain' | 'files' | 'family' | 'single';

export const kindOf = (u: UnitShape): ShapeKind =>
  u.epic ? 'epic' : u.waiting ? 'chain' : u.shared ? 'files' : u.family ? 'family' : 'single';

/** Several units of one kind in one phrase: "8 dependency chains (up to 9 waiting)". */
export function kindText(kind: ShapeKind, us: UnitShape[]): string {
  if (us.length === 1 && kind !== 'single') return shapeText(us[0]!);
  const most = (f: (u: UnitShape) => number) => Math.max(...us.map(f));
  switch (kind) {
    case 'epic':
      return `${us.length} epics (up to ${most((u) => u.epic!.children)} open children each)`;
    case 'chain':
      return `${us.length} dependency chains (up to ${most((u) => u.waiting)} waiting)`;
    case 'files': {
      const files = mostFrequent(us.flatMap((u) => u.shared!.files));
      return `${us.length} groups of issues touching the same files ${fileList(files)}`;
    }
    case 'family':
      return `${us.length} issues with sub-issues (hierarchical ids)`;
    case 'single':
      return us.length === 1
        ? `independent item ${us[0]!.single}`
        : `${us.length} independent items`;
  }
}

function mostFrequent(values: string[]): string[] {
  const counts = new Map<string, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return [...counts].sort((x, y) => y[1] - x[1] || cmp(x[0], y[0])).map(([v]) => v);
}
