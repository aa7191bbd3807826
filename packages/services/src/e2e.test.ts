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
  type PostgresServer,
  type TempRepo,
} from '@wtpool/testkit';
import { redisPipeline } from './resp.js';
import { uniquePrefix } from './fixture.testutil.js';

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
      pool: { leased: number };
      capacity: { used: number };
    }>();
    expect(st.pool.leased).toBe(0);
    expect(st.capacity.used).toBe(0);
    await server.start();

    // The pool marked wt-1 broken (its reset could not reach PostgreSQL); a waiting acquire
    // grows the pool instead and gets a fresh slot.
    const r = await pool('acquire', 'agent-1', 'task-1', '--timeout', '60s', '--json');
    expect(r.code, r.stderr).toBe(0);
    const a = r.json<Acquired>();
    const n = Number(a.slot.slice(3));
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
