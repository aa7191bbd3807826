/** `integrate`: the local merge queue into the integration branch, and promotion to main. */
import { runCli, type CliSpec, type OptionSpec } from '@wtpool/core';
import { loadConfig } from '@wtpool/config';
import {
  integratePromote,
  integrateRun,
  integrateStatus,
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
  const extra = r.mergedAs ? ` → ${short(r.mergedAs)}` : r.log ? `  log: ${r.log}` : '';
  return `  ${r.status.padEnd(11)} ${r.branch}  (${r.reason})${extra}`;
}

function runText(r: RunReport): string {
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
  if (s.current) lines.push(`in progress: ${s.current.branch} (pid ${s.current.pid})`);
  lines.push(`candidates from the pool: ${s.candidates.length ? '' : 'none'}`);
  for (const c of s.candidates) lines.push(`  ${c.branch}  ${short(c.head)}`);
  lines.push(`results: ${s.results.length ? '' : 'none yet'}`);
  for (const r of s.results) lines.push(resultLine(r));
  return lines.join('\n');
}

export const spec: CliSpec = {
  bin: 'integrate',
  summary: 'Local merge queue: merge candidates into the integration branch, promote green heads',
  footer:
    'Exit codes: 0 ok · 1 a candidate was rejected, head not green, or another integrate holds the queue · 2 usage · 3 config invalid · 4 not found · 5 conflict (dirty checkout, not a fast-forward) · 130/143 interrupted (restored)\nDocs: docs/integration.md',
  commands: [
    {
      name: 'run',
      summary: 'merge candidates one by one (--no-ff), run `gates ci` after each, keep what passes',
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
        return r.results.some((x) => x.status === 'rejected' || x.status === 'conflict') ? 1 : 0;
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
      summary: 'candidates, last results and logs of rejected merges',
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
