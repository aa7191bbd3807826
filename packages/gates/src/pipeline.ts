/**
 * The gate pipeline. `pre-commit`: beads flush, format check of the staged files (through
 * lint-staged), build (mandatory: nothing skips it), tests only when RUN_TESTS_ON_COMMIT=1.
 * `ci`: format check of every file, build, tests. `merge` (one candidate of the merge queue):
 * format check of the files the merge changed, build, tests. Build, typecheck and test commands
 * come from the paths involved (staged, changed by the merge, or all: `gates.paths`, checks.ts).
 * A failed gate stops the pipeline; its report names the gate, carries its output and the
 * command that reproduces it.
 */
import { flushBeads } from './beads.js';
import {
  changedFiles,
  changedPaths,
  selectChecks,
  stagedPaths,
  trackedPaths,
  type Check,
} from './checks.js';
import { gateEnv, shell } from './exec.js';
import { checkFilesFormat, checkStagedFormat, formatSkipReason } from './format.js';

export type {
  GateName,
  GateStatus,
  GateResult,
  GateReport,
  PipelineOptions,
} from './gate-types.js';
import type {
  GateName,
  GateResult,
  GateReport,
  GateStatus,
  PipelineOptions,
} from './gate-types.js';

type Step = { name: GateName; command: string; run: () => Promise<GateResult> };

/** True when the environment asks for tests on commit (`RUN_TESTS_ON_COMMIT=1`). */
export function testsOnCommit(env: NodeJS.ProcessEnv): boolean {
  return /^(1|true|yes)$/i.test(env.RUN_TESTS_ON_COMMIT ?? '');
}

function commandGate(
  name: GateName,
  command: string,
  opts: PipelineOptions,
  selectedFor?: string,
): Step {
  return {
    name,
    command,
    run: async () => {
      const r = await shell(command, {
        cwd: opts.cwd,
        env: gateEnv([opts.cwd, opts.mainRoot], opts.env),
        onData: opts.onData,
      });
      return {
        name,
        status: r.code === 0 ? 'passed' : 'failed',
        command,
        ms: r.ms,
        exitCode: r.code,
        output: r.output,
        reproduce: command,
        ...(selectedFor ? { for: selectedFor } : {}),
      };
    },
  };
}

const skipped = (name: GateName, why: string): Step => ({
  name,
  command: why,
  run: async () => ({ name, status: 'skipped', command: why, ms: 0 }),
});

const checkSteps = (checks: Check[], opts: PipelineOptions) =>
  checks.map((c) => commandGate(c.gate, c.command, opts, c.for));

/** The steps of a mode: format first, then the checks the paths involved select. */
async function steps(mode: GateReport['mode'], opts: PipelineOptions): Promise<Step[]> {
  const env = opts.env ?? process.env;
  const { gates } = opts.config;
  if (mode === 'pre-commit') {
    const checks = await selectChecks(gates, stagedPaths(opts.cwd));
    const tests = checks.filter((c) => c.gate === 'test');
    return [
      { name: 'beads', command: 'beads', run: () => flushBeads(opts.cwd, env) },
      { name: 'format', command: gates.format, run: () => checkStagedFormat(gates.format, opts) },
      // The build gate has no condition around it on purpose: it is mandatory (checks.ts).
      ...checkSteps(
        checks.filter((c) => c.gate !== 'test'),
        opts,
      ),
      ...(testsOnCommit(env)
        ? checkSteps(tests, opts)
        : [skipped('test', 'set RUN_TESTS_ON_COMMIT=1 to run the tests on commit')]),
    ];
  }
  if (mode === 'merge') {
    const { from, to } = opts.range!;
    const files = await changedFiles(opts.cwd, from, to);
    return [
      {
        name: 'format',
        command: gates.format,
        run: () => checkFilesFormat(gates.format, files, opts),
      },
      ...checkSteps(await selectChecks(gates, changedPaths(opts.cwd, from, to)), opts),
    ];
  }
  const noFormat = formatSkipReason(gates.format, opts);
  return [
    noFormat ? skipped('format', noFormat) : commandGate('format', `${gates.format} .`, opts),
    ...checkSteps(await selectChecks(gates, trackedPaths(opts.cwd)), opts),
  ];
}

export async function runPipeline(
  mode: GateReport['mode'],
  opts: PipelineOptions,
): Promise<GateReport> {
  const planned = await steps(mode, opts);
  const results: GateResult[] = [];
  let failed: GateName | null = null;
  for (const step of planned) {
    if (failed) {
      results.push({
        name: step.name,
        status: 'skipped',
        command: `after ${failed} failed`,
        ms: 0,
      });
      continue;
    }
    opts.onGate?.(step.name, step.command);
    const r = await step.run();
    // Passing gates keep their output short in reports; a failure keeps all of it.
    if (r.status === 'passed') delete r.output;
    results.push(r);
    if (r.status === 'failed') failed = r.name;
  }
  return { mode, ok: failed === null, cwd: opts.cwd, gates: results, failed };
}

/** The human summary of a report: one line per gate, then the failure's output and how to reproduce it. */
export function formatReport(report: GateReport): string {
  const mark: Record<GateStatus, string> = { passed: 'ok  ', failed: 'FAIL', skipped: 'skip' };
  const lines = report.gates.map(
    (g) =>
      `${mark[g.status]} ${g.name.padEnd(6)} ${g.status === 'skipped' ? `(${g.command})` : `${g.command}  ${(g.ms / 1000).toFixed(1)}s`}${g.for && g.for !== 'default' ? `  [${g.for}]` : ''}`,
  );
  const bad = report.gates.find((g) => g.status === 'failed');
  if (bad) {
    lines.push(
      '',
      `gates ${report.mode}: the ${bad.name} gate failed${bad.exitCode === undefined ? '' : ` (exit ${bad.exitCode})`}${report.mode === 'pre-commit' ? '; nothing was committed' : ''}.`,
    );
    if (bad.output?.trim()) lines.push('', bad.output.trimEnd(), '');
    lines.push(`reproduce: cd ${report.cwd} && ${bad.reproduce ?? bad.command}`);
  }
  return lines.join('\n');
}
