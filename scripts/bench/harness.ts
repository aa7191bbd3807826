/**
 * Benchmark helpers. Rules of the house: every figure is printed next to a baseline measured
 * in the same run, runs of the subject and the baseline are interleaved (this machine's disk
 * varies 10× from run to run), and medians are quoted, not means.
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[i]!;
}

export const median = (values: number[]) => percentile(values, 50);

/** Times `fn` once, in milliseconds. */
export async function time(fn: () => unknown): Promise<number> {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e6;
}

/**
 * Runs each named function `rounds` times, interleaved (a, b, a, b, …), and returns the
 * samples of each in ms.
 */
export async function interleave(
  rounds: number,
  subjects: Record<string, () => unknown>,
): Promise<Record<string, number[]>> {
  const samples: Record<string, number[]> = Object.fromEntries(
    Object.keys(subjects).map((k) => [k, []]),
  );
  for (let r = 0; r < rounds; r++) {
    for (const [name, fn] of Object.entries(subjects)) samples[name]!.push(await time(fn));
  }
  return samples;
}

export interface Row {
  what: string;
  value: string;
  baseline?: string;
  ratio?: number;
  goal?: string;
}

/** The machine's 1-minute load average and core count: printed beside every table. */
export function load(): { avg1: number; cores: number } {
  return { avg1: os.loadavg()[0]!, cores: os.availableParallelism() };
}

/** Highest 1-minute load average seen at any table of this run (see index.ts's --record). */
export let peakLoad = 0;

/** Prints a table of results; a ratio is subject / baseline (lower is better unless stated). */
export function report(title: string, rows: Row[]): void {
  const { avg1, cores } = load();
  peakLoad = Math.max(peakLoad, avg1);
  console.log(`\n## ${title}\n`);
  console.log(
    `load average ${avg1.toFixed(2)} on ${cores} cores${avg1 > cores ? ' (busy machine: these figures say little)' : ''}\n`,
  );
  console.log('| measure | value | baseline | ratio | goal |');
  console.log('|---|---|---|---|---|');
  for (const r of rows) {
    console.log(
      `| ${r.what} | ${r.value} | ${r.baseline ?? ''} | ${r.ratio === undefined ? '' : r.ratio.toFixed(2) + '×'} | ${r.goal ?? ''} |`,
    );
  }
}

export const fmtMs = (ms: number) => (ms < 10 ? `${ms.toFixed(2)} ms` : `${ms.toFixed(1)} ms`);

/** A scratch dir on the disk (default) or on tmpfs (/dev/shm) when `tmpfs` is true. */
export function scratch(prefix: string, tmpfs = false): string {
  const root = tmpfs && process.platform === 'linux' ? '/dev/shm' : os.tmpdir();
  return mkdtempSync(path.join(root, `wtpool-bench-${prefix}-`));
}
