import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir } from '@wtpool/testkit';
import { FIXTURES } from './fixtures.testutil.js';
import { buildGraph, findIssueFile, readIssueFile, readIssueLines } from '@wtpool/tracks';

const fx = (name: string) => path.join(FIXTURES, name);

const line = (o: Record<string, unknown>) =>
  JSON.stringify({ title: 't', status: 'open', priority: 2, issue_type: 'task', ...o });

describe('reading real beads files', () => {
  it.each([
    ['NVIDIA__skyhook__issues.jsonl', 7, 0, 1],
    ['ChrisEdwards__abacus__issues.jsonl', 463, 10, 11],
    ['Dicklesworthstone__repo_updater__issues.jsonl', 525, 0, 0],
    ['steveyegge__beads__385c0c031__issues.jsonl', 704, 0, 63],
  ])(
    '%s: issues, tombstones and actionable counts',
    async (name, issues, tombstones, actionable) => {
      const r = await readIssueFile(fx(name));
      expect(r.issues).toHaveLength(issues);
      expect(r.tombstones).toBe(tombstones);
      expect(r.malformed).toEqual([]);
      const g = buildGraph(r.issues);
      expect(g.actionable.filter(Boolean)).toHaveLength(actionable);
    },
  );

  it("beads' own file: 30 dangling targets are reported, the Dolt `parent` field is an edge", async () => {
    const r = await readIssueFile(fx('steveyegge__beads__385c0c031__issues.jsonl'));
    const g = buildGraph(r.issues);
    expect(new Set(g.dangling.map((d) => `${d.issue}>${d.target}`)).size).toBe(30);
    expect(g.cycles).toEqual([]);
  });

  it.each([
    [
      'ChrisEdwards__abacus__deletions.jsonl',
      /not a beads issue file: it holds a deletions manifest/,
    ],
    [
      'Dicklesworthstone__repo_updater__beads.jsonl',
      /not a beads issue file: it holds a different tracker schema/,
    ],
  ])('%s is rejected with a clear message', async (name, message) => {
    const e = await readIssueFile(fx(name)).catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'ERR_NOT_BEADS', exitCode: 1 });
    expect((e as Error).message).toMatch(message);
  });
});

describe('reading lines', () => {
  const lines = [
    line({ id: 'a-1', status: 'weird_custom', issue_type: 'molecule', extra: { x: 1 } }),
    '{not json',
    '',
    line({ id: 'a-2', status: 'tombstone' }),
    '[1,2]',
    line({ id: 'a-3', dependencies: [{ issue_id: 'a-3', depends_on_id: 'a-1', type: 'blocks' }] }),
    JSON.stringify({ title: 'no id' }),
  ];

  it('keeps unknown statuses and types, skips tombstones, reports malformed lines by number', async () => {
    const r = await readIssueLines(lines, 'x.jsonl');
    expect(r.issues.map((i) => [i.id, i.status, i.issueType])).toEqual([
      ['a-1', 'weird_custom', 'molecule'],
      ['a-3', 'open', 'task'],
    ]);
    expect(r.tombstones).toBe(1);
    expect(r.malformed.map((m) => m.line)).toEqual([2, 5, 7]);
    expect(r.malformed[0]!.message).toMatch(/not JSON/);
  });

  it('--strict makes the first malformed line fatal, naming it', async () => {
    await expect(readIssueLines(lines, 'x.jsonl', { strict: true })).rejects.toThrow(
      /x\.jsonl:2: not JSON/,
    );
  });

  it('a later line with the same id replaces the earlier one and is reported', async () => {
    const r = await readIssueLines(
      [line({ id: 'a-1', title: 'old' }), line({ id: 'a-1', title: 'new' })],
      'f',
    );
    expect(r.issues.map((i) => i.title)).toEqual(['new']);
    expect(r.malformed[0]).toMatchObject({ line: 2 });
  });
});

describe('finding the issue file', () => {
  const dir = tempDir('wtpool-tracks-find-');
  afterAll(() => import('node:fs').then((fs) => fs.rmSync(dir, { recursive: true, force: true })));
  it('metadata.json jsonl_export first, then issues.jsonl, then beads.jsonl', () => {
    const b = path.join(dir, '.beads');
    mkdirSync(b);
    // one line naming the export command; tracks never runs bd itself
    expect(() => findIssueFile(b)).toThrow(
      /^no beads export in .*\.beads \(issues\.jsonl, beads\.jsonl\): write one with `bd export -o \.beads\/issues\.jsonl`[^\n]*$/,
    );
    writeFileSync(path.join(b, 'beads.jsonl'), '');
    expect(findIssueFile(b)).toBe(path.join(b, 'beads.jsonl'));
    writeFileSync(path.join(b, 'issues.jsonl'), '');
    expect(findIssueFile(b)).toBe(path.join(b, 'issues.jsonl'));
    writeFileSync(path.join(b, 'export.jsonl'), '');
    writeFileSync(path.join(b, 'metadata.json'), JSON.stringify({ jsonl_export: 'export.jsonl' }));
    expect(findIssueFile(b)).toBe(path.join(b, 'export.jsonl'));
  });
});
