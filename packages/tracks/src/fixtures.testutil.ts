/** Test helpers (not compiled into dist, not a test file). */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from '@wtpool/testkit';
import type { Issue } from '@wtpool/tracks';

export function issue(id: string, deps: [string, string][] = [], o: Partial<Issue> = {}): Issue {
  return {
    id,
    title: `title ${id}`,
    status: 'open',
    priority: 2,
    issueType: 'task',
    labels: [],
    deps: deps.map(([type, target]) => ({ type, target })),
    text: {},
    metadataFiles: [],
    ephemeral: false,
    assignee: '',
    wispType: '',
    ...o,
  };
}

// Real beads files, copied into the repository (their sources and licences: test/fixtures/beads/README.md).
export const FIXTURES: string = path.join(PROJECT_ROOT, 'packages/tracks/test/fixtures/beads');

const bead = (o: Record<string, unknown>) =>
  JSON.stringify({ title: `title ${String(o.id)}`, priority: 2, issue_type: 'task', ...o });

/**
 * A beads export with every status that must not be handed out, beside free work: custom
 * statuses of category wip and done, pinned, hooked, tombstone and an unknown status.
 * `free` is what a plan may assign: four independent items, so four tracks of one item.
 */
export const STATUS_FIXTURE = {
  lines: [
    bead({ id: 's-open', status: 'open', created_at: '2026-12-01T10:00:00Z', owner: 'ann' }),
    bead({ id: 's-wip', status: 'coding', status_category: 'wip' }),
    bead({ id: 's-done', status: 'shipped', status_category: 'done' }),
    // depends on a custom-done issue only: free, since done satisfies it
    bead({
      id: 's-after-done',
      status: 'open',
      dependencies: [{ issue_id: 's-after-done', depends_on_id: 's-done', type: 'blocks' }],
    }),
    bead({ id: 's-active', status: 'triaged', status_category: 'active' }),
    bead({ id: 's-open-2', status: 'open', priority: 1 }),
    bead({ id: 's-frozen', status: 'icebox', status_category: 'frozen' }),
    bead({ id: 's-pinned', status: 'pinned' }),
    bead({ id: 's-hooked', status: 'hooked', assignee: 'polecat/1' }),
    bead({ id: 's-tomb', status: 'tombstone', deleted_at: '2026-01-01T00:00:00Z' }),
    bead({ id: 's-unknown', status: 'needs_vibes' }),
    // blocked by the unknown one: an unknown status still blocks (it is not known to be done)
    bead({
      id: 's-after-unknown',
      status: 'open',
      dependencies: [{ issue_id: 's-after-unknown', depends_on_id: 's-unknown', type: 'blocks' }],
    }),
  ],
  free: ['s-active', 's-after-done', 's-open', 's-open-2'],
  inFlight: ['s-hooked', 's-wip'],
  notWork: ['s-pinned'],
  unknown: ['s-unknown'],
  /** Open, never started now: frozen, and waiting on the unknown one. */
  waiting: ['s-after-unknown', 's-frozen'],
};

/**
 * bv's plan counts for an issue file, derived here from the rules as docs/tracks.md states them
 * (not through the code under test): the last line of an id wins; done is `closed` or
 * `tombstone`; `blocks` and untyped dependencies on ids in the file block; actionable = not
 * done and no such dependency on an issue that is not done; tracks = the groups of issues
 * linked by those dependencies (either way, closed issues included) that hold actionable ones.
 * Only for files whose every line bv's loader keeps (the fixtures used with it).
 */
export function bvCounts(file: string): {
  actionable: number;
  blocked: number;
  tracks: number;
  single: number;
} {
  const byId = new Map<string, { status: string; deps: { to: string; type: string }[] }>();
  for (const l of readFileSync(file, 'utf8').split('\n')) {
    if (!l.trim()) continue;
    const o = JSON.parse(l) as {
      id: string;
      status: string;
      dependencies?: { depends_on_id: string; type?: string }[] | null;
    };
    byId.set(o.id, {
      status: o.status.trim().toLowerCase(),
      deps: (o.dependencies ?? []).map((d) => ({ to: d.depends_on_id, type: d.type ?? '' })),
    });
  }
  const done = (id: string) => ['closed', 'tombstone'].includes(byId.get(id)!.status);
  const links = (id: string) =>
    byId.get(id)!.deps.filter((d) => (d.type === '' || d.type === 'blocks') && byId.has(d.to));
  const neighbours = new Map<string, string[]>([...byId.keys()].map((id) => [id, []]));
  for (const id of byId.keys()) {
    for (const d of links(id)) {
      neighbours.get(id)!.push(d.to);
      neighbours.get(d.to)!.push(id);
    }
  }
  const actionable = new Set(
    [...byId.keys()].filter((id) => !done(id) && links(id).every((d) => done(d.to))),
  );
  const open = [...byId.keys()].filter((id) => !done(id)).length;
  // groups by breadth-first search; count the actionable members of each
  const seen = new Set<string>();
  const perGroup: number[] = [];
  for (const start of byId.keys()) {
    if (seen.has(start)) continue;
    seen.add(start);
    let n = 0;
    for (const queue = [start]; queue.length;) {
      const id = queue.pop()!;
      if (actionable.has(id)) n++;
      for (const next of neighbours.get(id)!) {
        if (!seen.has(next)) {
          seen.add(next);
          queue.push(next);
        }
      }
    }
    if (n) perGroup.push(n);
  }
  return {
    actionable: actionable.size,
    blocked: open - actionable.size,
    tracks: perGroup.length,
    single: perGroup.filter((n) => n === 1).length,
  };
}
