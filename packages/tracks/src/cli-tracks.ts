/** `tracks`: the beads track analyzer's command family (CLI.md § tracks). Logic lives in the package. */
import {
  ExitCode,
  runCli,
  usageError,
  type CliSpec,
  type CommandContext,
  type OptionSpec,
} from '@wtpool/core';
import { loadConfig, resolveRepo, targetDir } from '@wtpool/config';
import { analyze, DEFAULT_COMMITS, type Analysis } from './analyze.js';
import { toBvPlan } from './bv.js';
import { runDispatch } from './dispatch-cli.js';
import { analysisText, bvText, conflictsText, recommendationText, warningLines } from './format.js';
import { acquireAssignments, cliPoolPort, recommend, type Recommendation } from './recommend.js';
import { DEFAULT_HOT_FILE, DEFAULT_MAX_TRACKS, DEFAULT_NON_WORK_TYPES } from './tracks.js';

const INPUT: OptionSpec[] = [
  {
    name: 'beads-dir',
    type: 'string',
    value: 'DIR',
    description: 'beads directory holding the issue file (default: .beads of the repository)',
  },
  {
    name: 'file',
    type: 'string',
    value: 'X.jsonl',
    description:
      'read this issue file instead of finding one (`-`: stdin, e.g. piped from `bd export`)',
  },
  {
    name: 'from-bv',
    type: 'string',
    value: 'FILE',
    description: 'take the tracks of a saved `bv --robot-plan` output',
  },
  {
    name: 'strict',
    type: 'boolean',
    description: 'a malformed line is fatal (default: reported and skipped)',
  },
  {
    name: 'max-tracks',
    type: 'int',
    value: 'N',
    min: 1,
    max: 1000,
    description: 'at most N tracks',
    default: DEFAULT_MAX_TRACKS,
  },
  {
    name: 'hot-file',
    type: 'int',
    value: 'N',
    min: 2,
    max: 100000,
    description: 'a file named by more than N issues is a conflict, not a reason to join them',
    default: DEFAULT_HOT_FILE,
  },
  {
    name: 'commits',
    type: 'int',
    value: 'N',
    min: 0,
    max: 1000000,
    description: 'scan the last N commits for issue ids (0: none)',
    default: DEFAULT_COMMITS,
  },
];
const EXPLAIN: OptionSpec = {
  name: 'explain',
  type: 'boolean',
  description: 'per item: the files it is expected to touch and why; every held issue and why',
};
const FORMAT: OptionSpec = {
  name: 'format',
  type: 'string',
  value: 'F',
  choices: ['tracks', 'bv'],
  description: 'plan shape: ours, or exactly what bv --robot-plan prints',
  default: 'tracks',
};
const RECOMMEND: OptionSpec[] = [
  { name: 'acquire', type: 'boolean', description: 'lease the recommended slots' },
  {
    name: 'agent-prefix',
    type: 'string',
    value: 'P',
    description: 'agents are named P-1, P-2, … (needed with --acquire)',
  },
  {
    name: 'timeout',
    type: 'string',
    value: 'DUR',
    description: 'how long each acquire may wait for a slot',
    default: '10m',
  },
];

export const DISPATCH: OptionSpec[] = [
  {
    name: 'command',
    type: 'string',
    value: 'CMD',
    description: 'the command to run in each slot, by `sh -c` (or give an argv after --)',
  },
  {
    name: 'max',
    type: 'int',
    value: 'N',
    min: 1,
    max: 1000,
    description: "at most N commands at once (default: the pool's free capacity)",
  },
  { name: 'dry-run', type: 'boolean', description: 'print the plan; lease nothing, run nothing' },
  {
    name: 'then',
    type: 'string',
    value: 'STEP',
    choices: ['integrate'],
    description: 'afterwards: `integrate run --from-pool` on the branches the releases kept',
  },
  {
    name: 'agent-prefix',
    type: 'string',
    value: 'P',
    description: 'agents are named P-<track id>',
    default: 'dispatch',
  },
  {
    name: 'timeout',
    type: 'duration',
    value: 'DUR',
    description: 'how long each track may wait for a slot (default: pool.waitTimeout)',
  },
];

function repoOf(ctx: CommandContext): string | null {
  try {
    return resolveRepo(targetDir(ctx.repo)).worktree;
  } catch {
    return null;
  }
}

/** `tracks.nonWorkTypes` of the repository's config (the default list without one). */
function nonWorkTypes(ctx: CommandContext, repo: string | null): readonly string[] {
  if (!repo && ctx.config === undefined) return DEFAULT_NON_WORK_TYPES;
  return loadConfig({ repo: repo ?? ctx.repo, config: ctx.config }).config.tracks.nonWorkTypes;
}

async function load(
  ctx: CommandContext,
  bv = false,
  keepIssues = false,
): Promise<{ analysis: Analysis; repo: string | null }> {
  const repo = repoOf(ctx);
  const o = ctx.opts;
  const analysis = await analyze({
    bv,
    nonWorkTypes: nonWorkTypes(ctx, repo),
    repo,
    file: o.file as string | undefined,
    fromBv: o['from-bv'] as string | undefined,
    beadsDir: o['beads-dir'] as string | undefined,
    strict: o.strict === true,
    maxTracks: o['max-tracks'] as number,
    hotFile: o['hot-file'] as number,
    commits: o.commits as number,
    keepIssues,
  });
  for (const w of warningLines(analysis)) ctx.out.warn(w);
  return { analysis, repo };
}

const explainOf = (ctx: CommandContext) => ({ explain: ctx.opts.explain === true });

function planJson(a: Analysis) {
  const { bv: _bv, conflicts: _c, ...rest } = a;
  return rest;
}

async function recommendFor(
  ctx: CommandContext,
  a: Analysis,
  repo: string | null,
): Promise<{ rec: Recommendation; code: number }> {
  const acquire = ctx.opts.acquire === true;
  const prefix = ctx.opts['agent-prefix'] as string | undefined;
  if (acquire && !prefix) {
    throw usageError('--acquire needs --agent-prefix P (agents are named P-1, P-2, …)');
  }
  const port = cliPoolPort({
    repo: repo ?? targetDir(ctx.repo),
    config: ctx.config,
    timeout: ctx.opts.timeout as string,
  });
  const rec = recommend(a.tracks, await port.status(), {
    nonWorkTypes: nonWorkTypes(ctx, repo),
    ...(prefix ? { agentPrefix: prefix } : {}),
  });
  let code: number = ExitCode.OK;
  if (acquire) {
    try {
      await acquireAssignments(rec, port);
    } catch (e) {
      code = (e as { exitCode?: number }).exitCode ?? ExitCode.FAILURE;
      ctx.out.warn(`stopped leasing: ${(e as Error).message}`);
    }
  }
  return { rec, code };
}

const spec: CliSpec = {
  bin: 'tracks',
  summary: 'Beads track analyzer: parallel tracks of work, file conflicts, slot recommendations',
  footer:
    'Exit codes: 0 ok · 1 failure (not a beads file, malformed line with --strict, a dispatched track failed) · 2 usage · 4 not found · 6 pool unavailable · 75 pool full · 130/143 dispatch stopped by SIGINT/SIGTERM. Docs: docs/tracks.md',
  commands: [
    {
      name: 'analyze',
      summary: 'tracks of work that can run in parallel, each with items, priority and reason',
      options: [...INPUT, FORMAT, EXPLAIN],
      async run(ctx) {
        const bv = ctx.opts.format === 'bv';
        const { analysis } = await load(ctx, bv);
        if (bv) {
          // --from-bv has no issues to hash: only the plan is printed
          const doc = analysis.bv ?? { plan: toBvPlan(analysis) };
          ctx.out.result(doc, () => bvText(doc));
        } else ctx.out.result(planJson(analysis), () => analysisText(analysis, explainOf(ctx)));
      },
    },
    {
      name: 'recommend',
      summary: 'map tracks to free pool slots (reads pool state); --acquire leases them',
      options: [...INPUT, ...RECOMMEND],
      async run(ctx) {
        const { analysis, repo } = await load(ctx);
        const { rec, code } = await recommendFor(ctx, analysis, repo);
        ctx.out.result({ recommendation: rec }, () =>
          recommendationText(rec, ctx.opts.acquire === true),
        );
        return code;
      },
    },
    {
      name: 'conflicts',
      summary: 'pairs of tracks likely to touch the same files, with the evidence',
      options: INPUT,
      async run(ctx) {
        const { analysis } = await load(ctx);
        ctx.out.result({ conflicts: analysis.conflicts, evidence: analysis.evidence }, () =>
          conflictsText(analysis.conflicts, analysis.evidence),
        );
      },
    },
    {
      name: 'dispatch',
      summary:
        'run CMD once per ready track, each in a leased slot (env WTPOOL_TRACK, WTPOOL_ITEMS, WTPOOL_ITEMS_FILE); --then integrate merges what was kept',
      args: [
        {
          name: 'argv',
          rest: true,
          optional: true,
          description: 'the command as an argv, after -- (instead of --command)',
        },
      ],
      options: [...INPUT.filter((o) => o.name !== 'from-bv'), ...DISPATCH],
      run: (ctx) =>
        runDispatch(ctx, {
          load: async (c) => (await load(c, false, true)).analysis,
          nonWorkTypes: (c) => nonWorkTypes(c, repoOf(c)),
        }),
    },
    {
      name: 'full',
      summary: 'all three: analyze, conflicts and recommend',
      options: [...INPUT, ...RECOMMEND, EXPLAIN],
      async run(ctx) {
        const { analysis, repo } = await load(ctx);
        let rec: Recommendation | null = null;
        let code: number = ExitCode.OK;
        try {
          ({ rec, code } = await recommendFor(ctx, analysis, repo));
        } catch (e) {
          if (ctx.opts.acquire === true) throw e;
          ctx.out.warn(`no recommendation: ${(e as Error).message}`);
        }
        ctx.out.result(
          { ...planJson(analysis), conflicts: analysis.conflicts, recommendation: rec },
          () =>
            [
              analysisText(analysis, explainOf(ctx)),
              '',
              conflictsText(analysis.conflicts, analysis.evidence),
              '',
              rec
                ? recommendationText(rec, ctx.opts.acquire === true)
                : 'No recommendation: the pool is not available.',
            ].join('\n'),
        );
        return code;
      },
    },
  ],
};

export function main(argv: string[]): Promise<number> {
  return runCli(spec, argv);
}
