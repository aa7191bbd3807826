/**
 * The default mode hands out only real, free work, says what it knows about files, and reads
 * hostile text in linear time. Checked on the real beads files and on generated ones.
 */
import { appendFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { redact } from '@wtpool/core';
import { tempDir } from '@wtpool/testkit';
import {
  analysisText,
  analyze,
  buildGraph,
  conflictsText,
  gatherEvidence,
  indexRepoFiles,
  pathTokens,
  readIssueFile,
  readIssueLines,
  splitLines,
  trackPlan,
} from '@wtpool/tracks';
import { FIXTURES } from './fixtures.testutil.js';

const ISSUE_FILES = [
  'NVIDIA__skyhook__issues.jsonl',
  'ChrisEdwards__abacus__issues.jsonl',
  'Dicklesworthstone__repo_updater__issues.jsonl',
  'steveyegge__beads__385c0c031__issues.jsonl',
];

/** The raw records of a file, read without the analyzer. */
function raw(name: string): Map<string, Record<string, unknown>> {
  return new Map(
    readFileSync(path.join(FIXTURES, name), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .map((o) => [o.id as string, o]),
  );
}

const NOT_WORK = ['agent', 'molecule', 'wisp', 'rig', 'convoy', 'role', 'message', 'gate', 'event'];

describe('default mode on the real beads files', () => {
  it.each(ISSUE_FILES)(
    '%s: no non-work bead and no hooked, in-progress or assigned item in any track',
    async (name) => {
      const records = raw(name);
      const a = await analyze({ repo: null, file: path.join(FIXTURES, name) });
      for (const t of a.tracks) {
        for (const i of [...t.items]) {
          const o = records.get(i.id)!;
          expect([i.id, o.issue_type]).not.toEqual([i.id, expect.toBeOneOf(NOT_WORK)]);
          expect([i.id, o.ephemeral === true]).toEqual([i.id, false]);
          expect([i.id, o.status]).not.toEqual([i.id, expect.toBeOneOf(['hooked', 'in_progress'])]);
          expect([i.id, o.assignee ?? '']).toEqual([i.id, '']);
        }
      }
      // everything held back is listed, with its reason
      for (const h of [...a.in_flight, ...a.not_work]) expect(records.has(h.id)).toBe(true);
      expect(a.evidence.files).toBe(false);
      expect(analysisText(a)).toMatch(/^Evidence: no file evidence \(no git repository\)/m);
      expect(conflictsText(a.conflicts, a.evidence)).toMatch(
        /^Conflicts unknown: no file evidence/,
      );
      expect(analysisText(a)).not.toMatch(/No two tracks are expected to touch the same file/);
    },
  );

  it("beads' own file: agents, convoys, wisps and the message are not work; hooked and in-progress work is in flight", async () => {
    const name = 'steveyegge__beads__385c0c031__issues.jsonl';
    const records = raw(name);
    const a = await analyze({ repo: null, file: path.join(FIXTURES, name) });
    const open = [...records.values()].filter((o) => o.status !== 'closed');
    // every open agent / convoy / message bead and every open wisp is listed as not work
    const expectedNotWork = open
      .filter(
        (o) =>
          ['agent', 'convoy', 'message'].includes(o.issue_type as string) ||
          o.ephemeral === true ||
          o.status === 'pinned',
      )
      .map((o) => o.id as string)
      .sort();
    expect(a.not_work.map((h) => h.id).sort()).toEqual(expectedNotWork);
    // open work that someone has: hooked / in progress (not wisps), or assigned
    const expectedInFlight = open
      .filter((o) => !expectedNotWork.includes(o.id as string))
      .filter((o) => ['hooked', 'in_progress'].includes(o.status as string) || o.assignee)
      .map((o) => o.id as string)
      .sort();
    expect(a.in_flight.map((h) => h.id).sort()).toEqual(expectedInFlight);
    expect(expectedInFlight).toContain('bd-xmf');
    const bdXmf = a.in_flight.find((h) => h.id === 'bd-xmf')!;
    expect([bdXmf.status, bdXmf.assignee]).toEqual(['hooked', records.get('bd-xmf')!.assignee]);
    expect(analysisText(a)).toMatch(/^In flight \(\d+, never assigned\)/m);
    expect(analysisText(a)).toMatch(/bd-xmf {2}P\d task hooked \(beads\/polecats\/obsidian\)/);
  });

  it('tracks.nonWorkTypes is honoured: a type listed there is never assigned', async () => {
    const file = path.join(FIXTURES, 'ChrisEdwards__abacus__issues.jsonl');
    const all = await analyze({ repo: null, file });
    const features = all.tracks.flatMap((t) => t.items).filter((i) => i.type === 'feature');
    expect(features.length).toBeGreaterThan(0);
    const none = await analyze({ repo: null, file, nonWorkTypes: ['feature'] });
    expect(none.tracks.flatMap((t) => t.items).filter((i) => i.type === 'feature')).toEqual([]);
    expect(none.not_work.map((h) => h.id)).toEqual(
      expect.arrayContaining(features.map((b) => b.id)),
    );
  });
});

describe('file evidence: what is known', () => {
  const lines = (os: Record<string, unknown>[]) =>
    os.map((o) =>
      JSON.stringify({ title: 'T', status: 'open', priority: 2, issue_type: 'task', ...o }),
    );

  it('names which items share which files, and why each file is expected (--explain)', async () => {
    const dir = tempDir('wtpool-tracks-ev-');
    const file = path.join(dir, 'issues.jsonl');
    writeFileSync(
      file,
      lines([
        { id: 'x-1', description: 'touches src/db/store.ts' },
        { id: 'x-2', notes: 'Files:\n- store.ts' },
        { id: 'x-3', description: 'nothing named' },
      ]).join('\n'),
    );
    const r = await readIssueFile(file);
    const g = buildGraph(r.issues);
    const ev = gatherEvidence(r.issues, indexRepoFiles(['src/db/store.ts', 'README.md']), []);
    const plan = trackPlan(g, ev, { maxTracks: 5 });
    const t = plan.tracks.find((x) => x.items.some((i) => i.id === 'x-1'))!;
    expect(t.reason).toBe('x-1 and x-2 share src/db/store.ts');
    expect(t.shared_files).toEqual([{ file: 'src/db/store.ts', issues: ['x-1', 'x-2'] }]);
    expect(t.items.map((i) => [i.id, i.evidence])).toEqual([
      ['x-1', [{ file: 'src/db/store.ts', how: ['description'] }]],
      ['x-2', [{ file: 'src/db/store.ts', how: ['notes'] }]],
    ]);
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('conflicts say how far the evidence goes', () => {
  it('no claim without evidence, a qualified one with partial evidence, a plain one with full', () => {
    const ev = (files: boolean, without: number, note: string) => ({
      repo: files ? '/r' : null,
      files,
      items_without_files: without,
      note,
    });
    expect(conflictsText([], ev(false, 3, 'no file evidence (no git repository)'))).toBe(
      'Conflicts unknown: no file evidence (no git repository).',
    );
    expect(conflictsText([], ev(true, 2, 'file evidence for 9 of 11 track items'))).toBe(
      'No two tracks are expected to touch the same file, as far as the evidence goes: file evidence for 9 of 11 track items.',
    );
    expect(conflictsText([], ev(true, 0, 'file evidence for every track item'))).toBe(
      'No two tracks are expected to touch the same file.',
    );
  });
});

describe('hostile text', () => {
  const dir = tempDir('wtpool-tracks-big-');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('path tokens: one pass, paths and named files, long words skipped', () => {
    expect(pathTokens('see `./src/a.ts:12`, (docs/x.md). And README.md; v1.2.3 foo')).toEqual([
      'src/a.ts',
      'docs/x.md',
      'README.md',
    ]);
    expect(pathTokens(`${'a'.repeat(5000)} b/c.ts`)).toEqual(['b/c.ts']);
  });

  it('a 1 MB description and a 1 MB title: analysis and its text output take linear time (≤ 20× reading and parsing the file)', async () => {
    const file = path.join(dir, 'big.jsonl');
    const MB = 1 << 20;
    // The worst shapes for the old pattern: long runs of path characters without a slash.
    const description = `${'abcdefgh'.repeat(MB / 16)} ${'src/x.ts readme.md '.repeat(MB / 40)}`;
    writeFileSync(
      file,
      [
        JSON.stringify({
          id: 'big-1',
          title: 'T',
          description,
          status: 'open',
          issue_type: 'task',
        }),
        JSON.stringify({
          id: 'big-2',
          title: 'Zz9.'.repeat(MB / 4),
          status: 'open',
          issue_type: 'task',
        }),
      ].join('\n'),
    );
    const repo = indexRepoFiles(['src/x.ts', 'docs/readme.md']);
    const median = async (f: () => unknown) => {
      const runs: number[] = [];
      for (let k = 0; k < 3; k++) {
        const t = process.hrtime.bigint();
        await f();
        runs.push(Number(process.hrtime.bigint() - t));
      }
      return runs.sort((a, b) => a - b)[1]!;
    };
    const base = await median(() => {
      for (const l of readFileSync(file, 'utf8').split('\n')) JSON.parse(l);
    });
    let text = '';
    const work = await median(async () => {
      const r = await readIssueFile(file);
      const g = buildGraph(r.issues);
      const plan = trackPlan(g, gatherEvidence(r.issues, repo, []));
      text = redact(plan.tracks.map((t) => t.items.map((i) => i.title).join('\n')).join('\n'));
      expect(plan.tracks.flatMap((t) => t.items.flatMap((i) => i.files)).sort()).toEqual([
        'docs/readme.md',
        'src/x.ts',
      ]);
    });
    expect(text.length).toBeGreaterThan(MB);
    expect(work).toBeLessThan(20 * base);
  });

  it('a 50 MB line is reported as too long and skipped; alone, the file is refused with a clear error', async () => {
    const file = path.join(dir, 'huge.jsonl');
    // {"id":"h-1","title":"T","status":"open","description":"xxx…(50 MiB)"}, written 1 MiB at a time
    const head = Buffer.from('{"id":"h-1","title":"T","status":"open","description":"');
    const mib = Buffer.alloc(1 << 20, 'x');
    const tail = Buffer.from('"}\n');
    const pieces = function* () {
      yield head;
      for (let k = 0; k < 50; k++) yield mib;
      yield tail;
    };
    writeFileSync(file, '');
    for (const p of pieces()) appendFileSync(file, p);
    appendFileSync(
      file,
      JSON.stringify({ id: 'ok-1', title: 'T', status: 'open', issue_type: 'task' }),
    );
    const a = await analyze({ repo: null, file });
    expect(a.tracks.flatMap((t) => t.items.map((i) => i.id))).toEqual(['ok-1']);
    expect(a.warnings.malformed).toEqual([
      { line: 1, message: 'line too long (50.0 MiB; the limit is 10 MiB)' },
    ]);
    // alone (streamed from memory): nothing to analyze, and the error says why
    const alone = async function* () {
      yield* pieces();
    };
    const e = await readIssueLines(splitLines(alone()), file).catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'ERR_NOT_BEADS', exitCode: 1 });
    expect((e as Error).message).toMatch(/line 1: line too long/);
  });
});
