/**
 * The pool alerts of `monitor status` and the dashboard, on a real pool with an injected clock:
 * exhausted with waiters past 5 minutes, a lease held past `monitor.leaseAlertAfter`, a stale
 * heartbeat.
 */
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, type LoadedConfig } from '@wtpool/config';
import { WorktreePool } from '@wtpool/pool';
import { makeTempRepo, PROJECT_ROOT, runCli, type TempRepo, until } from '@wtpool/testkit';
import { collectHealth } from './health.js';

const POOL = path.join(PROJECT_ROOT, 'packages/pool/bin/pool.js');
const MONITOR = path.join(PROJECT_ROOT, 'packages/monitor/bin/monitor.js');
const MIN = 60_000;

describe('pool alerts with an injected clock', () => {
  let repo: TempRepo;
  let loaded: LoadedConfig;
  let pool: WorktreePool;
  let acquiredAt: number;
  let waiter: ReturnType<typeof spawn> | undefined;

  beforeAll(async () => {
    repo = await makeTempRepo();
    await fs.writeFile(
      path.join(repo.dir, 'pool.config.yaml'),
      'scale:\n  min: 1\n  max: 1\nmonitor:\n  leaseAlertAfter: 20m\n',
    );
    loaded = loadConfig({ repo: repo.dir });
    pool = new WorktreePool(loaded);
    await pool.initialize({ size: 1 });
    const lease = await pool.lease({ agent: 'agent-1', task: 'long task' });
    acquiredAt = Date.parse(lease.acquiredAt);
    // A real second process waits for the only slot.
    waiter = spawn(
      process.execPath,
      [POOL, 'acquire', 'agent-2', 'task-2', '--wait', '--timeout', '10m', '--repo', repo.dir],
      { cwd: repo.dir, stdio: 'ignore' },
    );
    // Wait for its ticket (no time limit of our own: the hook timeout bounds it).
    await until('the waiter is queued', async () => (await pool.readState()).queue.length === 1);
  }, 60_000);

  afterAll(async () => {
    if (waiter && waiter.exitCode === null) {
      const gone = new Promise((r) => waiter!.once('exit', r));
      waiter.kill('SIGTERM');
      await gone;
    }
    await repo?.cleanup();
  });

  const poolAlerts = async (now: number, since?: number | null) =>
    (await collectHealth(loaded, { now, exhaustedSince: since ?? null })).alerts
      .filter((a) => a.check === 'pool')
      .map((a) => a.message);

  it('no alert right after the acquire', async () => {
    expect(await poolAlerts(acquiredAt + 1000)).toEqual([
      expect.stringContaining('1 waiting with the pool at its max of 1 slots'),
    ]);
  });

  it('fires when the pool has been exhausted with waiters for more than 5 minutes', async () => {
    const enqueued = Date.parse((await pool.readState()).queue[0]!.enqueuedAt);
    const at4 = await poolAlerts(enqueued + 4 * MIN);
    expect(at4.some((m) => m.includes('no free slot'))).toBe(false);
    const at6 = await poolAlerts(enqueued + 6 * MIN);
    expect(at6).toContainEqual(expect.stringMatching(/no free slot for 6m.* with 1 waiting/));
    // Samples that say the exhaustion began earlier than the waiter count from then.
    const h = await collectHealth(loaded, {
      now: enqueued + 2 * MIN,
      exhaustedSince: enqueued - 5 * MIN,
    });
    expect(h.pool!.exhaustedForMs).toBe(7 * MIN);
    expect(h.level).toBe('warning');
  });

  it('fires on a lease held past leaseAlertAfter, and on a stale heartbeat', async () => {
    expect((await poolAlerts(acquiredAt + 19 * MIN)).some((m) => m.includes('old'))).toBe(false);
    expect(await poolAlerts(acquiredAt + 21 * MIN)).toContainEqual(
      'wt-1: lease of agent-1 on "long task" is 21m00s old',
    );
    // Default ttl 2 h: no heartbeat for more than half of it is stale.
    const late = await poolAlerts(acquiredAt + 61 * MIN);
    expect(late).toContainEqual(
      expect.stringMatching(/^wt-1: no heartbeat from agent-1 for 1h01m/),
    );
    expect((await poolAlerts(acquiredAt + 59 * MIN)).some((m) => m.includes('no heartbeat'))).toBe(
      false,
    );
  });

  it('monitor status exits 20 with the old-lease alert (leaseAlertAfter 0s)', async () => {
    await fs.writeFile(
      path.join(repo.dir, 'alert.yaml'),
      'scale:\n  min: 1\n  max: 1\nmonitor:\n  leaseAlertAfter: 0s\n',
    );
    const r = await runCli(
      MONITOR,
      ['status', '--json', '--config', 'alert.yaml', '--repo', repo.dir],
      { cwd: repo.dir },
    );
    expect(r.code).toBe(20);
    const alerts = r.json<{ alerts: Array<{ message: string }> }>().alerts.map((a) => a.message);
    expect(alerts).toContainEqual(
      expect.stringContaining('wt-1: lease of agent-1 on "long task" is'),
    );
  });
});
