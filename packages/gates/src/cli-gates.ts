/** `gates`: the pre-commit and CI gate pipeline, and the hook installer. */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { runCli, type CliSpec, type CommandContext } from '@wtpool/core';
import { loadConfig, resolveRepo, targetDir } from '@wtpool/config';
import { formatReport, runPipeline, type GateReport } from './pipeline.js';
import { installHooks, type InstallResult } from './install.js';

/**
 * The gates of a worktree come from that worktree's own pool.config.yaml when it has one: a
 * branch that changes its build changes its gate with it (docs/decisions.md D41).
 */
function gatesConfig(ctx: CommandContext) {
  if (ctx.config !== undefined) return loadConfig({ repo: ctx.repo, config: ctx.config });
  const repo = resolveRepo(targetDir(ctx.repo));
  const own = path.join(repo.worktree, 'pool.config.yaml');
  return loadConfig({ repo: ctx.repo, config: existsSync(own) ? own : undefined });
}

async function pipeline(ctx: CommandContext, mode: GateReport['mode']): Promise<number> {
  const loaded = gatesConfig(ctx);
  const report = await runPipeline(mode, {
    cwd: loaded.repo.worktree,
    mainRoot: loaded.repo.mainRoot,
    config: loaded.config,
    onGate: (name) => ctx.out.progress(`gates ${mode}: ${name}…`),
    // CI logs show build and test output as it comes; a terminal gets it on failure only.
    onData: mode === 'ci' && !ctx.json ? (d) => process.stderr.write(d) : undefined,
  });
  ctx.out.result(report, () => formatReport(report));
  return report.ok ? 0 : 1;
}

function installText(r: InstallResult): string {
  const lines = [`gates hook installed: ${r.hook}`];
  if (r.previousHooksPath !== null)
    lines.push(
      `removed core.hooksPath=${r.previousHooksPath} (it diverted git from ${r.hooksDir})`,
    );
  if (r.hooksPath)
    lines.push(`set core.hooksPath=${r.hooksPath} (a global one would win otherwise)`);
  if (r.chained) lines.push(`the previous pre-commit hook now runs after the gates: ${r.chained}`);
  for (const w of r.worktrees) lines.push(`  active  ${w.path}`);
  lines.push('worktrees created later share this hook (git common dir).');
  return lines.join('\n');
}

export const spec: CliSpec = {
  bin: 'gates',
  summary: 'Quality gates: pre-commit checks, CI checks, hook installer',
  footer:
    'Exit codes: 0 all gates passed · 1 a gate failed · 2 usage · 3 config invalid · 4 not a git repository\nDocs: docs/gates.md',
  commands: [
    {
      name: 'pre-commit',
      summary:
        'beads flush, format check of staged files, build (mandatory), tests if RUN_TESTS_ON_COMMIT=1',
      description:
        'Run by the pre-commit hook in every worktree. Commands come from gates.format, gates.build and gates.test in pool.config.yaml. No flag, variable or config value skips the build gate.',
      run: (ctx) => pipeline(ctx, 'pre-commit'),
    },
    {
      name: 'ci',
      summary: 'format check of all files, build, tests: what the integration CI runs',
      run: (ctx) => pipeline(ctx, 'ci'),
    },
    {
      name: 'install',
      summary:
        'activate the gates hook for the main checkout and every worktree, present and future',
      run: async (ctx) => {
        const repo = resolveRepo(targetDir(ctx.repo));
        const r = await installHooks(repo);
        ctx.out.result(r, () => installText(r));
      },
    },
  ],
};

export function main(argv: string[]): Promise<number> {
  return runCli(spec, argv);
}
