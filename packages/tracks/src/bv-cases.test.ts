/**
 * beads_viewer's plan tests (plan_test.go, plan_extended_test.go), ported as data: each case's
 * input and the facts its Go test asserts live in test/fixtures/bv-plan (see its README).
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '@wtpool/testkit';
import { bvExecutionPlan, decodeBvIssue, trackName, type BvPlanItem } from '@wtpool/tracks';

const DIR = path.join(PROJECT_ROOT, 'packages/tracks/test/fixtures/bv-plan');

interface ItemFacts {
  id?: string;
  title?: string;
  priority?: number;
  status?: string;
  unblocks?: string[];
  unblocks_count?: number;
}
interface Case {
  source: string;
  test: string;
  input?: string;
  facts: {
    total_actionable?: number;
    total_blocked?: number;
    tracks?: number;
    track_items?: Record<string, string[]>;
    first_item?: ItemFacts;
    items?: Record<string, ItemFacts>;
    summary?: { highest_impact?: string; unblocks_count?: number };
    track_id_nonempty?: boolean;
    track_names?: Record<string, string>;
  };
}

const cases: Case[] = readdirSync(DIR)
  .filter((f) => f.endsWith('.facts.json'))
  .sort()
  .map((f) => JSON.parse(readFileSync(path.join(DIR, f), 'utf8')) as Case);

function checkItem(item: BvPlanItem | undefined, f: ItemFacts): void {
  expect(item).toBeDefined();
  const { unblocks_count, ...rest } = f;
  expect(item).toMatchObject(rest);
  if (unblocks_count !== undefined) expect(item!.unblocks?.length ?? 0).toBe(unblocks_count);
}

describe('bv plan cases ported from beads_viewer (test/fixtures/bv-plan)', () => {
  it('holds every Go test of both files', () => {
    const bySource = (s: string) => cases.filter((c) => c.source.endsWith(s)).length;
    expect([bySource('/plan_test.go'), bySource('/plan_extended_test.go')]).toEqual([19, 4]);
  });

  it.each(cases.map((c) => [c.test, c] as const))('%s', (_name, c) => {
    const f = c.facts;
    if (f.track_names) {
      for (const [n, name] of Object.entries(f.track_names))
        expect(trackName(Number(n))).toBe(name);
    }
    if (!c.input) return;
    const lines = readFileSync(path.join(DIR, c.input), 'utf8').split('\n').filter(Boolean);
    // the Go tests hand issues to the analyzer directly: decoded, not validated by the loader
    const plan = bvExecutionPlan(lines.map((l) => decodeBvIssue(JSON.parse(l))));
    const tracks = plan.tracks ?? [];
    if (f.total_actionable !== undefined) expect(plan.total_actionable).toBe(f.total_actionable);
    if (f.total_blocked !== undefined) expect(plan.total_blocked).toBe(f.total_blocked);
    if (f.tracks !== undefined) expect(tracks).toHaveLength(f.tracks);
    for (const [k, ids] of Object.entries(f.track_items ?? {})) {
      expect(tracks[Number(k)]!.items.map((i) => i.id)).toEqual(ids);
    }
    if (f.first_item) checkItem(tracks[0]?.items[0], f.first_item);
    const all = tracks.flatMap((t) => t.items);
    for (const [id, facts] of Object.entries(f.items ?? {})) {
      checkItem(
        all.find((i) => i.id === id),
        facts,
      );
    }
    if (f.summary) expect(plan.summary).toMatchObject(f.summary);
    if (f.track_id_nonempty) expect(tracks[0]!.track_id).not.toBe('');
  });
});
