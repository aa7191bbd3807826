import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  buildGraph,
  trackPlan,
  type Evidence,
  type FileEvidence,
  type Graph,
  type Issue,
} from '@wtpool/tracks';
import { issue } from './fixtures.testutil.js';

const BLOCKING = ['blocks', 'parent-child', 'conditional-blocks', 'waits-for'];
const OTHER = ['related', 'discovered-from'];

/** A random issue graph with random file evidence. */
const graphs = fc
  .record({
    n: fc.integer({ min: 1, max: 60 }),
    edges: fc.array(
      fc.record({
        from: fc.nat(),
        to: fc.nat(),
        type: fc.constantFrom(...BLOCKING, ...BLOCKING, ...OTHER),
      }),
      { maxLength: 90 },
    ),
    closed: fc.array(fc.boolean(), { maxLength: 60 }),
    priority: fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 60 }),
    files: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 14 })), { maxLength: 80 }),
    maxTracks: fc.integer({ min: 1, max: 12 }),
    hotFile: fc.integer({ min: 2, max: 8 }),
  })
  .map(({ n, edges, closed, priority, files, maxTracks, hotFile }) => {
    const issues: Issue[] = Array.from({ length: n }, (_, i) =>
      issue(`t-${i}`, [], {
        status: closed[i] ? 'closed' : 'open',
        priority: priority[i] ?? 2,
      }),
    );
    for (const e of edges) issues[e.from % n]!.deps.push({ target: `t-${e.to % n}`, type: e.type });
    const ev: FileEvidence = new Map();
    for (const [i, f] of files) {
      const id = `t-${i % n}`;
      if (!ev.has(id)) ev.set(id, new Map<string, Evidence[]>());
      ev.get(id)!.set(`src/f${f}.ts`, [{ kind: 'metadata' }]);
    }
    return { issues, ev, maxTracks, hotFile };
  });

/** Connected through open issues by blocking or parent-child edges, either direction. */
function openComponents(g: Graph): number[] {
  const comp = new Array<number>(g.issues.length).fill(-1);
  let c = 0;
  for (let s = 0; s < g.issues.length; s++) {
    if (!g.open[s] || comp[s] !== -1) continue;
    const stack = [s];
    comp[s] = c;
    while (stack.length) {
      const v = stack.pop()!;
      for (const w of [
        ...g.blockers[v]!,
        ...g.dependents[v]!,
        ...g.parents[v]!,
        ...g.children[v]!,
      ]) {
        if (g.open[w] && comp[w] === -1) {
          comp[w] = c;
          stack.push(w);
        }
      }
    }
    c++;
  }
  return comp;
}

describe('default tracks: properties on generated graphs', () => {
  it('every actionable issue is in exactly one track; no blocking path joins two tracks; shared files are together or a conflict', () => {
    fc.assert(
      fc.property(graphs, ({ issues, ev, maxTracks, hotFile }) => {
        const g = buildGraph(issues);
        const plan = trackPlan(g, ev, { maxTracks, hotFile });
        const trackOf = new Map<string, string>();
        for (const t of plan.tracks) {
          for (const i of t.items) {
            expect(trackOf.has(i.id)).toBe(false);
            trackOf.set(i.id, t.track_id);
          }
        }
        const actionable = issues.filter((_, i) => g.actionable[i]).map((i) => i.id);
        expect([...trackOf.keys()].sort()).toEqual(actionable.sort());
        expect(plan.tracks.length).toBeLessThanOrEqual(maxTracks);
        // independence: issues of two tracks (items and later ones) are never connected
        const comp = openComponents(g);
        const compTrack = new Map<number, string>();
        for (const t of plan.tracks) {
          for (const id of [...t.items.map((i) => i.id), ...t.later.map((l) => l.id)]) {
            const c = comp[g.index.get(id)!]!;
            expect(compTrack.get(c) ?? t.track_id).toBe(t.track_id);
            compTrack.set(c, t.track_id);
          }
        }
        // files: two actionable issues naming one file share a track or a listed conflict
        const conflictFiles = new Set(
          plan.conflicts.flatMap((c) =>
            c.files.map((f) => `${c.tracks[0]}|${c.tracks[1]}|${f.file}`),
          ),
        );
        for (const a of actionable) {
          for (const b of actionable) {
            if (a >= b) continue;
            for (const f of ev.get(a)?.keys() ?? []) {
              if (!ev.get(b)?.has(f)) continue;
              const [x, y] = [trackOf.get(a)!, trackOf.get(b)!].sort();
              if (x !== y) expect(conflictFiles.has(`${x}|${y}|${f}`)).toBe(true);
            }
          }
        }
        // inside a track (and among the stranded), a blocker never comes after what it blocks,
        // unless both are in one cycle: what waits on a cycle follows all of it
        const cycleOf = new Map(g.cycles.flatMap((c, k) => c.map((id) => [id, k] as const)));
        for (const list of [...plan.tracks.map((t) => [...t.items, ...t.later]), plan.stranded]) {
          const pos = new Map(list.map((it, k) => [it.id, k]));
          for (const [id, k] of pos) {
            for (const b of g.blockers[g.index.get(id)!]!) {
              const bid = g.issues[b]!.id;
              const pb = pos.get(bid);
              if (pb === undefined) continue;
              if (cycleOf.has(id) && cycleOf.get(id) === cycleOf.get(bid)) continue;
              expect(pb).toBeLessThan(k);
            }
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it('what waits on a cycle follows it blockers first (the property counterexample, seed 1611199778)', () => {
    // t-0 waits on t-10 and t-8, t-8 on t-0 (a cycle), t-6 on t-0, t-9 on t-6. The cycle's
    // issues were dumped by priority together with what waits on them: t-9 (P2) before t-6 (P3).
    const p = (i: number) => (i <= 5 ? 0 : i === 6 ? 3 : 2);
    const deps: Record<number, [string, string][]> = {
      0: [
        ['blocks', 't-10'],
        ['blocks', 't-8'],
      ],
      6: [['blocks', 't-0']],
      8: [['blocks', 't-0']],
      9: [['blocks', 't-6']],
    };
    const g = buildGraph(
      Array.from({ length: 12 }, (_, i) => issue(`t-${i}`, deps[i] ?? [], { priority: p(i) })),
    );
    expect(g.cycles).toEqual([['t-0', 't-8']]);
    const [t, ...rest] = trackPlan(g, new Map(), { maxTracks: 1, hotFile: 2 }).tracks;
    expect(rest).toHaveLength(0);
    expect(t!.items.map((i) => i.id)).toEqual([
      ...['t-1', 't-2', 't-3', 't-4', 't-5'],
      ...['t-10', 't-11', 't-7'],
    ]);
    expect(t!.later.map((l) => [l.id, l.waits_on])).toEqual([
      ['t-0', ['t-10', 't-8']],
      ['t-8', ['t-0']],
      ['t-6', ['t-0']],
      ['t-9', ['t-6']],
    ]);
    // Packing has no part in it: the unit alone in its track is ordered the same.
    const alone = trackPlan(g, new Map(), { maxTracks: 10 }).tracks.find(
      (x) => x.items[0]!.id === 't-10',
    )!;
    expect(alone.later.map((l) => l.id)).toEqual(['t-0', 't-8', 't-6', 't-9']);
  });

  it('a cycle is ordered when nothing else is free, after the cycles and issues it waits on', () => {
    // a ⇄ b; c ⇄ d, and c waits on b; e waits on d. No issue of theirs is free: all stranded.
    const g = buildGraph([
      issue('a', [['blocks', 'b']], { priority: 3 }),
      issue('b', [['blocks', 'a']], { priority: 4 }),
      issue(
        'c',
        [
          ['blocks', 'd'],
          ['blocks', 'b'],
        ],
        { priority: 0 },
      ),
      issue('d', [['blocks', 'c']], { priority: 1 }),
      issue('e', [['blocks', 'd']], { priority: 0 }),
    ]);
    expect(g.cycles).toEqual([
      ['a', 'b'],
      ['c', 'd'],
    ]);
    const plan = trackPlan(g, new Map());
    expect(plan.tracks).toEqual([]);
    expect(plan.stranded.map((s) => s.id)).toEqual(['a', 'b', 'c', 'd', 'e']);
  });
});

describe('default tracks: grouping', () => {
  const files = (m: Record<string, string[]>): FileEvidence =>
    new Map(
      Object.entries(m).map(([id, fs]) => [
        id,
        new Map(fs.map((f) => [f, [{ kind: 'metadata' } as Evidence]])),
      ]),
    );

  it("keeps an epic's children together, ordered children first, then by priority", () => {
    const g = buildGraph([
      issue('e', [], { issueType: 'epic', priority: 1 }),
      issue('e.1', [['parent-child', 'e']], { priority: 3 }),
      issue('e.2', [['parent-child', 'e']], { priority: 0 }),
      issue('x'),
    ]);
    const plan = trackPlan(g, new Map(), { maxTracks: 10 });
    expect(plan.tracks.map((t) => [t.items.map((i) => i.id), t.priority, t.size])).toEqual([
      [['e.2', 'e.1', 'e'], 0, 3],
      [['x'], 2, 1],
    ]);
    expect(plan.tracks[0]!.reason).toMatch(/epic e with 2 open children/);
  });

  it('joins issues naming the same file; a hot file is a conflict instead', () => {
    const g = buildGraph(['a', 'b', 'c', 'd', 'e', 'f'].map((id) => issue(id)));
    const ev = files({
      a: ['src/x.ts', 'README.md'],
      b: ['src/x.ts', 'README.md'],
      c: ['README.md'],
      d: ['README.md'],
      e: [],
      f: [],
    });
    const plan = trackPlan(g, ev, { maxTracks: 10, hotFile: 3 });
    const ab = plan.tracks.find((t) => t.items.some((i) => i.id === 'a'))!;
    expect(ab.items.map((i) => i.id)).toEqual(['a', 'b']);
    expect(ab.reason).toBe('a and b share README.md, src/x.ts');
    expect(ab.shared_files).toEqual([
      { file: 'README.md', issues: ['a', 'b'] },
      { file: 'src/x.ts', issues: ['a', 'b'] },
    ]);
    expect(plan.tracks).toHaveLength(5);
    const readme = plan.conflicts.filter((c) => c.files.some((f) => f.file === 'README.md'));
    expect(readme).toHaveLength(3); // {a,b} with c, with d, and c with d
    expect(readme[0]!.files[0]!.evidence.map((e) => e.issue).sort()).toEqual(
      expect.arrayContaining(['a']),
    );
  });

  it('packs many independent items into at most maxTracks tracks, by kind', () => {
    const issues = [
      ...Array.from({ length: 6 }, (_, i) => issue(`ag-${i}`, [], { issueType: 'decision' })),
      ...Array.from({ length: 6 }, (_, i) => issue(`bd-${i}`, [], { priority: 1 })),
    ];
    const plan = trackPlan(buildGraph(issues), new Map(), { maxTracks: 2 });
    expect(plan.tracks.map((t) => [t.reason, t.items.map((i) => i.id.split('-')[0])])).toEqual([
      ['prefix bd: 6 independent items', Array(6).fill('bd')],
      ['type decision: 6 independent items', Array(6).fill('ag')],
    ]);
  });

  it('a track of many units says so once per shape, not once per unit', () => {
    // Three chains (1, 3 and 2 issues waiting), two independent items, one epic with two children.
    const chain = (head: string, waiting: number) =>
      Array.from({ length: waiting + 1 }, (_, k) =>
        issue(`x-${head}${k}`, k ? [['blocks', `x-${head}${k - 1}`]] : []),
      );
    const g = buildGraph([
      ...chain('a', 1),
      ...chain('b', 3),
      ...chain('c', 2),
      issue('x-s1'),
      issue('x-s2'),
      issue('x-e', [], { issueType: 'epic' }),
      issue('x-e1', [['parent-child', 'x-e']]),
      issue('x-e2', [['parent-child', 'x-e']]),
    ]);
    const [t, ...rest] = trackPlan(g, new Map(), { maxTracks: 1 }).tracks;
    expect(rest).toHaveLength(0);
    expect(t!.reason).toBe(
      'prefix x: epic x-e with 2 open children; 3 dependency chains (up to 3 waiting); 2 independent items',
    );
    // Alone in its track, a chain is described by itself.
    const [one] = trackPlan(buildGraph(chain('d', 2)), new Map()).tracks;
    expect(one!.reason).toBe('a dependency chain (2 waiting)');
  });

  it('blocked work follows its blocker in the same track', () => {
    const g = buildGraph([
      issue('a'),
      issue('b', [['blocks', 'a']]),
      issue('c', [['blocks', 'b']]),
    ]);
    const [t] = trackPlan(g, new Map()).tracks;
    expect(t!.items.map((i) => i.id)).toEqual(['a']);
    expect(t!.later.map((l) => [l.id, l.waits_on])).toEqual([
      ['b', ['a']],
      ['c', ['b']],
    ]);
  });
});
