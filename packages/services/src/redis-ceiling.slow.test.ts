/**
 * A stock redis-server has 16 databases; the default band floor is 20 (issue 12). Through the
 * real `pool` CLI (dist/: build first): init, status and scale status say so in one line naming
 * both fixes, the band never claims more than exists, leases still work up to the ceiling, and
 * the warning goes away once the ceiling is raised. Also: an error whose details hold a URL
 * with a password prints it redacted in --json.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempRepo, runCli, startRedis, type RedisServer, type TempRepo } from '@wtpool/testkit';
import type { Capacity } from './redis.js';

const POOL = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../pool/bin/pool.js');

const STOCK_WARNING =
  /^warning: Redis has 16 databases, so the band gets 15 \(DBs 1–15\), below redis\.floor 20: run `pool scale --provision` \(restarts Redis once\) or set redis\.floor to 15 in pool\.config\.yaml$/;

async function poolRepo(config: Record<string, unknown>) {
  const repo = await makeTempRepo();
  await fs.writeFile(path.join(repo.dir, 'pool.config.yaml'), JSON.stringify(config));
  const pool = (...args: string[]) =>
    runCli(POOL, [...args, '--repo', repo.dir], { cwd: repo.dir });
  return { repo, pool };
}

const warningLines = (text: string) =>
  text.split('\n').filter((l) => /Redis has \d+ databases/.test(l));

describe('a stock Redis (databases 16) under the default floor 20', () => {
  let redis: RedisServer;
  const repos: TempRepo[] = [];
  beforeAll(async () => {
    redis = await startRedis({ databases: 16 });
  });
  afterAll(async () => {
    await Promise.all(repos.map((r) => r.cleanup()));
    await redis?.stop();
  });

  it('init, status and scale status warn in one line with both fixes; the band is 15, not 20', async () => {
    const p = await poolRepo({
      scale: { min: 1, max: 1 },
      redis: { url: redis.url, confFile: redis.confFile, restartCommand: redis.restartCommand },
    });
    repos.push(p.repo);

    const init = await p.pool('init');
    expect(init.code, init.stderr).toBe(0);
    expect(warningLines(init.stdout + init.stderr)).toEqual([expect.stringMatching(STOCK_WARNING)]);
    expect(init.stdout).toMatch(/^redis band: 0\/15 used \(floor 15, step 10, physical max 16\)$/m);

    const status = await p.pool('status');
    expect(status.code, status.stderr).toBe(0);
    expect(warningLines(status.stdout + status.stderr)).toEqual([
      expect.stringMatching(STOCK_WARNING),
    ]);
    // The band line claims what exists, not the configured floor.
    expect(status.stdout).toMatch(
      /^redis band: 0\/15 used \(floor 15, step 10, physical max 16\)$/m,
    );

    const scale = await p.pool('scale', 'status');
    expect(scale.code, scale.stderr).toBe(0);
    expect(warningLines(scale.stdout + scale.stderr)).toEqual([
      expect.stringMatching(STOCK_WARNING),
    ]);
    expect(scale.stdout).toMatch(
      /^redis band: floor 15, step 10, current 15, used 0, free 15, physical max 16$/m,
    );

    const json = await p.pool('status', '--json');
    const cap = json.json<{ capacity: Capacity }>().capacity;
    expect(cap).toEqual({
      floor: 15,
      step: 10,
      current: 15,
      used: 0,
      free: 15,
      physical_max: 16,
      warning: expect.stringMatching(/pool scale --provision.*redis\.floor/),
    });

    // Leases still work below the ceiling: the lowest DB of the band.
    const got = await p.pool('acquire', 'agent-1', 'task-1', '--no-wait', '--json');
    expect(got.code, got.stderr).toBe(0);
    expect(got.json<{ env: Record<string, string> }>().env.REDIS_DB).toBe('1');
    const band = JSON.parse(
      await fs.readFile(path.join(p.repo.dir, '.git/wtpool/redis-band.json'), 'utf8'),
    ) as { data: { current: number } };
    expect(band.data.current).toBe(15);

    // The first fix: raise the ceiling; the warning goes and the configured floor applies.
    const raised = await p.pool('scale', '--provision', '--target', '32', '--yes', '--json');
    expect(raised.code, raised.stderr).toBe(0);
    const after = await p.pool('status');
    expect(warningLines(after.stdout + after.stderr)).toEqual([]);
    expect(after.stdout).toMatch(
      /^redis band: 1\/20 used \(floor 20, step 10, physical max 32\)$/m,
    );
  });

  it('the second fix: a redis.floor that fits gives no warning', async () => {
    const fresh = await startRedis({ databases: 16 });
    try {
      const p = await poolRepo({ scale: { min: 1, max: 1 }, redis: { url: fresh.url, floor: 15 } });
      repos.push(p.repo);
      const init = await p.pool('init');
      expect(init.code, init.stderr).toBe(0);
      expect(warningLines(init.stdout + init.stderr)).toEqual([]);
      expect(init.stdout).toMatch(
        /^redis band: 0\/15 used \(floor 15, step 10, physical max 16\)$/m,
      );
    } finally {
      await fresh.stop();
    }
  });

  it('a failing restart command: --json shows its details with the password redacted', async () => {
    const fresh = await startRedis({ databases: 16 });
    try {
      const secret = 's3cret-Pw';
      const p = await poolRepo({
        scale: { min: 1, max: 1 },
        redis: {
          url: fresh.url,
          confFile: fresh.confFile,
          restartCommand: `echo "AUTH failed for redis://default:${secret}@127.0.0.1:1/0" >&2; exit 3`,
        },
      });
      repos.push(p.repo);
      const r = await p.pool('scale', '--provision', '--target', '32', '--yes', '--json');
      expect(r.code, r.stderr).toBe(1);
      expect(r.stdout + r.stderr).not.toContain(secret);
      const { error } = r.json<{
        error: { code: string; details: { command: string; exitCode: number; output: string } };
      }>();
      expect(error.code).toBe('ERR_REDIS_RESTART');
      expect(error.details.exitCode).toBe(3);
      expect(error.details.output).toBe('AUTH failed for redis://default:***@127.0.0.1:1/0\n');
      expect(error.details.command).toContain('redis://default:***@127.0.0.1:1/0');
    } finally {
      await fresh.stop();
    }
  });
});
