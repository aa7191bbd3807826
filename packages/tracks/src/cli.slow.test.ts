import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT, makeTempRepo, runCli, type TempRepo } from '@wtpool/testkit';
import { FIXTURES, bvCounts } from './fixtures.testutil.js';

const BIN = path.join(PROJECT_ROOT, 'packages/tracks/bin/tracks.js');
const issueLine = (o: Record<string, unknown>) =>
  JSON.stringify({ title: 'T', status: 'open', priority: 2, issue_type: 'task', ...o });

describe('tracks CLI (built bin, real git repo)', () => {
  let repo: TempRepo;
  beforeAll(async () => {
    repo = await makeTempRepo({
      files: { 'src/db/store.ts': 'x', 'src/api/http.ts': 'y', 'README.md': 'r' },
    });
    await repo.commit(
      {
        '.beads/issues.jsonl': [
          issueLine({ id: 'app-1', description: 'Refactor `src/db/store.ts` for pooling' }),
          issueLine({ id: 'app-2', notes: 'Files:\n- store.ts\n- src/nope.ts' }),
          issueLine({ id: 'app-3' }),
          issueLine({
            id: 'app-4',
            dependencies: [{ issue_id: 'app-4', depends_on_id: 'app-3', type: 'blocks' }],
          }),
          'garbage',
        ].join('\n'),
      },
      'add issues',
    );
    await repo.commit({ 'src/api/http.ts': 'changed' }, 'app-3: first cut of the api');
  });
  afterAll(() => repo.cleanup());

  it('analyze --json: file evidence from text and commits, malformed line warned, tracks joined by file', async () => {
    const r = await runCli(BIN, ['analyze', '--json', '--hot-file', '2'], { cwd: repo.dir });
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/1 malformed line\(s\) skipped: line 5/);
    const a = r.json<{
      tracks: { items: { id: string; files: string[] }[]; later: { id: string }[] }[];
    }>();
    const byItem = Object.fromEntries(a.tracks.flatMap((t) => t.items.map((i) => [i.id, i])));
    expect(byItem['app-1']!.files).toEqual(['src/db/store.ts']);
    expect(byItem['app-2']!.files).toEqual(['src/db/store.ts']); // unique basename, nonexistent path ignored
    expect(byItem['app-3']!.files).toEqual(['src/api/http.ts']); // from the commit naming it
    expect(a.tracks).toHaveLength(2);
    expect(
      a.tracks.find((t) => t.items.some((i) => i.id === 'app-3'))!.later.map((l) => l.id),
    ).toEqual(['app-4']);
  });

  it('conflicts --json: issues joined by their shared file leave no conflict; --strict fails on the malformed line', async () => {
    const r = await runCli(BIN, ['conflicts', '--json', '--max-tracks', '3'], { cwd: repo.dir });
    expect(r.code).toBe(0);
    expect(r.json<{ conflicts: unknown[] }>().conflicts).toEqual([]);
    // with evidence for every item, the claim is made
    const text = await runCli(BIN, ['conflicts', '--max-tracks', '3'], { cwd: repo.dir });
    expect(text.stdout.trim()).toBe('No two tracks are expected to touch the same file.');
    const strict = await runCli(BIN, ['analyze', '--strict'], { cwd: repo.dir });
    expect(strict.code).toBe(1);
    expect(strict.stderr).toMatch(/issues\.jsonl:5: not JSON/);
  });

  it('every fixture: issue files analyzed, non-issue files rejected, nothing crashes', async () => {
    const cases: [string, number][] = [
      ['NVIDIA__skyhook__issues.jsonl', 0],
      ['ChrisEdwards__abacus__issues.jsonl', 0],
      ['ChrisEdwards__abacus__deletions.jsonl', 1],
      ['Dicklesworthstone__repo_updater__issues.jsonl', 0],
      ['Dicklesworthstone__repo_updater__beads.jsonl', 1],
      ['steveyegge__beads__385c0c031__issues.jsonl', 0],
    ];
    for (const [name, code] of cases) {
      for (const format of ['tracks', 'bv']) {
        const r = await runCli(
          BIN,
          ['analyze', '--json', '--format', format, '--file', path.join(FIXTURES, name)],
          { cwd: repo.dir },
        );
        expect([name, format, r.code]).toEqual([name, format, code]);
        const doc = r.json<Record<string, { code?: string; message?: string }>>();
        if (code) expect(doc.error!.message).toMatch(/is not a beads issue file/);
        else expect(doc).toHaveProperty(format === 'bv' ? 'plan.tracks' : 'tracks');
      }
    }
    const bv = await runCli(
      BIN,
      [
        'analyze',
        '--json',
        '--format',
        'bv',
        '--file',
        path.join(FIXTURES, 'steveyegge__beads__385c0c031__issues.jsonl'),
      ],
      { cwd: repo.dir },
    );
    const doc = bv.json<{
      generated_at: string;
      data_hash: string;
      plan: { tracks: unknown[]; total_actionable: number };
    }>();
    expect(Object.keys(doc)).toEqual([
      'generated_at',
      'data_hash',
      'analysis_config',
      'status',
      'plan',
      'usage_hints',
    ]);
    expect(doc.data_hash).toMatch(/^[0-9a-f]{16}$/);
    // derived from bv's rules by a separate reading of the file, not copied from our output
    const want = bvCounts(path.join(FIXTURES, 'steveyegge__beads__385c0c031__issues.jsonl'));
    expect(doc.plan.total_actionable).toBe(want.actionable);
    expect(doc.plan.tracks).toHaveLength(want.tracks);
  });

  it('says what it knows: per-item files with --explain in a repository, no claim without one', async () => {
    const r = await runCli(BIN, ['analyze', '--explain', '--hot-file', '2'], { cwd: repo.dir });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /^Evidence: file evidence for 3 of 4 track items|^Evidence: file evidence/m,
    );
    expect(r.stdout).toContain('files: src/db/store.ts (description)');
    expect(r.stdout).toContain('files: src/api/http.ts (commit ');
    expect(r.stdout).toMatch(/app-1 and app-2 share src\/db\/store\.ts/);
    const outside = await runCli(
      BIN,
      ['full', '--file', path.join(FIXTURES, 'NVIDIA__skyhook__issues.jsonl')],
      { cwd: repo.sandbox },
    );
    expect(outside.stdout).toMatch(/^Evidence: no file evidence \(no git repository\)/m);
    expect(outside.stdout).toMatch(/^Conflicts unknown: no file evidence/m);
    expect(outside.stdout).not.toContain('No two tracks are expected to touch the same file');
  });

  it('--from-bv round-trips a bv plan; --help lists the options; bad input is a usage error', async () => {
    const file = path.join(repo.sandbox, 'plan.json');
    const out = await runCli(BIN, ['analyze', '--json', '--format', 'bv'], { cwd: repo.dir });
    await repo.write('../plan.json', out.stdout);
    const back = await runCli(BIN, ['analyze', '--json', '--format', 'bv', '--from-bv', file], {
      cwd: repo.dir,
    });
    expect(back.json<{ plan: unknown }>().plan).toEqual(out.json<{ plan: unknown }>().plan);
    const help = await runCli(BIN, ['recommend', '--help']);
    for (const o of [
      '--beads-dir DIR',
      '--file X.jsonl',
      '--from-bv FILE',
      '--acquire',
      '--agent-prefix P',
    ])
      expect(help.stdout).toContain(o);
    expect((await runCli(BIN, ['analyze', '--format', 'xml'], { cwd: repo.dir })).code).toBe(2);
    expect((await runCli(BIN, ['recommend', '--acquire'], { cwd: repo.dir })).code).toBe(2);
    const dir = await runCli(BIN, ['analyze', '--file', repo.sandbox], { cwd: repo.dir });
    expect(dir.code).toBe(2);
    expect(dir.stderr.split('\n')[0]).toBe(
      `error: ${repo.sandbox} is a directory, not an issue file`,
    );
  });
});
