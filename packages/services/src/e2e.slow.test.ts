// End to end through the real `pool` CLI (packages/pool/bin/pool.js, built): services wired
// into acquire/release/status/scale.
import { execFile } from 'node:child_process';
import { existsSync, promises as fs, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  GIT_ENV,
  makeTempRepo,
  runCli,
  startPostgres,
  startRedis,
  type PostgresServer,
  type RedisServer,
  type TempRepo,
} from '@wtpool/testkit';
import type { Capacity } from './redis.js';
import { redisInfo, redisPipeline } from './resp.js';
import { uniquePrefix } from './fixtures.testutil.js';

const POOL = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../pool/bin/pool.js');
const execFileP = promisify(execFile);

interface Acquired {
  slot: string;
  path: string;
  envFile: string;
  env: Record<string, string>;
}

async function rows(url: string): Promise<number> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query('SELECT count(*)::int AS n FROM items')).rows[0].n as number;
  } finally {
    await c.end();
  }
}

describe('pool acquire/release with PostgreSQL, Redis, ports, beads and hooks', () => {
  let server: PostgresServer;
  let repo: TempRepo;
  const pool = (...args: string[]) =>
    runCli(POOL, [...args, '--repo', repo.dir], { cwd: repo.dir });
  beforeAll(async () => {
    server = await startPostgres();
    repo = await makeTempRepo({
      files: {
        'hooks/pre-commit': 'grep -qx pass gate.txt\n',
        'gate.txt': 'pass\n',
        '.beads/config.yaml': 'issue-prefix: "demo"\n',
        'db/001.sql': 'CREATE TABLE items (id serial, who text);\n',
      },
    });
    // husky's layout in the main checkout: ignored hooks/_ with shims, relative hooksPath.
    await fs.mkdir(path.join(repo.dir, 'hooks/_'));
    await fs.writeFile(path.join(repo.dir, 'hooks/_/.gitignore'), '*\n');
    await fs.writeFile(
      path.join(repo.dir, 'hooks/_/pre-commit'),
      '#!/usr/bin/env sh\nexec sh -e "$(dirname "$(dirname "$0")")/pre-commit"\n',
      { mode: 0o755 },
    );
    await repo.git(['config', 'core.hooksPath', 'hooks/_']);
    await fs.writeFile(
      path.join(repo.dir, 'pool.config.yaml'),
      JSON.stringify({
        scale: { min: 1, max: 2 },
        postgres: {
          url: server.url,
          dbPrefix: uniquePrefix(),
          migrate: 'psql -q -v ON_ERROR_STOP=1 "$DATABASE_URL" -f db/001.sql',
          migrations: 'db/*.sql',
        },
        redis: { url: inject('redisUrl'), bandStart: 50, floor: 3, step: 2 },
        ports: { base: 44000, stride: 10 },
      }),
    );
  });
  afterAll(async () => {
    await repo?.cleanup();
    await server?.stop();
  });

  it('PostgreSQL down: acquire exits 6 and leaves no lease; up again: acquire works', async () => {
    const init = await pool('init', '--json');
    expect(init.code, init.stderr).toBe(0);
    await server.pause();
    const down = await pool('acquire', 'agent-1', 'task-1', '--no-wait', '--json');
    expect(down.code, down.stderr).toBe(6);
    expect(down.json<{ error: { message: string } }>().error.message).toMatch(
      /PostgreSQL at .* is unreachable/,
    );
    const st = (await pool('status', '--json')).json<{
      pool: { leased: number; broken: number };
      capacity: { used: number };
    }>();
    expect(st.pool).toMatchObject({ leased: 0, broken: 1 });
    expect(st.capacity.used).toBe(0);
    expect(existsSync(path.join(repo.dir, '.git/wtpool/leases/wt-1.json'))).toBe(false);
    await server.start();

    // wt-1 was marked broken (its reset could not reach PostgreSQL): the next acquire, even
    // --no-wait, re-provisions it (database reset from the template) and leases it.
    const r = await pool('acquire', 'agent-1', 'task-1', '--no-wait', '--json');
    expect(r.code, r.stderr).toBe(0);
    const a = r.json<Acquired>();
    expect(a.slot).toBe('wt-1');
    const n = 1;
    expect(a.env).toMatchObject({
      WORKTREE_ID: a.slot,
      REDIS_DB: '50',
      PORT: String(44000 + n * 10),
      BEADS_PREFIX: `demo-${a.slot}`,
    });
    expect(a.env.DATABASE_NAME).toMatch(new RegExp(`_wt${n}$`));
    expect(existsSync(a.envFile)).toBe(true);
    expect(readFileSync(a.envFile, 'utf8')).toContain(`DATABASE_NAME=${a.env.DATABASE_NAME}`);
    const cap = (await pool('status', '--json')).json<{ capacity: unknown }>().capacity;
    expect(cap).toMatchObject({ floor: 3, step: 2, current: 3, used: 1 });

    // Work during the lease: a row, a key, a commit (the armed hook runs and blocks a bad one).
    const c = new pg.Client({ connectionString: a.env.DATABASE_URL });
    await c.connect();
    await c.query("INSERT INTO items (who) VALUES ('agent-1')");
    await c.end();
    await redisPipeline(a.env.REDIS_URL!, [['SET', 'k', 'v']]);
    const env = { ...process.env, ...GIT_ENV };
    await fs.writeFile(path.join(a.path, 'gate.txt'), 'fail\n');
    await execFileP('git', ['add', 'gate.txt'], { cwd: a.path, env });
    await expect(
      execFileP('git', ['commit', '-qm', 'bad'], { cwd: a.path, env }),
    ).rejects.toThrow();
    await execFileP('git', ['checkout', 'HEAD', '--', 'gate.txt'], { cwd: a.path, env });

    const rel = await pool('release', a.slot, 'agent-1', '--json');
    expect(rel.code, rel.stderr).toBe(0);
    expect(await rows(a.env.DATABASE_URL!)).toBe(0);
    const [size] = await redisPipeline(a.env.REDIS_URL!, [['DBSIZE']]);
    expect(size).toBe(0);
    expect((await pool('status', '--json')).json<{ capacity: unknown }>().capacity).toMatchObject({
      used: 0,
      current: 3,
    });
  });
});

/** A temp repo whose pool.config.yaml is `config`, and the pool CLI on it. */
async function poolRepo(config: Record<string, unknown>) {
  const repo = await makeTempRepo();
  await fs.writeFile(path.join(repo.dir, 'pool.config.yaml'), JSON.stringify(config));
  const pool = (...args: string[]) =>
    runCli(POOL, [...args, '--repo', repo.dir], { cwd: repo.dir });
  const events = () =>
    readFileSync(path.join(repo.dir, '.git/wtpool/events.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; from?: number; to?: number });
  const capacity = async () => {
    const r = await pool('status', '--json');
    expect(r.code, r.stderr).toBe(0);
    return r.json<{ capacity: Capacity }>().capacity;
  };
  return { repo, pool, events, capacity };
}

describe('pool CLI with its own Redis (databases 64)', () => {
  let redis: RedisServer;
  const repos: TempRepo[] = [];
  beforeAll(async () => {
    redis = await startRedis({ databases: 64 });
  });
  afterAll(async () => {
    await Promise.all(repos.map((r) => r.cleanup()));
    await redis?.stop();
  });

  it('Redis down: acquire --no-wait exits 6 and leaves no lease; up again: it works', async () => {
    const p = await poolRepo({ scale: { min: 1, max: 1 }, redis: { url: redis.url } });
    repos.push(p.repo);
    expect((await p.pool('init')).code).toBe(0);
    await redis.pause();
    const down = await p.pool('acquire', 'agent-1', 'task-1', '--no-wait', '--json');
    expect(down.code, down.stderr).toBe(6);
    expect(down.json<{ error: { message: string } }>().error.message).toMatch(/Redis/);
    const st = (await p.pool('status', '--json')).json<{ pool: { leased: number } }>();
    expect(st.pool.leased).toBe(0);
    expect(existsSync(path.join(p.repo.dir, '.git/wtpool/leases/wt-1.json'))).toBe(false);
    await redis.start();
    const up = await p.pool('acquire', 'agent-1', 'task-1', '--no-wait', '--json');
    expect(up.code, up.stderr).toBe(0);
    expect(up.json<Acquired>().env.REDIS_DB).toBe('1');
    expect(await p.capacity()).toMatchObject({ used: 1, current: 20, physical_max: 64 });
  });

  it('21 concurrent `pool acquire` grow the band 20 → 30 without a restart; releasing all shrinks it to 20', async () => {
    const p = await poolRepo({ scale: { min: 1, max: 21 }, redis: { url: redis.url } });
    repos.push(p.repo);
    expect((await p.pool('init', '--size', '21')).code).toBe(0);
    const runId = await redisInfo(redis.url, 'run_id');
    const got = await Promise.all(
      Array.from({ length: 21 }, (_, i) =>
        p.pool('acquire', `agent-${i}`, `task-${i}`, '--no-wait', '--json'),
      ),
    );
    for (const r of got) expect(r.code, r.stderr).toBe(0);
    const leases = got.map((r) => r.json<Acquired>());
    const dbs = leases.map((a) => Number(a.env.REDIS_DB)).sort((a, b) => a - b);
    expect(dbs).toEqual(Array.from({ length: 21 }, (_, i) => i + 1));
    expect(p.events().filter((e) => e.type.startsWith('band-'))).toEqual([
      expect.objectContaining({ type: 'band-grow', from: 20, to: 30 }),
    ]);
    const scale = await p.pool('scale', 'status', '--json');
    expect(scale.code, scale.stderr).toBe(0);
    expect(scale.json<{ capacity: Capacity }>().capacity).toEqual({
      floor: 20,
      step: 10,
      current: 30,
      used: 21,
      free: 9,
      physical_max: 64,
    });
    expect(await redisInfo(redis.url, 'run_id')).toBe(runId);

    const released = await Promise.all(
      leases.map((a, i) => p.pool('release', a.slot, `agent-${i}`, '--json')),
    );
    for (const r of released) expect(r.code, r.stderr).toBe(0);
    expect(p.events().filter((e) => e.type === 'band-shrink')).toEqual([
      expect.objectContaining({ from: 30, to: 20 }),
    ]);
    expect(await p.capacity()).toMatchObject({ current: 20, used: 0, free: 20 });
    expect(await redisInfo(redis.url, 'run_id')).toBe(runId);
  });
});

describe('pool CLI past the physical Redis ceiling (databases 4)', () => {
  let redis: RedisServer;
  let repo: TempRepo | undefined;
  beforeAll(async () => {
    redis = await startRedis({ databases: 4 });
  });
  afterAll(async () => {
    await repo?.cleanup();
    await redis?.stop();
  });

  it('acquire exits 7 with the guidance; `scale --provision` refuses without --yes, then restarts once', async () => {
    const p = await poolRepo({
      scale: { min: 4, max: 4 },
      redis: {
        url: redis.url,
        floor: 2,
        step: 1,
        confFile: redis.confFile,
        restartCommand: redis.restartCommand,
      },
    });
    repo = p.repo;
    expect((await p.pool('init')).code).toBe(0);
    for (let i = 1; i <= 3; i++) {
      const r = await p.pool('acquire', `a${i}`, 't', '--no-wait', '--json');
      expect(r.code, r.stderr).toBe(0);
    }
    const past = await p.pool('acquire', 'a4', 't', '--no-wait');
    expect(past.code, past.stderr).toBe(7);
    expect(past.stderr).toMatch(/pool scale --provision/);
    expect(past.stderr).toMatch(/monitor cleanup-leaks/);
    const st = (await p.pool('status', '--json')).json<{
      pool: { leased: number; ready: number };
      capacity: Capacity;
    }>();
    expect(st.pool).toMatchObject({ leased: 3, ready: 1 });
    expect(st.capacity).toEqual({
      floor: 2,
      step: 1,
      current: 3,
      used: 3,
      free: 0,
      physical_max: 4,
    });

    const runId = await redisInfo(redis.url, 'run_id');
    const refused = await p.pool('scale', '--provision', '--target', '8', '--json');
    expect(refused.code, refused.stderr).toBe(2);
    expect(refused.stdout).toMatch(/--yes/);
    expect(await redisInfo(redis.url, 'run_id')).toBe(runId);
    const done = await p.pool('scale', '--provision', '--target', '8', '--yes', '--json');
    expect(done.code, done.stderr).toBe(0);
    expect(done.json()).toMatchObject({ before: 4, after: 8, restarted: true });
    const runId2 = await redisInfo(redis.url, 'run_id');
    expect(runId2).not.toBe(runId);
    const again = await p.pool('scale', '--provision', '--target', '8', '--yes', '--json');
    expect(again.json()).toMatchObject({ restarted: false });
    expect(await redisInfo(redis.url, 'run_id')).toBe(runId2);
    const now = await p.pool('acquire', 'a4', 't', '--no-wait', '--json');
    expect(now.code, now.stderr).toBe(0);
    expect(now.json<Acquired>().env.REDIS_DB).toBe('4');
  });
});
