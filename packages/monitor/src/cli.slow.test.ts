import { promises as fs, existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  makeTempRepo,
  type PostgresServer,
  PROJECT_ROOT,
  runCli,
  startPostgres,
  type TempRepo,
  until,
} from '@wtpool/testkit';
import { pgConnect } from './postgres.js';
import { pidAlive } from '@wtpool/lock';

// --repo always: under `pnpm test` INIT_CWD names the project checkout, not the temp repo.
const BIN = path.join(PROJECT_ROOT, 'packages/monitor/bin/monitor.js');

describe('monitor status thresholds from the environment', () => {
  let repo: TempRepo;
  let pg: PostgresServer;
  const held: Array<{ end(): Promise<void> }> = [];
  beforeAll(async () => {
    // Our own server: connection counts must not include other test files' connections.
    [repo, pg] = await Promise.all([makeTempRepo(), startPostgres()]);
    await fs.writeFile(path.join(repo.dir, 'pool.config.yaml'), `postgres:\n  url: ${pg.url}\n`);
    for (let i = 0; i < 3; i++) held.push(await pgConnect(pg.url));
    // 2 MB in the pool root (the default <repo>.worktrees).
    const root = path.join(repo.sandbox, 'repo.worktrees', 'wt-1');
    await fs.mkdir(root, { recursive: true });
    await fs.writeFile(path.join(root, 'blob'), Buffer.alloc(2_000_000));
  });
  afterAll(async () => {
    await Promise.all(held.map((c) => c.end()));
    await Promise.all([pg?.stop(), repo?.cleanup()]);
  });

  const status = (env: Record<string, string>) =>
    runCli(BIN, ['status', '--json', '--repo', repo.dir], { cwd: repo.dir, env });

  it('exits 0 below the levels, 20 at the warning level, 21 at the error level (connections)', async () => {
    const ok = await status({ DB_CONN_WARN: '4', DB_CONN_ERROR: '5' });
    expect(ok.code).toBe(0);
    expect(ok.json<{ postgres: { total: number } }>().postgres.total).toBe(3);
    const warn = await status({ DB_CONN_WARN: '3', DB_CONN_ERROR: '4' });
    expect(warn.code).toBe(20);
    const w = warn.json<{
      level: string;
      alerts: Array<{ level: string; check: string; value: number; threshold: number }>;
    }>();
    expect(w.level).toBe('warning');
    expect(w.alerts).toEqual([
      expect.objectContaining({ level: 'warning', check: 'postgres', value: 3, threshold: 3 }),
    ]);
    const err = await status({ DB_CONN_WARN: '2', DB_CONN_ERROR: '3' });
    expect(err.code).toBe(21);
    expect(err.json<{ level: string }>().level).toBe('error');
  });

  it('exits 20 and 21 at the disk levels', async () => {
    const first = (await status({})).json<{ disk: { bytes: number } }>();
    const used = first.disk.bytes;
    expect(used).toBeGreaterThanOrEqual(2_000_000);
    expect((await status({ DISK_WARN: String(used + 1), DISK_ERROR: String(used + 2) })).code).toBe(
      0,
    );
    expect((await status({ DISK_WARN: String(used), DISK_ERROR: String(used + 1) })).code).toBe(20);
    const err = await status({ DISK_WARN: String(used - 1), DISK_ERROR: String(used) });
    expect(err.code).toBe(21);
    expect(err.json<{ alerts: Array<{ check: string }> }>().alerts.map((a) => a.check)).toEqual([
      'disk',
    ]);
  });

  it('reports PostgreSQL down as an error (exit 21), with the password redacted', async () => {
    await fs.writeFile(
      path.join(repo.dir, 'down.yaml'),
      'postgres:\n  url: postgres://u:hunter2@127.0.0.1:1/postgres\n',
    );
    const r = await runCli(BIN, ['status', '--config', 'down.yaml', '--repo', repo.dir], {
      cwd: repo.dir,
    });
    expect(r.code).toBe(21);
    expect(r.stdout).toMatch(/postgres\s+DOWN/);
    expect(r.stdout).not.toContain('hunter2');
  });

  it('prints a human screen and --help from the option table', async () => {
    const r = await runCli(BIN, ['status', '--repo', repo.dir], { cwd: repo.dir });
    expect(r.stdout).toMatch(/^monitor status: OK/);
    expect(r.stdout).toMatch(/postgres\s+3 connections of max_connections 300/);
    const help = await runCli(BIN, ['start', '--help']);
    expect(help.stdout).toContain('--interval DUR');
  });
});

describe('monitor daemon', () => {
  let repo: TempRepo;
  beforeAll(async () => {
    repo = await makeTempRepo();
  });
  afterAll(async () => {
    await runCli(BIN, ['stop', '--repo', repo.dir], { cwd: repo.dir });
    await repo.cleanup();
  });

  it('starts detached, refuses a second start, samples, survives SIGHUP and stops leaving no process', async () => {
    const start = await runCli(
      BIN,
      ['start', '--interval', '200ms', '--json', '--repo', repo.dir],
      { cwd: repo.dir },
    );
    expect(start.code).toBe(0);
    const st = start.json<{ running: boolean; pid: number; log: string }>();
    expect(st.running).toBe(true);
    const pid = st.pid;
    expect(pidAlive(pid)).toBe(true);
    // Its own session: no controlling terminal to lose. Field 6 of /proc/<pid>/stat is the session.
    const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
    expect(Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[3])).toBe(pid);
    process.kill(pid, 'SIGHUP'); // what closing the terminal sends

    const second = await runCli(BIN, ['start', '--repo', repo.dir], { cwd: repo.dir });
    expect(second.code).toBe(5);
    expect(second.stderr).toMatch(new RegExp(`already running \\(pid ${pid}`));

    const readLog = async () =>
      (await fs.readFile(st.log, 'utf8').catch(() => ''))
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { type: string; at: string });
    const lines = await until(
      'three samples in the daemon log',
      async () => {
        const ls = await readLog();
        return ls.filter((l) => l.type === 'sample').length >= 3 && ls;
      },
      { everyMs: 100, attempts: 100 },
    );
    expect(lines.filter((l) => l.type === 'sample').length).toBeGreaterThanOrEqual(3);
    expect(pidAlive(pid)).toBe(true);

    const status = (
      await runCli(BIN, ['status', '--json', '--repo', repo.dir], { cwd: repo.dir })
    ).json<{
      daemon: { running: boolean; pid: number; lastSampleAgeMs: number };
      disk: { source: string };
    }>();
    expect(status.daemon).toMatchObject({ running: true, pid });
    // The disk figure comes from the daemon's fresh sample; --fresh measures it again.
    expect(status.disk.source).toBe('daemon');
    const fresh = (
      await runCli(BIN, ['status', '--fresh', '--json', '--repo', repo.dir], { cwd: repo.dir })
    ).json<{ disk: { source: string } }>();
    expect(fresh.disk.source).toBe('live');
    expect(status.daemon.lastSampleAgeMs).toBeGreaterThanOrEqual(0);

    const stop = await runCli(BIN, ['stop', '--json', '--repo', repo.dir], { cwd: repo.dir });
    expect(stop.json()).toEqual({ stopped: true, pid });
    expect(pidAlive(pid)).toBe(false);
    expect(existsSync(path.join(path.dirname(st.log), 'daemon.pid'))).toBe(false);
    const after = (
      await runCli(BIN, ['status', '--json', '--repo', repo.dir], { cwd: repo.dir })
    ).json<{
      daemon: { running: boolean };
    }>();
    expect(after.daemon.running).toBe(false);
  });

  it('of concurrent starts exactly one launches a daemon', async () => {
    const results = await Promise.all(
      [1, 2, 3].map(() =>
        runCli(BIN, ['start', '--interval', '1s', '--json', '--repo', repo.dir], { cwd: repo.dir }),
      ),
    );
    try {
      expect(results.map((r) => r.code).sort()).toEqual([0, 5, 5]);
      const pid = results.find((r) => r.code === 0)!.json<{ pid: number }>().pid;
      expect(pidAlive(pid)).toBe(true);
      for (const r of results.filter((x) => x.code === 5))
        expect(r.stderr).toContain(`already running (pid ${pid}`);
    } finally {
      const stop = await runCli(BIN, ['stop', '--json', '--repo', repo.dir], { cwd: repo.dir });
      expect(stop.json<{ stopped: boolean }>().stopped).toBe(true);
    }
  });
});
