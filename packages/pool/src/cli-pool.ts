/**
 * The `pool` command family: argv table → one WorktreePool call → print. Logic lives in the
 * package (pool.ts and the modules it wires, run.ts); this file stays thin.
 */
import {
  ExitCode,
  runCli,
  usageError,
  notFoundError,
  type CliSpec,
  type CommandContext,
  type OptionSpec,
} from '@wtpool/core';
import { keyOption } from '@wtpool/config';
import { heldToken, TOKEN_OPTION } from './held-token.js';
import { formatStatus } from './status.js';
import { acquireAnyHost, fleetCommand, fleetDispatch, withHost } from './fleet-cli.js';
import { AGENT_COMMANDS } from './cli-agents.js';
import { SETUP_COMMAND } from './cli-setup.js';
import { RESCUE_COMMANDS } from './cli-rescue.js';
import { open, str } from './cli-open.js';

const num = (v: unknown) => (v === undefined ? undefined : Number(v));

const LEASE_OPTIONS: OptionSpec[] = [
  {
    name: 'priority',
    type: 'int',
    value: 'N',
    min: 0,
    max: 4,
    default: 2,
    description: 'queue priority, 0 (most urgent) … 4',
  },
  {
    name: 'wait',
    type: 'boolean',
    default: true,
    description: 'wait in the queue when no slot is free (--no-wait: exit 75 at once)',
  },
  keyOption('pool.waitTimeout', {
    name: 'timeout',
    value: 'DUR',
    description: 'longest wait, e.g. 90s, 30m, 2h',
  }),
  keyOption('pool.leaseTtl', {
    name: 'ttl',
    value: 'DUR',
    description: 'lease lifetime without a heartbeat',
  }),
  {
    name: 'identity',
    type: 'string',
    value: 'NAME',
    description: 'prefer the slot this identity used last (warm caches)',
  },
];

function leaseArgs(ctx: CommandContext) {
  return {
    agent: String(ctx.args.agent),
    task: String(ctx.args.task),
    priority: num(ctx.opts.priority),
    wait: ctx.opts.wait !== false,
    timeoutMs: num(ctx.opts.timeout),
    ttlMs: num(ctx.opts.ttl),
    identity: str(ctx.opts.identity),
  };
}

const AGENT_TASK = [
  { name: 'agent', description: 'who leases (letters, digits, . _ @ + -)' },
  { name: 'task', description: 'what for (free text, slugged into the branch name)' },
];
const SLOT_AGENT = [
  { name: 'slot', description: 'slot id, e.g. wt-3' },
  { name: 'agent', description: 'the agent holding the lease' },
];

export const spec: CliSpec = {
  bin: 'pool',
  summary:
    'Lease isolated git worktree slots to agents: fair queue, autoscaling, release that never loses work.',
  footer:
    'Exit codes: 0 ok · 1 failure · 2 usage · 3 config invalid · 4 not found · 5 conflict (not the holder, dirty worktree) · 6 service unavailable · 7 capacity exhausted · 75 pool full / wait timed out.\nDocs: docs/pool.md',
  commands: [
    SETUP_COMMAND,
    {
      name: 'init',
      summary: 'create ready slots (default scale.min); idempotent; recreates missing worktrees',
      options: [
        {
          name: 'size',
          type: 'int',
          value: 'N',
          min: 0,
          max: 1000,
          description: 'slots to have at least (default: scale.min)',
        },
      ],
      async run(ctx) {
        const status = await open(ctx).initialize({ size: num(ctx.opts.size) });
        ctx.out.result(status, () => formatStatus(status));
      },
    },
    {
      name: 'acquire',
      summary: 'lease a slot; prints the worktree path (human) or the lease (JSON)',
      args: AGENT_TASK,
      options: [
        ...LEASE_OPTIONS,
        {
          name: 'holder-pid',
          type: 'int',
          value: 'PID',
          min: 1,
          description: 'the lease ends at once when this process dies',
        },
        {
          name: 'any-host',
          type: 'boolean',
          description:
            'a slot on whichever host of the fleet frees one first (store.backend redis; prints the host)',
        },
      ],
      async run(ctx) {
        const pool = open(ctx);
        if (ctx.opts['any-host'] === true) {
          const got = await acquireAnyHost(pool, leaseArgs(ctx));
          return ctx.out.result(got, `${got.host} ${got.path}`);
        }
        const lease = await pool.lease({
          ...leaseArgs(ctx),
          holderPid: num(ctx.opts['holder-pid']),
        });
        ctx.out.result(withHost(pool, lease), lease.path);
      },
    },
    {
      name: 'release',
      summary: 'release a lease held by agent; refuses a dirty worktree without --force',
      args: SLOT_AGENT,
      options: [
        {
          name: 'force',
          type: 'boolean',
          description:
            'release a dirty worktree after saving its work (uncommitted and ignored files, nested repositories) to refs/wtpool/rescue/<slot>/<timestamp>',
        },
        {
          name: 'discard-nested',
          type: 'boolean',
          description:
            'with --force: remove nested git repositories that could not be saved (never removed without it)',
        },
        TOKEN_OPTION,
      ],
      async run(ctx) {
        const slot = String(ctx.args.slot);
        const pool = open(ctx);
        const r = await pool.release({
          slot,
          agent: String(ctx.args.agent),
          force: ctx.opts.force === true,
          discardNested: ctx.opts['discard-nested'] === true,
          token: heldToken(ctx.opts.token, slot),
        });
        await fleetDispatch(pool); // the freed slot may serve an --any-host waiter
        ctx.out.result(r, () =>
          [
            r.alreadyReleased
              ? `${r.slot}: lease ${r.token} of ${r.agent} was already released${r.releasedAt ? ` at ${r.releasedAt}` : ''}`
              : `released ${r.slot}`,
            r.kept
              ? `branch ${r.branch} has commits: kept for integration`
              : `branch ${r.branch} was empty: deleted`,
            r.rescueRef ? `uncommitted and ignored files saved to ${r.rescueRef}` : '',
            ...(r.nested ?? []).map((n) => `nested repository ${n.path} saved to ${n.ref}`),
            r.unsaved?.length
              ? `not saved (over pool.rescueMaxBytes), left on disk in the slot: ${r.unsaved.join(', ')}`
              : '',
            r.discarded?.length
              ? `nested repositories removed unsaved (--discard-nested): ${r.discarded.join(', ')}`
              : '',
            r.pendingReset
              ? `services not reset (${r.pendingReset}): queued; the slot is not handed out before the next acquire or \`pool doctor --fix\` resets them`
              : '',
          ]
            .filter(Boolean)
            .join('\n'),
        );
      },
    },
    {
      name: 'heartbeat',
      summary: 'renew a lease',
      args: SLOT_AGENT,
      options: [TOKEN_OPTION],
      async run(ctx) {
        const slot = String(ctx.args.slot);
        const r = await open(ctx).heartbeat({
          slot,
          agent: String(ctx.args.agent),
          token: heldToken(ctx.opts.token, slot),
        });
        ctx.out.result(r, `${r.slot} renewed until ${r.expiresAt}`);
      },
    },
    {
      name: 'run',
      summary:
        'acquire, run CMD in the worktree with its env, heartbeat while it runs, release (always)',
      args: [
        ...AGENT_TASK,
        { name: 'command', rest: true, description: 'the command and its arguments, after --' },
      ],
      options: LEASE_OPTIONS,
      async run(ctx) {
        const { runInSlot } = await import('./run.js');
        const pool = open(ctx);
        const r = await runInSlot(
          pool,
          {
            ...leaseArgs(ctx),
            command: ctx.args.command as string[],
            stdout: ctx.json ? 'stderr' : 'inherit',
          },
          ctx.out,
        );
        ctx.out.result(
          {
            slot: r.lease.slot,
            branch: r.lease.branch,
            exitCode: r.exitCode,
            signal: r.signal,
            rescueRef: r.rescueRef,
            kept: r.kept,
          },
          '',
        );
        return r.exitCode;
      },
    },
    {
      name: 'logs',
      summary: 'the last output of the command `pool run` runs in that slot',
      args: [{ name: 'slot', description: 'slot id, e.g. wt-1' }],
      options: [
        {
          name: 'follow',
          type: 'boolean',
          description: 'keep printing what is appended (Ctrl-C stops)',
        },
        {
          name: 'setup',
          type: 'boolean',
          description: "the slot's pool.setup output instead (every run, with its exit code)",
        },
      ],
      async run(ctx) {
        const { readLeaseLog, followLeaseLog, leaseLogPath } = await import('./lease-log.js');
        const { stateDir } = open(ctx).repo;
        const slot = String(ctx.args.slot);
        if (ctx.opts.setup === true) {
          leaseLogPath(stateDir, slot); // checks the slot id
          const { setupLogFile } = await import('@wtpool/services');
          const file = setupLogFile(stateDir, slot);
          const { readFile } = await import('node:fs/promises');
          const parts = await Promise.all(
            [`${file}.1`, file].map((f) => readFile(f, 'utf8').catch(() => null)),
          );
          if (parts.every((p) => p === null))
            throw notFoundError(`no pool.setup log for ${slot}`, {
              hint: 'setup runs when pool.setup is configured (docs/pool.md)',
            });
          const text = parts.map((p) => p ?? '').join('');
          ctx.out.result({ slot, log: text }, () => text.replace(/\n$/, ''));
          return;
        }
        const text = await readLeaseLog(stateDir, slot);
        if (text === null && ctx.opts.follow !== true)
          throw notFoundError(`no \`pool run\` log for ${slot}`, {
            hint: 'only `pool run` keeps its command output; see `pool status`',
          });
        ctx.out.result({ slot, log: text ?? '' }, () => (text ?? '').replace(/\n$/, ''));
        if (ctx.opts.follow === true && !ctx.json) {
          const stop = new AbortController();
          process.once('SIGINT', () => stop.abort());
          process.once('SIGTERM', () => stop.abort());
          await followLeaseLog(stateDir, slot, (t) => process.stdout.write(t), stop.signal);
        }
      },
    },
    {
      name: 'status',
      aliases: ['list'],
      summary: 'slots, leases, queue, capacity',
      options: [
        {
          name: 'fleet',
          type: 'boolean',
          description: 'every host of the fleet, its slots and leases (store.backend redis)',
        },
      ],
      async run(ctx) {
        if (ctx.opts.fleet === true) return fleetCommand(open(ctx), ctx);
        const s = await open(ctx).getStatus();
        ctx.out.result(s, () => formatStatus(s));
      },
    },
    {
      name: 'scale status',
      summary:
        'worktree pool min/max/size and the Redis band floor/step/current/used/free/physical_max',
      async run(ctx) {
        const s = await open(ctx).getStatus({ sweep: false });
        const value = {
          pool: {
            min: s.pool.min,
            max: s.pool.max,
            size: s.pool.size,
            ready: s.pool.ready,
            leased: s.pool.leased,
          },
          capacity: s.capacity,
        };
        ctx.out.result(value, () => {
          const c = s.capacity as Record<string, number> | null;
          const warning = (s.capacity as { warning?: string } | null)?.warning;
          return [
            `worktrees: ${s.pool.size} (min ${s.pool.min}, max ${s.pool.max}), ${s.pool.ready} ready, ${s.pool.leased} leased`,
            c
              ? `redis band: floor ${c.floor}, step ${c.step}, current ${c.current}, used ${c.used}, free ${c.free}, physical max ${c.physical_max}`
              : 'redis: not configured',
            ...(warning ? [`warning: ${warning}`] : []),
          ].join('\n');
        });
      },
    },
    {
      name: 'scale out',
      aliases: ['scale-up'],
      summary: 'grow the pool by scale.step now (up to scale.max)',
      async run(ctx) {
        const r = await open(ctx).scaleOut();
        ctx.out.result(r, `added ${r.added.join(', ')}; ${r.size} slots`);
      },
    },
    {
      name: 'scale in',
      aliases: ['scale-down'],
      summary: 'retire up to scale.step ready slots above scale.min now',
      async run(ctx) {
        const r = await open(ctx).scaleIn();
        ctx.out.result(r, () =>
          [
            r.removed.length
              ? `retired ${r.removed.join(', ')}`
              : r.failed.length
                ? ''
                : 'nothing to retire',
            r.failed.length
              ? `not removed (broken: its work could not be saved, see \`pool status\`): ${r.failed.join(', ')}`
              : '',
            `${r.size} slots`,
          ]
            .filter(Boolean)
            .join('; '),
        );
        // A slot that could not be retired is a refusal (its files stay), not a success.
        return r.failed.length ? ExitCode.CONFLICT : ExitCode.OK;
      },
    },
    {
      name: 'scale',
      summary: 'with --provision: raise Redis `databases` to N with exactly one restart',
      options: [
        {
          name: 'provision',
          type: 'boolean',
          description:
            'raise the physical Redis ceiling (rewrites the config, restarts Redis once)',
        },
        {
          name: 'target',
          type: 'int',
          value: 'N',
          min: 1,
          description: 'databases to provision (default: redis.provisionTarget)',
        },
        { name: 'yes', type: 'boolean', description: 'do not ask for confirmation' },
      ],
      async run(ctx) {
        if (ctx.opts.provision !== true) {
          throw usageError('`pool scale` needs a subcommand or --provision', {
            hint: 'pool scale status | out | in | --provision [--target N] [--yes]',
          });
        }
        const pool = open(ctx);
        const { provisionRedis } = await import('@wtpool/services');
        const r = await provisionRedis(pool.loaded, {
          target: num(ctx.opts.target),
          yes: ctx.opts.yes === true,
          // A question on stdin would corrupt a JSON pipeline: never ask in JSON mode or off a terminal.
          interactive: !ctx.json && !!process.stdin.isTTY && !!process.stderr.isTTY,
          out: ctx.out,
          event: (type, details) => pool.event(type, details),
        });
        ctx.out.result(
          r,
          r.restarted
            ? `redis databases ${r.before} → ${r.after} (restarted once)`
            : `redis already has ${r.after} databases; nothing to do`,
        );
      },
    },
    {
      name: 'refresh',
      summary:
        'bring every ready slot to the latest base (reset, caches kept, services re-provisioned)',
      async run(ctx) {
        const r = await open(ctx).refresh();
        ctx.out.result(
          r,
          `refreshed ${r.refreshed.length} slot(s)${r.refreshed.length ? ': ' + r.refreshed.join(', ') : ''}`,
        );
      },
    },
    {
      name: 'prune',
      summary:
        'repair drift: orphan worktrees, stale lease files, expired leases, missing worktrees',
      async run(ctx) {
        return doctorCommand(ctx, true);
      },
    },
    {
      name: 'doctor',
      summary: 'find drift between state, git and services; --fix repairs it',
      options: [
        {
          name: 'fix',
          type: 'boolean',
          description: 'repair what is found (work is saved to rescue refs first)',
        },
      ],
      async run(ctx) {
        return doctorCommand(ctx, ctx.opts.fix === true);
      },
    },
    {
      name: 'snapshot',
      summary: 'registry snapshot JSON, including the capacity block',
      async run(ctx) {
        const s = await open(ctx).snapshot();
        ctx.out.result(s, () => JSON.stringify(s, null, 2));
      },
    },
    ...AGENT_COMMANDS,
    ...RESCUE_COMMANDS,
  ],
};

async function doctorCommand(ctx: CommandContext, fix: boolean): Promise<number> {
  const r = await open(ctx).doctor({ fix });
  ctx.out.result(r, () =>
    r.problems.length
      ? r.problems
          .map(
            (p) =>
              `${p.fixed ? 'fixed' : 'found'}  ${p.kind}  ${p.slot ?? p.path ?? ''}  ${p.detail}`,
          )
          .join('\n') +
        (r.ok
          ? ''
          : fix
            ? '\nsome problems need a human (see above)'
            : '\nrun `pool doctor --fix` to repair')
      : 'no drift found',
  );
  return r.ok ? ExitCode.OK : ExitCode.FAILURE;
}

export function main(argv: string[]): Promise<number> {
  return runCli(spec, argv);
}
