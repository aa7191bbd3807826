/**
 * `--format bv`: bv's loader and model rules, read from beads_viewer's source (pkg/loader/loader.go,
 * pkg/model/types.go, pkg/analysis/graph.go, plan.go, cache.go, cmd/bv/main.go). The ported Go
 * plan tests are in bv-cases.test.ts.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  bvExecutionPlan,
  bvRobotPlan,
  parseGoTime,
  readIssueFile,
  readIssueLines,
  type BvIssue,
} from '@wtpool/tracks';
import { FIXTURES, bvCounts } from './fixtures.testutil.js';

const line = (o: Record<string, unknown>) =>
  JSON.stringify({ title: 'T', status: 'open', issue_type: 'task', ...o });
const dep = (target: string, type: string, o: Record<string, unknown> = {}) => ({
  depends_on_id: target,
  type,
  ...o,
});

async function bvIssues(lines: string[]): Promise<{ issues: BvIssue[]; skipped: number[] }> {
  const r = await readIssueLines(lines, 'f.jsonl', { bv: true });
  return { issues: r.bv!.issues, skipped: r.bv!.skipped.map((s) => s.line) };
}
const plan = async (lines: string[]) => bvExecutionPlan((await bvIssues(lines)).issues);
const trackIds = (p: { tracks: { items: { id: string }[] }[] | null }) =>
  (p.tracks ?? []).map((t) => t.items.map((i) => i.id));

describe("bv's loader: which lines it keeps", () => {
  it('skips an empty title, an unknown status, an empty issue_type, a wrong JSON type, a bad time, updated_at before created_at', async () => {
    const { issues, skipped } = await bvIssues([
      line({ id: 'k-1', status: ' Open ' }), // trimmed and lower-cased: kept
      line({ id: 's-1', title: '' }),
      line({ id: 's-2', status: 'weird_custom' }),
      line({ id: 's-3', issue_type: '' }),
      line({ id: 's-4', priority: '1' }),
      line({ id: 's-5', created_at: '2026-02-30T00:00:00Z' }),
      line({ id: 's-6', created_at: '2026-01-02T00:00:00Z', updated_at: '2026-01-01T00:00:00Z' }),
      line({ id: 'k-2', status: 'tombstone', issue_type: 'molecule' }), // kept: bv knows both
      '',
      '{not json',
      line({ id: 's-7', labels: [1] }),
      line({ id: 'k-3', issue_id: 5, parent: 7, Priority: 3 }), // not bv fields; keys fold case
    ]);
    expect(issues.map((i) => [i.id, i.status, i.priority])).toEqual([
      ['k-1', 'open', 0],
      ['k-2', 'tombstone', 0],
      ['k-3', 'open', 3],
    ]);
    expect(skipped).toEqual([2, 3, 4, 5, 6, 7, 10, 11]);
  });

  it("ignores a dependency's issue_id (the dependency belongs to its line's issue)", async () => {
    const p = await plan([
      line({ id: 'a', dependencies: [dep('b', 'blocks', { issue_id: 'someone-else' })] }),
      line({ id: 'b' }),
    ]);
    expect(p.total_actionable).toBe(1);
    expect(trackIds(p)).toEqual([['b']]);
  });

  it('a line of 10 MiB or more is skipped; the next line is read', async () => {
    const big = line({ id: 'big', description: 'x'.repeat(10 * 1024 * 1024) });
    const { issues, skipped } = await bvIssues([big, line({ id: 'small' })]);
    expect(issues.map((i) => i.id)).toEqual(['small']);
    expect(skipped).toEqual([1]);
  });
});

describe("bv's model", () => {
  it('only blocks and the empty legacy type block and group; parent-child, conditional-blocks, waits-for do neither', async () => {
    const p = await plan([
      line({ id: 'e' }),
      line({ id: 'c1', dependencies: [dep('e', 'parent-child')] }),
      line({ id: 'c2', dependencies: [dep('e', 'conditional-blocks')] }),
      line({ id: 'c3', dependencies: [dep('e', 'waits-for')] }),
      line({ id: 'c4', dependencies: [dep('e', '')] }),
      line({ id: 'c5', dependencies: [dep('e', 'blocks')] }),
    ]);
    expect(p.total_actionable).toBe(4);
    expect(p.total_blocked).toBe(2);
    expect(trackIds(p)).toEqual([['c1'], ['c2'], ['c3'], ['e']]);
    expect(p.tracks![3]!.items[0]!.unblocks).toEqual(['c4', 'c5']);
  });

  it('deferred and a future defer_until are actionable; only closed and tombstone are done', async () => {
    const p = await plan([
      line({ id: 'd1', status: 'deferred' }),
      line({ id: 'd2', defer_until: '2999-01-01T00:00:00Z' }),
      line({ id: 'h1', status: 'hooked' }),
      line({ id: 'x1', status: 'closed' }),
      line({ id: 'x2', status: 'tombstone' }),
    ]);
    expect(trackIds(p)).toEqual([['d1'], ['d2'], ['h1']]);
    expect(p.total_blocked).toBe(0);
  });

  it('a tombstone is a closed node that still joins a group: A → T ← B is one track', async () => {
    const p = await plan([
      line({ id: 'a', dependencies: [dep('t', 'blocks')] }),
      line({ id: 'b', dependencies: [dep('t', 'blocks')] }),
      line({ id: 't', status: 'tombstone' }),
    ]);
    expect(trackIds(p)).toEqual([['a', 'b']]);
    expect(p.tracks![0]!.reason).toBe('All issues in connected graph');
  });

  it('priority is kept as written (missing → 0, 5 stays 5) and orders the items', async () => {
    const p = await plan([
      line({ id: 'hub', status: 'closed' }),
      line({ id: 'p5', priority: 5, dependencies: [dep('hub', 'blocks')] }),
      line({ id: 'p-missing', dependencies: [dep('hub', 'blocks')] }),
      line({ id: 'p1', priority: 1, dependencies: [dep('hub', 'blocks')] }),
    ]);
    expect(p.tracks![0]!.items.map((i) => [i.id, i.priority])).toEqual([
      ['p-missing', 0],
      ['p1', 1],
      ['p5', 5],
    ]);
  });

  it('a repeated id: the last line is the issue; both lines count in the data hash', async () => {
    const lines = [line({ id: 'a', title: 'old' }), line({ id: 'a', title: 'new' })];
    const { issues } = await bvIssues(lines);
    expect(bvExecutionPlan(issues).tracks![0]!.items[0]!.title).toBe('new');
    expect(bvRobotPlan(issues, 0).data_hash).not.toBe(bvRobotPlan([issues[1]!], 0).data_hash);
  });
});

describe("bv's robot-plan envelope", () => {
  it('data_hash is sha256 over the fields ComputeDataHash writes, sorted by id (first 16 hex digits)', async () => {
    const { issues } = await bvIssues([
      line({
        id: 'b',
        title: 'Second',
        priority: 2,
        labels: ['z', 'a'],
        created_at: '2026-01-01T01:00:00.500+01:00',
        dependencies: [dep('a', 'blocks', { created_by: 'me' })],
      }),
      line({ id: 'a', title: 'First', assignee: 'emma', estimated_minutes: 30 }),
    ]);
    const z = '0001-01-01T00:00:00Z';
    const bytes = [
      // a: id, title, description, notes, design, acceptance, assignee, source_repo, external_ref
      'a\0First\0\0\0\0\0emma\0\0\0',
      // status, type, priority, estimate, created, updated, closed; no labels, deps, comments
      `open\0task\x000\x0030\0${z}\0${z}\0\0`,
      '\0\0\x01', // labels, dependencies (each closed by a 0 byte), then the separator
      'b\0Second\0\0\0\0\0\0\0\0',
      `open\0task\x002\0\x002026-01-01T00:00:00.5Z\0${z}\0\0`,
      'a\0z\0\0',
      `a\0blocks\0${z}\0me\0\0`,
      '\x01',
    ].join('');
    const expected = createHash('sha256').update(bytes, 'utf8').digest('hex').slice(0, 16);
    expect(bvRobotPlan(issues, 0).data_hash).toBe(expected);
    expect(bvRobotPlan([], 0).data_hash).toBe('empty');
  });

  it('times are Go RFC3339Nano in UTC', () => {
    expect(parseGoTime('2026-03-01T00:30:00-01:00').text).toBe('2026-03-01T01:30:00Z');
    expect(parseGoTime('2026-03-01T00:30:00.123456789123+00:00').text).toBe(
      '2026-03-01T00:30:00.123456789Z',
    );
    expect(parseGoTime('2026-03-01T00:30:00.100Z').text).toBe('2026-03-01T00:30:00.1Z');
  });

  it('generated_at, analysis_config, status, plan and usage_hints, in that order', async () => {
    const { issues } = await bvIssues([line({ id: 'a' })]);
    const doc = bvRobotPlan(issues, Date.UTC(2026, 11, 2, 17, 3, 43, 900));
    expect(Object.keys(doc)).toEqual([
      'generated_at',
      'data_hash',
      'analysis_config',
      'status',
      'plan',
      'usage_hints',
    ]);
    expect(doc.generated_at).toBe('2026-12-02T17:03:43Z');
    expect(doc.analysis_config).toMatchObject({
      ComputeBetweenness: false,
      BetweennessMode: 'skip',
      BetweennessTimeout: 2_000_000_000,
      PageRankSkipReason: 'not computed for --robot-plan',
      MaxCyclesToStore: 1000,
      ComputeKCore: true,
    });
    expect(doc.status.Cycles).toEqual({
      state: 'skipped',
      reason: 'not computed for --robot-plan',
    });
    expect(doc.usage_hints[0]).toMatch(/^jq '\.plan\.tracks \| length'/);
    const empty = bvRobotPlan([], 0);
    expect(empty.plan.tracks).toBeNull();
    expect(empty.status.KCore).toEqual({ state: 'computed' });
  });
});

describe('--format bv on real files', () => {
  // The expected counts are derived from bv's rules by a separate reading of the file
  // (fixtures.testutil.ts bvCounts), not copied from this code's output.
  it.each(['steveyegge__beads__385c0c031__issues.jsonl', 'ChrisEdwards__abacus__issues.jsonl'])(
    '%s: actionable, blocked, tracks and tracks of one item as bv counts them',
    async (name) => {
      const want = bvCounts(path.join(FIXTURES, name));
      expect(want.tracks).toBeGreaterThan(0);
      const r = await readIssueFile(path.join(FIXTURES, name), { bv: true });
      const p = bvExecutionPlan(r.bv!.issues);
      expect({
        actionable: p.total_actionable,
        blocked: p.total_blocked,
        tracks: p.tracks!.length,
        single: p.tracks!.filter((x) => x.items.length === 1).length,
      }).toEqual(want);
    },
  );
});
