/**
 * The dependency graph of a beads issue file, indexed by integers so every algorithm here is
 * linear (arrays, union-find, iterative DFS — no recursion that overflows on 50k issues).
 */
import type { Issue } from './reader.js';
import { statusMeaning } from './status.js';

/** Dependency types that hold work back (beads' `AffectsReadyWork`), besides parent-child. */
export const BLOCKING_TYPES: ReadonlySet<string> = new Set([
  'blocks',
  'conditional-blocks',
  'waits-for',
  // legacy files without typed dependencies: untyped edges block (as in beads and bv)
  '',
]);
export const PARENT_CHILD = 'parent-child';

/** Done: closed, tombstone, or a custom status of category `done`. */
export const isClosed = (is: Pick<Issue, 'status' | 'statusCategory'>): boolean =>
  statusMeaning(is.status, is.statusCategory) === 'done';

export interface Dangling {
  issue: string;
  target: string;
  type: string;
}

export interface Graph {
  issues: Issue[];
  index: Map<string, number>;
  open: boolean[];
  /** i → issues that block i (blocks, conditional-blocks, waits-for). */
  blockers: number[][];
  /** i → issues that i blocks. */
  dependents: number[][];
  /** i → its parents (parent-child: child → epic). */
  parents: number[][];
  children: number[][];
  /** Open and held back: an open blocker, or an open parent that is itself blocked. */
  blocked: boolean[];
  /** Open, not blocked, not deferred. */
  actionable: boolean[];
  dangling: Dangling[];
  /** Dependency cycles among open issues (each a list of ids). */
  cycles: string[][];
}

export function buildGraph(issues: Issue[], now = Date.now()): Graph {
  const n = issues.length;
  const index = new Map<string, number>();
  issues.forEach((is, i) => index.set(is.id, i));
  const open = issues.map((is) => !isClosed(is));
  const blockers: number[][] = Array.from({ length: n }, () => []);
  const dependents: number[][] = Array.from({ length: n }, () => []);
  const parents: number[][] = Array.from({ length: n }, () => []);
  const children: number[][] = Array.from({ length: n }, () => []);
  const dangling: Dangling[] = [];
  for (let i = 0; i < n; i++) {
    for (const d of issues[i]!.deps) {
      const t = index.get(d.target);
      if (t === undefined) {
        dangling.push({ issue: issues[i]!.id, target: d.target, type: d.type });
        continue;
      }
      if (t === i) continue;
      if (BLOCKING_TYPES.has(d.type)) {
        blockers[i]!.push(t);
        dependents[t]!.push(i);
      } else if (d.type === PARENT_CHILD) {
        parents[i]!.push(t);
        children[t]!.push(i);
      }
    }
  }
  // Directly blocked, then propagated from a blocked open parent to its open children (a
  // fixpoint by BFS: linear, and cycles in the parent chain cannot loop).
  const blocked = open.map((o, i) => o && blockers[i]!.some((b) => open[b]));
  const queue: number[] = [];
  for (let i = 0; i < n; i++) if (blocked[i]) queue.push(i);
  for (let q = 0; q < queue.length; q++) {
    for (const c of children[queue[q]!]!) {
      if (open[c] && !blocked[c]) {
        blocked[c] = true;
        queue.push(c);
      }
    }
  }
  const actionable = issues.map((is, i) => open[i]! && !blocked[i] && !isDeferred(is, now));
  const g: Graph = {
    issues,
    index,
    open,
    blockers,
    dependents,
    parents,
    children,
    blocked,
    actionable,
    dangling,
    cycles: [],
  };
  g.cycles = findCycles(g);
  return g;
}

/** Not to be started now: deferred (also by `defer_until`), blocked by hand, or frozen. */
function isDeferred(is: Issue, now: number): boolean {
  if (statusMeaning(is.status, is.statusCategory) === 'waiting') return true;
  if (!is.deferUntil) return false;
  const t = Date.parse(is.deferUntil);
  return Number.isFinite(t) && t > now;
}

/** Edges an open issue waits on: its blockers and its parents, open ones only. */
function waitsOn(g: Graph, i: number): number[] {
  return [...g.blockers[i]!, ...g.parents[i]!].filter((t) => g.open[t]);
}

/**
 * Strongly connected components of `nodes` over `next` (Tarjan, iterative: no recursion that
 * overflows on a long chain). Returns each node's component number and the components.
 */
export function components(
  nodes: number[],
  next: (u: number) => number[],
): { of: Map<number, number>; comps: number[][] } {
  const idx = new Map<number, number>();
  const low = new Map<number, number>();
  const onStack = new Set<number>();
  const stack: number[] = [];
  const of = new Map<number, number>();
  const comps: number[][] = [];
  let counter = 0;
  for (const root of nodes) {
    if (idx.has(root)) continue;
    const calls: [number, number[], number][] = [];
    const enter = (v: number) => {
      idx.set(v, counter);
      low.set(v, counter++);
      stack.push(v);
      onStack.add(v);
      calls.push([v, next(v), 0]);
    };
    enter(root);
    while (calls.length) {
      const frame = calls[calls.length - 1]!;
      const [v, succ] = frame;
      if (frame[2] < succ.length) {
        const w = succ[frame[2]++]!;
        if (!idx.has(w)) enter(w);
        else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
        continue;
      }
      calls.pop();
      if (calls.length) {
        const u = calls[calls.length - 1]![0];
        low.set(u, Math.min(low.get(u)!, low.get(v)!));
      }
      if (low.get(v) === idx.get(v)) {
        const comp: number[] = [];
        let w: number;
        do {
          w = stack.pop()!;
          onStack.delete(w);
          of.set(w, comps.length);
          comp.push(w);
        } while (w !== v);
        comps.push(comp);
      }
    }
  }
  return { of, comps };
}

/** Strongly connected components with a cycle, among open issues: their ids, sorted. */
export function findCycles(g: Graph): string[][] {
  const open = g.issues.map((_, i) => i).filter((i) => g.open[i]);
  return components(open, (v) => waitsOn(g, v))
    .comps.filter((c) => c.length > 1)
    .map((c) => c.map((i) => g.issues[i]!.id).sort())
    .sort((a, b) => (a[0]! < b[0]! ? -1 : 1));
}

/**
 * What finishing issue `i` would make actionable: its direct dependents (blocks-like edges)
 * whose other blockers are closed and whose parent chain is not blocked (bv's definition).
 */
export function unblocks(g: Graph, i: number): string[] {
  const out: string[] = [];
  if (!g.open[i]) return out;
  for (const d of g.dependents[i]!) {
    if (!g.open[d] || g.actionable[d]) continue;
    if (g.blockers[d]!.some((b) => b !== i && g.open[b])) continue;
    if (parentChainBlocked(g, d, i)) continue;
    out.push(g.issues[d]!.id);
  }
  return [...new Set(out)].sort();
}

/** Is some open ancestor of `d` blocked by anything other than `done`? Iterative, cycle-safe. */
function parentChainBlocked(g: Graph, d: number, done: number): boolean {
  const seen = new Set<number>([d]);
  const todo = g.parents[d]!.filter((p) => g.open[p] && p !== done);
  while (todo.length) {
    const p = todo.pop()!;
    if (seen.has(p)) continue;
    seen.add(p);
    if (g.blockers[p]!.some((b) => b !== done && g.open[b])) return true;
    for (const q of g.parents[p]!) if (g.open[q] && q !== done) todo.push(q);
  }
  return false;
}

/** Union-find over 0..n-1 with path halving and union by size. */
export class UnionFind {
  readonly parent: Int32Array;
  readonly size: Int32Array;
  constructor(n: number) {
    this.parent = new Int32Array(n);
    this.size = new Int32Array(n).fill(1);
    for (let i = 0; i < n; i++) this.parent[i] = i;
  }
  find(x: number): number {
    const p = this.parent;
    while (p[x] !== x) {
      p[x] = p[p[x]!]!;
      x = p[x]!;
    }
    return x;
  }
  union(a: number, b: number): number {
    let ra = this.find(a);
    let rb = this.find(b);
    if (ra === rb) return ra;
    if (this.size[ra]! < this.size[rb]!) [ra, rb] = [rb, ra];
    this.parent[rb] = ra;
    this.size[ra]! += this.size[rb]!;
    return ra;
  }
}
