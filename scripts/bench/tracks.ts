/**
 * `pnpm bench tracks`: analyze time (read + graph + bv plan + default tracks, no git evidence)
 * for the largest fixture and generated graphs of 2k, 10k and 50k issues. Baseline, measured
 * in the same run and interleaved: a plain `JSON.parse` of every line of the same file.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { analyze } from '@wtpool/tracks';
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
  for (const n of [2000, 10000, 50000]) {
    const f = path.join(dir, `gen-${n}.jsonl`);
    generate(n, f);
    cases.push([`generated ${n} issues`, f]);
  }
  const rows: Row[] = [];
  const perIssue: number[] = [];
  for (const [what, file] of cases) {
    const rounds = file.includes('50000') ? 5 : 11;
    const s = await interleave(rounds, {
      analyze: () => analyze({ repo: null, file }),
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
  }
  rows.push({
    what: 'growth: µs per issue at 2k → 10k → 50k',
    value: perIssue
      .slice(1)
      .map((x) => (x * 1000).toFixed(1))
      .join(' → '),
    goal: 'about flat (linear)',
  });
  report('tracks', rows);
}
