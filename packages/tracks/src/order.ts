/**
 * The order of issues inside a track (and of the held and stranded lists): blockers first,
 * epics after their children when that is free to choose, then priority and id; a dependency
 * cycle when nothing else can go (docs/tracks.md, "Order inside a track").
 */
import { components, type Graph } from './graph.js';

/** Min-heap of issue indexes by (priority, id), the `late` ones after all others. */
class IssueHeap {
  private a: number[] = [];
  constructor(
    private readonly g: Graph,
    private readonly late: Set<number> = new Set(),
  ) {}
  less(x: number, y: number): boolean {
    const lx = this.late.has(x);
    if (lx !== this.late.has(y)) return !lx;
    const ix = this.g.issues[x]!;
    const iy = this.g.issues[y]!;
    return ix.priority !== iy.priority ? ix.priority < iy.priority : ix.id < iy.id;
  }
  get length(): number {
    return this.a.length;
  }
  push(v: number): void {
    const a = this.a;
    a.push(v);
    for (let i = a.length - 1; i > 0;) {
      const p = (i - 1) >> 1;
      if (!this.less(a[i]!, a[p]!)) break;
      [a[i], a[p]] = [a[p]!, a[i]!];
      i = p;
    }
  }
  pop(): number {
    const a = this.a;
    const top = a[0]!;
    const last = a.pop()!;
    if (a.length) {
      a[0] = last;
      for (let i = 0; ;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && this.less(a[l]!, a[m]!)) m = l;
        if (r < a.length && this.less(a[r]!, a[m]!)) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m]!, a[i]!];
        i = m;
      }
    }
    return top;
  }
}

/**
 * Orders open issues: blockers before what they block (Kahn), then an epic after its open
 * children when that is free to choose (a blocker inside the epic's tree can force otherwise),
 * then priority and id. A dependency cycle goes only when nothing else can: the cycle whose
 * blockers outside it are all placed (the one with the most urgent issue first), its members
 * together by priority; then what waits on it follows, blockers first again.
 */
export function orderIssues(g: Graph, members: number[]): number[] {
  const inSet = new Set(members);
  const indeg = new Map<number, number>();
  // edges u → v meaning "u before v"
  const next = (u: number): number[] => g.dependents[u]!.filter((v) => inSet.has(v));
  const epics = new Set(members.filter((m) => g.children[m]!.some((c) => inSet.has(c))));
  for (const u of members) indeg.set(u, indeg.get(u) ?? 0);
  for (const u of members) for (const v of next(u)) indeg.set(v, (indeg.get(v) ?? 0) + 1);
  const heap = new IssueHeap(g, epics);
  for (const u of members) if (indeg.get(u) === 0) heap.push(u);
  const out: number[] = [];
  // Known once Kahn's order stalls on a cycle: the components of the issues left, how many
  // edges from outside each one are still to be placed, and the cycles free to go.
  let scc: ReturnType<typeof components> | undefined;
  const outside: number[] = [];
  const byPriority = new IssueHeap(g);
  const cycles = new IssueHeap(g);
  const first = (comp: number[]) => comp.reduce((x, y) => (byPriority.less(y, x) ? y : x));
  const place = (u: number) => {
    out.push(u);
    for (const v of next(u)) {
      const d = indeg.get(v)! - 1;
      indeg.set(v, d);
      const c = scc?.of.get(v);
      if (c === undefined || scc!.comps[c]!.length === 1) {
        if (d === 0) heap.push(v);
      } else if (c !== scc!.of.get(u) && --outside[c]! === 0) {
        cycles.push(first(scc!.comps[c]!));
      }
    }
  };
  for (;;) {
    while (heap.length) place(heap.pop());
    if (out.length === members.length) return out;
    if (!scc) {
      const done = new Set(out);
      const left = members.filter((m) => !done.has(m));
      const nextLeft = (u: number) => next(u).filter((v) => !done.has(v));
      scc = components(left, nextLeft);
      scc.comps.forEach((_, c) => (outside[c] = 0));
      for (const u of left) {
        for (const v of nextLeft(u)) {
          const c = scc.of.get(v)!;
          if (c !== scc.of.get(u)) outside[c]!++;
        }
      }
      // every issue left waits on another, so the components nothing waits on are cycles
      scc.comps.forEach((comp, c) => {
        if (comp.length > 1 && outside[c] === 0) cycles.push(first(comp));
      });
    }
    const comp = scc.comps[scc.of.get(cycles.pop())!]!;
    for (const m of comp) byPriority.push(m);
    while (byPriority.length) place(byPriority.pop());
  }
}
