/** `gates`: the pre-commit and CI gate pipeline, and the hook installer. */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { runCli, type CliSpec, type CommandContext } from '@wtpool/core';
import { loadConfig, resolveRepo, targetDir } from '@wtpool/config';
import { formatReport, runPipeline, type GateReport } from './pipeline.js';
import { installHooks, uninstallHooks, type InstallResult } from './install.js';

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
  if (r.mode === 'guidance')
    return [`gates not installed: ${r.manager} manages this repository's hooks.`, ...r.notes].join(
      '\n',
    );
  const lines =
    r.mode === 'directory'
      ? [`gates added to ${r.hook} (${r.manager}; core.hooksPath and its other hooks unchanged)`]
      : [`gates hook installed: ${r.hook}`];
  if (r.mode === 'shared' && r.previousHooksPath !== null)
    lines.push(
      `removed core.hooksPath=${r.previousHooksPath} (that directory does not exist; \`gates uninstall\` puts it back)`,
    );
  if (r.hooksPath)
    lines.push(`set core.hooksPath=${r.hooksPath} (a global one would win otherwise)`);
  if (r.chained) lines.push(`the previous pre-commit hook is chained to the gates: ${r.chained}`);
  for (const a of r.armed) lines.push(`  armed   ${a}`);
  for (const w of r.worktrees)
    lines.push(w.active ? `  active  ${w.path}` : `  waiting ${w.path}: ${w.reason ?? w.hook}`);
  lines.push(
    r.mode === 'directory'
      ? 'pool slots get the hooks armed when created; in a worktree made by hand, run `gates install` again (or your install, which runs husky).'
      : 'worktrees created later share this hook (git common dir).',
  );
  for (const n of r.notes) lines.push(`next: ${n}`);
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
      description:
        "The gates run first in the pre-commit hook, or after the repository's own fixer (lint-staged, a formatter's --write) when it has one, so they check what it fixed.",
      run: async (ctx) => {
        const repo = resolveRepo(targetDir(ctx.repo));
        const r = await installHooks(repo);
        ctx.out.result(r, () => installText(r));
        return r.mode === 'guidance' ? 1 : 0;
      },
    },
    {
      name: 'uninstall',
      summary: 'remove what `gates install` wrote and put back the hooks and settings it moved',
      run: async (ctx) => {
        const repo = resolveRepo(targetDir(ctx.repo));
        const r = await uninstallHooks(repo);
        ctx.out.result(r, () =>
          [
            r.removed ? `removed the gates from ${r.removed}` : 'no gates hook found',
            ...(r.restored ? [`restored the previous hook: ${r.restored}`] : []),
            ...(r.hooksPath ? [`restored core.hooksPath=${r.hooksPath}`] : []),
          ].join('\n'),
        );
      },
    },
  ],
};

export function main(argv: string[]): Promise<number> {
  return runCli(spec, argv);
}
