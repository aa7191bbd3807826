import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '@wtpool/config';
import { WorktreePool } from '@wtpool/pool';
import { makeTempRepo, type TempRepo, until } from '@wtpool/testkit';
import { collectHealth } from './health.js';
import { buildReport } from './report.js';

describe('health: the pool section and holder processes', () => {
  let repo: TempRepo;
  afterAll(async () => {
    await repo?.cleanup();
  });

  it('reports old leases, the holder against its own descriptor limit, and per-slot disk', async () => {
    repo = await makeTempRepo();
    await fs.writeFile(
      path.join(repo.dir, 'pool.config.yaml'),
      'monitor:\n  leaseAlertAfter: 1ms\n  thresholds:\n    FD_WARN_PCT: 1\n',
    );
    const loaded = loadConfig({ repo: repo.dir });
    const pool = new WorktreePool(loaded);
    await pool.initialize({ size: 2 });
    // A holder with 150 descriptors allowed and a few open: 2–4 % of its limit ≥ FD_WARN_PCT 1.
    const holder = spawn('sh', ['-c', 'ulimit -n 150; exec sleep 600'], { stdio: 'ignore' });
    try {
      // Its limit is set once the shell has become `sleep`.
      await until(
        'the holder runs sleep',
        async () =>
          (await fs.readFile(`/proc/${holder.pid}/comm`, 'utf8').catch(() => '')).trim() ===
          'sleep',
      );
      const lease = await pool.lease({
        agent: 'agent-h',
        task: 'health',
        holderPid: holder.pid!,
        wait: false,
      });
      await repo.write('big.bin', 'z'.repeat(50_000), lease.path);
      // leaseAlertAfter is 1 ms: the lease is old once a millisecond has passed since it began.
      await until(
        'the lease is older than leaseAlertAfter',
        () => Date.now() > Date.parse(lease.acquiredAt) + 1,
      );

      const h = await collectHealth(loaded);
      expect(h.pool).toMatchObject({ size: 2, leased: 1, ready: 1, waiters: 0, broken: [] });
      expect(h.pool!.old.map((l) => l.slot)).toEqual([lease.slot]);
      expect(h.fds.holders).toEqual([
        expect.objectContaining({ slot: lease.slot, pid: holder.pid, limit: 150 }),
      ]);
      expect(h.level).toBe('warning');
      expect(h.alerts.map((a) => a.check).sort()).toEqual(['fds', 'pool']);
      expect(h.alerts.find((a) => a.check === 'fds')!.message).toContain(`pid ${holder.pid}`);

      const r = await buildReport(loaded);
      const row = r.slots.find((s) => s.id === lease.slot)!;
      expect(row).toMatchObject({ state: 'leased', agent: 'agent-h', holderPid: holder.pid });
      expect(row.diskBytes).toBeGreaterThan(50_000);
      expect(r.worktrees.find((w) => w.name === lease.slot)!.slot).toBe(lease.slot);
    } finally {
      holder.kill('SIGKILL');
    }
  });
});
