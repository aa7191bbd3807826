/** `integrate`: the local merge queue into the integration branch, and promotion to main. */
import { runCli, type CliSpec, type OptionSpec } from '@wtpool/core';
import { loadConfig } from '@wtpool/config';
import {
  integrateDrop,
  integratePromote,
  integrateRetry,
  integrateRun,
  integrateStatus,
  runExitCode,
  type MergeResult,
  type RunReport,
  type StatusReport,
} from './integrate.js';

const TARGET: OptionSpec = {
  name: 'target',
  type: 'string',
  value: 'BRANCH',
  default: 'integration',
  description: 'integration branch',
};

const short = (sha: string | null) => (sha ? sha.slice(0, 12) : '-');

function resultLine(r: MergeResult): string {
  const log = r.log ?? r.previous?.log;
  const extra = r.mergedAs ? ` → ${short(r.mergedAs)}` : log ? `  log: ${log}` : '';
  const who = r.owner ? `  [${r.owner.agent}: ${r.owner.task}]` : '';
  return `  ${r.status.padEnd(11)} ${r.branch}  (${r.reason})${who}${extra}`;
}

/** A red base: one line naming the failing gate and its log; no candidate was tried. */
const redBaseLine = (r: RunReport) =>
  `integrate: ${r.target} at ${short(r.base.head)} is red: the ${r.base.failedGate} gate failed (log: ${r.base.log}); no candidate was tried`;

function runText(r: RunReport): string {
  if (r.base.status === 'red') return redBaseLine(r);
  const lines: string[] = [];
  if (r.recovered) lines.push(`recovered an interrupted merge: ${r.recovered.reason}`);
  lines.push(`integrate ${r.target} in ${r.worktree}`, ...r.results.map(resultLine));
  lines.push(
    `${r.target}: ${short(r.startHead)} → ${short(r.head)}${r.green ? ' (green: `integrate promote` can move main here)' : ''}`,
  );
  return lines.join('\n');
}

function statusText(s: StatusReport): string {
  const lines = [
    `${s.target}: ${short(s.head)}${s.green ? ' green' : s.head ? ' (not checked)' : ' (no branch yet)'}  worktree ${s.worktree}`,
  ];
  const run = s.running;
  if (run) {
    const where =
      run.index === 0 ? 'base check' : `candidate ${run.index} of ${run.total}: ${run.branch}`;
    const since = run.gateStartedAt
      ? `, ${((Date.now() - Date.parse(run.gateStartedAt)) / 1000).toFixed(0)}s`
      : '';
    lines.push(
      `running (pid ${run.pid}, since ${run.startedAt}): ${where}${run.gate ? `, gate ${run.gate}${since}` : ''}`,
    );
  } else if (s.current)
    lines.push(`interrupted mid-merge: ${s.current.branch} (pid ${s.current.pid})`);
  lines.push(`candidates from the pool: ${s.candidates.length ? '' : 'none'}`);
  for (const c of s.candidates) {
    const who = c.owner ? `  [${c.owner.agent}: ${c.owner.task}]` : '';
    const held = c.held
      ? `  (${c.held.status} at this head: waits for a new commit or \`integrate retry\`)`
      : '';
    lines.push(`  ${c.branch}  ${short(c.head)}${who}${held}`);
  }
  if (s.dropped.length) lines.push(`dropped: ${s.dropped.map((d) => d.branch).join(', ')}`);
  lines.push(`results: ${s.results.length ? '' : 'none yet'}`);
  for (const r of s.results) lines.push(resultLine(r));
  return lines.join('\n');
}

export const spec: CliSpec = {
  bin: 'integrate',
  summary: 'Local merge queue: merge candidates into the integration branch, promote green heads',
  footer:
    'Exit codes: 0 ok · 1 a candidate was rejected, the base is red, head not green, or another integrate holds the queue · 2 usage · 3 config invalid · 4 not found · 5 conflict (dirty checkout, not a fast-forward) · 130/143 interrupted (restored)\nDocs: docs/integration.md',
  commands: [
    {
      name: 'run',
      summary:
        'check the target head (once per commit), then merge candidates one by one (--no-ff), check each merge, keep what passes',
      description:
        'Base first: the target head runs `gates ci` once (cached by commit); a red base stops the run (exit 1) and no candidate is blamed. Each merge then runs the format check on the files it changed and the build, typecheck and test commands of the paths it changed (gates.paths; the default build and tests for the rest). A head that conflicted or was rejected is skipped until its branch gets a new commit or `integrate retry`.',
      options: [
        {
          name: 'branches',
          type: 'list',
          value: 'A,B',
          description: 'candidate branches, merged in this order',
        },
        {
          name: 'from-pool',
          type: 'boolean',
          description: 'candidates: the branches that released pool leases kept',
        },
        TARGET,
      ],
      run: async (ctx) => {
        const loaded = loadConfig({ repo: ctx.repo, config: ctx.config });
        const r = await integrateRun(loaded, {
          branches: ctx.opts.branches as string[] | undefined,
          fromPool: ctx.opts['from-pool'] === true,
          target: ctx.opts.target as string,
          progress: (m) => ctx.out.progress(m),
        });
        ctx.out.result(r, () => runText(r));
        return runExitCode(r);
      },
    },
    {
      name: 'drop',
      summary: 'remove a branch from the candidates (the branch itself is kept)',
      args: [{ name: 'branch', description: 'the candidate branch' }],
      run: async (ctx) => {
        const loaded = loadConfig({ repo: ctx.repo, config: ctx.config });
        const r = await integrateDrop(loaded, String(ctx.args.branch));
        ctx.out.result(r, () =>
          r.dropped
            ? `${r.branch} is no longer a candidate (branch kept at ${short(r.head)}; \`integrate retry ${r.branch}\` takes it back)`
            : `${r.branch} was already dropped`,
        );
      },
    },
    {
      name: 'retry',
      summary: 'try a branch again: forget its conflicted or rejected head (and a drop)',
      args: [{ name: 'branch', description: 'the candidate branch' }],
      run: async (ctx) => {
        const loaded = loadConfig({ repo: ctx.repo, config: ctx.config });
        const r = await integrateRetry(loaded, String(ctx.args.branch));
        ctx.out.result(r, () =>
          [
            r.held ? `${r.branch}: forgot its ${r.held.status} at ${short(r.held.head)}` : null,
            r.undropped ? `${r.branch} is a candidate again` : null,
            'the next `integrate run` tries it',
          ]
            .filter(Boolean)
            .join('\n'),
        );
      },
    },
    {
      name: 'promote',
      summary: 'fast-forward main to the integration head, only if it passed `gates ci`',
      options: [
        {
          name: 'to',
          type: 'string',
          value: 'BRANCH',
          description: 'branch to move (default: pool.base, i.e. main)',
        },
        TARGET,
      ],
      run: async (ctx) => {
        const loaded = loadConfig({ repo: ctx.repo, config: ctx.config });
        const r = await integratePromote(loaded, {
          to: ctx.opts.to as string | undefined,
          target: ctx.opts.target as string,
        });
        ctx.out.result(r, () =>
          r.promoted
            ? `${r.to}: ${short(r.from)} → ${short(r.head)} (green ${r.target} head)`
            : `${r.to} is already at ${short(r.head)}`,
        );
      },
    },
    {
      name: 'status',
      summary:
        'the run in progress, candidates (with their owners), held heads, last results and logs',
      options: [
        TARGET,
        {
          name: 'limit',
          type: 'int',
          value: 'N',
          default: 20,
          min: 1,
          description: 'results shown',
        },
      ],
      run: async (ctx) => {
        const loaded = loadConfig({ repo: ctx.repo, config: ctx.config });
        const s = await integrateStatus(loaded, {
          target: ctx.opts.target as string,
          limit: ctx.opts.limit as number,
        });
        ctx.out.result(s, () => statusText(s));
      },
    },
  ],
};

export function main(argv: string[]): Promise<number> {
  return runCli(spec, argv);
}
