/** `monitor`: resource health, leak detection and cleanup, daemon. Thin: parse, call, print. */
import { runCli, type CliSpec, type CommandContext } from '@wtpool/core';
import { loadConfig } from '@wtpool/config';

/** detect-leaks exits like a warning when it finds any (thresholds.ts EXIT_WARNING). */
const LEAKS_FOUND = 20;

// Each command loads its modules when it runs: `--help` and cheap commands stay fast.
const load = (ctx: CommandContext) => loadConfig({ repo: ctx.repo, config: ctx.config });

export const spec: CliSpec = {
  bin: 'monitor',
  summary: 'Resource monitor of the worktree pool: health, leaks, cleanup, daemon',
  footer:
    'Exit codes: 0 ok · 20 warning · 21 error (status) · 1 failure · 2 usage · 3 config · 5 conflict · 6 service down.\nDocs: docs/monitor.md',
  commands: [
    {
      name: 'status',
      summary:
        'one-screen health: DB connections, file descriptors, disk, Redis, pool (exit 0/20/21)',
      options: [
        {
          name: 'fresh',
          type: 'boolean',
          description:
            "measure disk now, not from the daemon's latest sample (used when younger than 2 intervals)",
        },
      ],
      async run(ctx) {
        const loaded = load(ctx);
        const [{ collectHealth }, { daemonStatus, recentDisk }, { formatStatus }, { exitCodeFor }] =
          await Promise.all([
            import('./health.js'),
            import('./daemon.js'),
            import('./format.js'),
            import('./thresholds.js'),
          ]);
        const daemon = await daemonStatus(loaded);
        const disk = ctx.opts.fresh === true ? null : await recentDisk(loaded, daemon);
        const health = await collectHealth(loaded, { disk });
        ctx.out.result({ ...health, daemon }, () => formatStatus(health, daemon));
        return exitCodeFor(health.level);
      },
    },
    {
      name: 'report',
      summary: 'detailed per-slot, per-database and per-worktree report',
      async run(ctx) {
        const { buildReport, formatReport } = await import('./report.js');
        const report = await buildReport(load(ctx));
        ctx.out.result(report, () => formatReport(report));
      },
    },
    {
      name: 'detect-leaks',
      summary:
        'list leaks: orphan-db, orphan-redis-db, orphan-worktree, missing-worktree, orphan-branch, stale-lock, expired-lease, zombie-process (exit 20 when any); with store.backend redis, databases and Redis DBs of every host of the fleet',
      async run(ctx) {
        const [{ detectLeaks }, { formatLeaks }] = await Promise.all([
          import('./leaks.js'),
          import('./format.js'),
        ]);
        const report = await detectLeaks(load(ctx));
        for (const s of report.skipped) ctx.out.warn(`${s.check} not checked: ${s.reason}`);
        ctx.out.result(report, () => formatLeaks(report));
        return report.leaks.length ? LEAKS_FOUND : 0;
      },
    },
    {
      name: 'cleanup-leaks',
      summary:
        "fix what detect-leaks lists (in a fleet, other hosts' databases and Redis DBs too, each re-checked first); never deletes unrescued work",
      options: [
        { name: 'dry-run', type: 'boolean', description: 'only say what would be done' },
        {
          name: 'yes',
          type: 'boolean',
          description: 'do not ask for confirmation (required without a terminal)',
        },
      ],
      async run(ctx) {
        const loaded = load(ctx);
        const [
          { detectLeaks },
          { cleanupLeaks, reclaimLostHosts },
          { formatCleanup },
          { confirm },
        ] = await Promise.all([
          import('./leaks.js'),
          import('./cleanup.js'),
          import('./format.js'),
          import('./confirm.js'),
        ]);
        const dryRun = ctx.opts['dry-run'] === true;
        if (!dryRun) await reclaimLostHosts(loaded); // a fleet's silent hosts (cleanup.ts)
        const report = await detectLeaks(loaded);
        for (const s of report.skipped) ctx.out.warn(`${s.check} not checked: ${s.reason}`);
        if (!dryRun && report.leaks.length && ctx.opts.yes !== true) {
          await confirm(
            `fix ${report.leaks.length} leak(s) listed by \`monitor detect-leaks\`?`,
            ctx,
          );
        }
        const result = await cleanupLeaks(loaded, { dryRun, leaks: report.leaks });
        result.skipped = report.skipped;
        ctx.out.result(result, () => formatCleanup(result));
        return result.actions.every((a) => a.ok) ? 0 : 1;
      },
    },
    {
      name: 'start',
      summary: 'start the background daemon (pidfile and JSONL log in the state dir)',
      options: [
        {
          name: 'interval',
          type: 'duration',
          value: 'DUR',
          description: 'time between samples (default: config monitor.interval, 30s)',
        },
      ],
      async run(ctx) {
        const loaded = load(ctx);
        const intervalMs =
          (ctx.opts.interval as number | undefined) ?? loaded.config.monitor.interval;
        const [{ startDaemon }, { daemonLine }] = await Promise.all([
          import('./daemon.js'),
          import('./format.js'),
        ]);
        const st = await startDaemon(loaded, {
          intervalMs,
          repoArg: ctx.repo,
          configArg: ctx.config,
        });
        ctx.out.result(st, `monitor daemon started: ${daemonLine(st)}\nlog: ${st.log}`);
      },
    },
    {
      name: 'serve',
      summary:
        'the live dashboard: / page, /api/status, /api/events, /api/history, /metrics (with store.backend redis: every host of the fleet, host="…" labels, a host filter)',
      options: [
        {
          name: 'port',
          type: 'int',
          value: 'N',
          description: 'port (default 7420; 0: any free port)',
        },
        {
          name: 'host',
          type: 'string',
          value: 'ADDR',
          description:
            'address to bind (default 127.0.0.1); any other than 127.0.0.1, ::1 or localhost requires the token for the page too',
        },
        {
          name: 'token',
          type: 'string',
          value: 'T',
          description:
            'the token every data request and action needs, at least 16 characters (default: WTPOOL_MONITOR_TOKEN, else generated once and kept in the state dir, mode 0600)',
        },
        { name: 'open', type: 'boolean', description: 'open the page in the desktop browser' },
      ],
      async run(ctx) {
        const loaded = load(ctx);
        const { serve } = await import('./serve.js');
        const s = await serve(loaded, {
          port: ctx.opts.port as number | undefined,
          host: ctx.opts.host as string | undefined,
          token: (ctx.opts.token as string | undefined) ?? process.env.WTPOOL_MONITOR_TOKEN ?? null,
        });
        const withToken = `${s.url}?token=${encodeURIComponent(s.token)}`;
        ctx.out.result(
          {
            url: s.url,
            host: s.host,
            port: s.port,
            tokenRequired: s.tokenRequired,
            token: s.token,
          },
          `dashboard: ${withToken}\n` +
            `token (Authorization: Bearer …, for /api/*, /metrics and actions): ${s.token}\n` +
            'Ctrl-C stops it',
        );
        if (ctx.opts.open === true) {
          const { spawn } = await import('node:child_process');
          spawn('xdg-open', [withToken], { stdio: 'ignore', detached: true })
            .on('error', () => ctx.out.warn(`could not open a browser; open ${s.url}`))
            .unref();
        }
        await new Promise<void>((resolve) => {
          const stop = () => resolve();
          process.once('SIGINT', stop);
          process.once('SIGTERM', stop);
        });
        await s.close();
      },
    },
    {
      name: 'stop',
      summary: 'stop the background daemon',
      async run(ctx) {
        const { stopDaemon } = await import('./daemon.js');
        const r = await stopDaemon(load(ctx));
        ctx.out.result(
          r,
          r.stopped
            ? `monitor daemon (pid ${r.pid}) stopped`
            : 'the monitor daemon was not running',
        );
      },
    },
  ],
};

export function main(argv: string[]): Promise<number> {
  return runCli(spec, argv);
}
