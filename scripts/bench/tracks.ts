/**
 * `pnpm bench tracks`: analyze time (read + graph + default tracks, no git evidence; and with
 * `--format bv`'s loader, plan and data hash) for the largest fixture and generated graphs of
 * 2k and 20k issues; and a file of one 1 MB description and one 1 MB title through reading,
 * file evidence (an in-process file index), the plan and the redacted text output. Baseline,
 * measured in the same run and interleaved: a plain `JSON.parse` of every line of the same file.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { redact } from '@wtpool/core';
import {
  analysisText,
  analyze,
  buildGraph,
  gatherEvidence,
  indexRepoFiles,
  readIssueFile,
  trackPlan,
} from '@wtpool/tracks';
import { fmtMs, interleave, median, report, scratch, type Row } from './harness.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

const fixtures = (): string => path.join(root, 'packages/tracks/test/fixtures/beads');

/** n issues, a third closed, epics of ~8 children, blocking chains, some files in text. */
function generate(n: number, file: string): void {
  const lines: string[] = [];
  let seed = 42;
  const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  for (let i = 0; i < n; i++) {
    const deps = [];
    if (i % 9 !== 0)
      deps.push({ issue_id: `g-${i}`, depends_on_id: `g-${i - (i % 9)}`, type: 'parent-child' });
    if (rnd() < 0.3 && i > 0)
      deps.push({
        issue_id: `g-${i}`,
        depends_on_id: `g-${Math.floor(rnd() * i)}`,
        type: 'blocks',
      });
    lines.push(
      JSON.stringify({
        id: `g-${i}`,
        title: `generated issue ${i}`,
        description: `touches src/mod${Math.floor((rnd() * n) / 20)}/file.ts`,
        status: rnd() < 0.33 ? 'closed' : 'open',
        priority: Math.floor(rnd() * 5),
        issue_type: i % 9 === 0 ? 'epic' : 'task',
        dependencies: deps,
      }),
    );
  }
  writeFileSync(file, lines.join('\n') + '\n');
}

const parseAll = (file: string) => {
  for (const l of readFileSync(file, 'utf8').split('\n')) if (l) JSON.parse(l);
};

export async function run(): Promise<void> {
  const dir = scratch('tracks', true);
  const cases: [string, string][] = [
    [
      'largest fixture (beads, 704 issues)',
      path.join(fixtures(), 'steveyegge__beads__385c0c031__issues.jsonl'),
    ],
  ];
  for (const n of [2000, 20000]) {
    const f = path.join(dir, `gen-${n}.jsonl`);
    generate(n, f);
    cases.push([`generated ${n} issues`, f]);
  }
  const rows: Row[] = [];
  const perIssue: number[] = [];
  for (const [what, file] of cases) {
    const rounds = file.includes('20000') ? 5 : 11;
    const s = await interleave(rounds, {
      analyze: () => analyze({ repo: null, file }),
      bv: () => analyze({ repo: null, file, bv: true }),
      baseline: () => parseAll(file),
    });
    const m = median(s.analyze!);
    const b = median(s.baseline!);
    const n = readFileSync(file, 'utf8').split('\n').filter(Boolean).length;
    perIssue.push(m / n);
    rows.push({
      what: `analyze, ${what}`,
      value: fmtMs(m),
      baseline: `JSON.parse per line ${fmtMs(b)}`,
      ratio: m / b,
      goal: n === 2000 ? '≤ 300 ms' : '',
    });
    rows.push({
      what: `analyze --format bv (both modes), ${what}`,
      value: fmtMs(median(s.bv!)),
      baseline: `JSON.parse per line ${fmtMs(b)}`,
      ratio: median(s.bv!) / b,
    });
  }
  rows.push({
    what: 'growth: 20k time / 2k time',
    value: `${(perIssue[2]! * 20000) / (perIssue[1]! * 2000) > 0 ? ((perIssue[2]! * 20000) / (perIssue[1]! * 2000)).toFixed(1) : '?'}×`,
    goal: '≤ 15× (10× is linear)',
  });
  // Text length: one 1 MB description and one 1 MB title, the old path pattern's worst shape.
  const big = path.join(dir, 'big-text.jsonl');
  const MB = 1 << 20;
  writeFileSync(
    big,
    [
      JSON.stringify({
        id: 'big-1',
        title: 'T',
        description: `${'abcdefgh'.repeat(MB / 16)} ${'src/x.ts readme.md '.repeat(MB / 40)}`,
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
  const index = indexRepoFiles(['src/x.ts', 'docs/readme.md']);
  const t = await interleave(5, {
    analyze: async () => {
      const r = await readIssueFile(big);
      const g = buildGraph(r.issues);
      const plan = trackPlan(g, gatherEvidence(r.issues, index, []));
      redact(plan.tracks.map((x) => x.items.map((i) => i.title).join('\n')).join('\n'));
    },
    text: async () => redact(analysisText(await analyze({ repo: null, file: big }))),
    baseline: () => parseAll(big),
  });
  const tb = median(t.baseline!);
  rows.push({
    what: '1 MB description + 1 MB title: read, file evidence, plan, redacted titles',
    value: fmtMs(median(t.analyze!)),
    baseline: `read + JSON.parse ${fmtMs(tb)}`,
    ratio: median(t.analyze!) / tb,
    goal: '≤ 20× (linear)',
  });
  rows.push({
    what: '1 MB description + 1 MB title: analyze + text output (what the CLI prints)',
    value: fmtMs(median(t.text!)),
    baseline: `read + JSON.parse ${fmtMs(tb)}`,
    ratio: median(t.text!) / tb,
  });
  report('tracks', rows);
}
