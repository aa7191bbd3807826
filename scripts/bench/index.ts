/**
 * `pnpm bench [name…] [--record]`: runs the named benchmarks (all when none is named) and prints
 * markdown tables with ratios against baselines measured in the same run, each with the load
 * average beside it. See docs/benchmarks.md.
 *
 * `--record` appends the run's tables to docs/benchmarks.md, but only when the load average
 * stayed at or below the core count for the whole run: on a busy machine it appends a one-line
 * note that the run was not recorded instead (a figure measured at load 15 is not what a user
 * sees, issue 26).
 */
import { appendFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { load, peakLoad } from './harness.js';

const SUITES = [
  'lock',
  'pool',
  'fleet',
  'mcp',
  'services',
  'redis-client',
  'monitor',
  'tracks',
  'gates',
  'monorepo',
] as const;

const record = process.argv.includes('--record');
const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const unknown = wanted.filter((w) => !(SUITES as readonly string[]).includes(w));
if (unknown.length) {
  console.error(`unknown benchmark ${unknown.join(', ')}; known: ${SUITES.join(', ')}`);
  process.exit(2);
}
const run = wanted.length ? wanted : [...SUITES];
const printed: string[] = [];
if (record) {
  const log = console.log.bind(console);
  console.log = (...args: unknown[]) => {
    printed.push(args.map(String).join(' '));
    log(...args);
  };
}
const startLoad = load().avg1;
console.log(`# worktree-pool benchmarks (${new Date().toISOString()}, node ${process.version})`);
for (const name of run) {
  let mod: { run?: () => Promise<void> };
  try {
    mod = (await import(`./${name}.ts`)) as { run?: () => Promise<void> };
  } catch (e) {
    if (
      (e as { code?: string }).code === 'ERR_MODULE_NOT_FOUND' &&
      String(e).includes(`${name}.ts`)
    ) {
      console.log(`\n## ${name}\n\n(not written yet)`);
      continue;
    }
    throw e;
  }
  await mod.run!();
}

if (record) {
  const { cores } = load();
  const peak = Math.max(startLoad, peakLoad, load().avg1);
  const doc = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../docs/benchmarks.md');
  const stamp = new Date().toISOString().slice(0, 16).replace('T', ' ');
  if (peak > cores) {
    const note = `\n> Not recorded: \`pnpm bench ${run.join(' ')}\` of ${stamp} UTC ran at load average up to ${peak.toFixed(1)} on ${cores} cores.\n`;
    appendFileSync(doc, note);
    console.error(
      `bench: load average reached ${peak.toFixed(1)} > ${cores} cores; noted in docs/benchmarks.md, figures not recorded`,
    );
    process.exitCode = 3;
  } else {
    appendFileSync(
      doc,
      `\n## Run of ${stamp} UTC (\`pnpm bench ${run.join(' ')} --record\`, load ≤ ${peak.toFixed(2)})\n${printed.join('\n')}\n`,
    );
    console.error(
      `bench: recorded in docs/benchmarks.md (peak load ${peak.toFixed(2)} on ${cores} cores)`,
    );
  }
}
