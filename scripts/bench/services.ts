/**
 * `pnpm bench services`: per-slot services against what they replace, measured in the same run
 * with interleaved rounds (medians):
 *   1. slot database clone (CREATE DATABASE … TEMPLATE) vs running the migrations directly;
 *   2. a ready slot with dependencies for this repository (worktree + hard-link clone + hooks)
 *      vs `git worktree add` + `pnpm install --offline`;
 *   3. extra disk per slot, hard links counted once (du), vs the main node_modules;
 *   4. release with DB reset + Redis flush;
 *   5. the Redis client on the lease path: raw RESP vs ioredis, per process, vs `node -e 0`;
 *   6. band lease+release overhead with the state dir on disk vs tmpfs.
 * Env: BENCH_ROUNDS (default 5), BENCH_DEPS_ROUNDS (default 3).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, slotNames } from '@wtpool/config';
import {
  armHooks,
  cloneDatabase,
  createProviders,
  ensureTemplate,
  installDeps,
  leaseSlot,
  redisPipeline,
  releaseSlot,
  withAdmin,
} from '@wtpool/services';
import { GIT_ENV as TEST_GIT_ENV, startPostgres, startRedis } from '@wtpool/testkit';
import { fmtMs, interleave, median, report, scratch, time, type Row } from './harness.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SERVICES = path.join(ROOT, 'packages/services');
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const DEPS_ROUNDS = Number(process.env.BENCH_DEPS_ROUNDS ?? 3);
const GIT_ENV = { ...process.env, ...TEST_GIT_ENV };
const git = (cwd: string, ...args: string[]) =>
  execFileSync('git', args, { cwd, env: GIT_ENV, encoding: 'utf8', stdio: 'pipe' });
const lease = { agent: 'bench', task: 'bench', token: 1 };

/** A migration of realistic size: 40 tables with indexes and a few seed rows. */
function schemaSql(): string {
  const out: string[] = [];
  for (let i = 0; i < 40; i++) {
    out.push(
      `CREATE TABLE t${i} (id bigserial PRIMARY KEY, name text NOT NULL, created_at timestamptz DEFAULT now(), payload jsonb);`,
      `CREATE INDEX t${i}_name ON t${i} (name);`,
      `INSERT INTO t${i} (name) SELECT 'row' || g FROM generate_series(1, 50) g;`,
    );
  }
  return out.join('\n') + '\n';
}

const ratio = (a: number, b: number) => a / b;

function ctxFor(loaded: ReturnType<typeof loadConfig>, n: number) {
  const names = slotNames(loaded.config, loaded.repo, n);
  mkdirSync(names.path, { recursive: true });
  return {
    config: loaded.config,
    repo: loaded.repo,
    names,
    event: async () => {},
    progress: () => {},
    warn: () => {},
  };
}

/** A temp repo with pool.config.yaml (JSON) and the migration files. */
function tempRepo(config: object, tmpfs = false): string {
  const dir = path.join(scratch('services-repo', tmpfs), 'repo');
  mkdirSync(path.join(dir, 'db'), { recursive: true });
  git(dir, 'init', '-q', '-b', 'main');
  writeFileSync(path.join(dir, 'db/001.sql'), schemaSql());
  writeFileSync(path.join(dir, 'pool.config.yaml'), JSON.stringify(config));
  git(dir, 'add', '-A');
  git(dir, 'commit', '-qm', 'init');
  return dir;
}

async function databaseRows(pgUrl: string, redisUrl: string): Promise<Row[]> {
  const migrate = 'psql -q -v ON_ERROR_STOP=1 "$DATABASE_URL" -f db/001.sql';
  const dir = tempRepo({
    postgres: { url: pgUrl, dbPrefix: 'bench', migrate, migrations: 'db/*.sql' },
    redis: { url: redisUrl },
    deps: { strategy: 'none' },
  });
  const loaded = loadConfig({ repo: dir });
  const providers = await createProviders(loaded);
  const ctx = ctxFor(loaded, 1);
  await leaseSlot(providers, ctx, lease); // builds the template once
  const tpl = await ensureTemplate(loaded);
  const direct = () =>
    withAdmin(pgUrl, async (c) => {
      await c.query('DROP DATABASE IF EXISTS bench_direct WITH (FORCE)');
      await c.query('CREATE DATABASE bench_direct');
      const r = spawnSync('sh', ['-c', migrate], {
        cwd: dir,
        env: { ...process.env, DATABASE_URL: pgUrl.replace(/\/postgres$/, '/bench_direct') },
      });
      if (r.status !== 0) throw new Error(String(r.stderr));
    });
  const clone = () => withAdmin(pgUrl, (c) => cloneDatabase(c, 'bench_wt9', tpl.name, 5));
  const s = await interleave(ROUNDS, { clone, direct });
  // Release = DB reset + FLUSHDB of the slot's Redis DB (with a key and a row to clean).
  const release: number[] = [];
  for (let i = 0; i < ROUNDS * 2; i++) {
    const env = await leaseSlot(providers, ctx, lease);
    await withAdmin(env.DATABASE_URL!, (c) => c.query("INSERT INTO t0 (name) VALUES ('x')"));
    release.push(await time(() => releaseSlot(providers, ctx)));
  }
  const [c, d] = [median(s.clone!), median(s.direct!)];
  return [
    {
      what: 'slot DB clone (CREATE DATABASE … TEMPLATE)',
      value: fmtMs(c),
      baseline: `${fmtMs(d)} (create + run migrations)`,
      ratio: ratio(c, d),
      goal: '< 1×',
    },
    {
      what: 'release: DB reset (drop FORCE + clone) + FLUSHDB + band free',
      value: fmtMs(median(release)),
      baseline: `${fmtMs(d)} (migrations)`,
      ratio: ratio(median(release), d),
      goal: 'median ≤ 1 s',
    },
  ];
}

function duKiB(...paths: string[]): number {
  // du counts a hard-linked inode once across all its arguments; -s per argument, summed.
  const out = execFileSync('du', ['-sk', ...paths], { encoding: 'utf8' });
  return out
    .trim()
    .split('\n')
    .reduce((sum, l) => sum + Number(l.split('\t')[0]), 0);
}

async function depsRows(): Promise<Row[]> {
  const sandbox = scratch('services-deps');
  const main = path.join(sandbox, 'repo');
  git(sandbox, 'clone', '-q', '--no-hardlinks', ROOT, main);
  const pnpm = (cwd: string) =>
    execFileSync('pnpm', ['install', '--offline', '--frozen-lockfile', '--ignore-scripts'], {
      cwd,
      stdio: 'pipe',
    });
  pnpm(main);
  // A husky-style layout (relative, git-ignored core.hooksPath): the case armHooks exists for.
  // This repository no longer has one (gates install, D40), so the bench makes it.
  mkdirSync(path.join(main, 'hooks/_'), { recursive: true });
  writeFileSync(path.join(main, 'hooks/_/.gitignore'), '*\n');
  writeFileSync(path.join(main, 'hooks/_/pre-commit'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
  git(main, 'config', 'core.hooksPath', 'hooks/_');
  let n = 0;
  const worktrees: string[] = [];
  const add = () => {
    const wt = path.join(sandbox, `wt-${++n}`);
    git(main, 'worktree', 'add', '-q', '--no-track', '-b', `b${n}`, wt, 'HEAD');
    worktrees.push(wt);
    return wt;
  };
  const s = await interleave(DEPS_ROUNDS, {
    pool: async () => {
      const wt = add();
      const r = await installDeps(main, wt, { strategy: 'auto', command: null });
      if (r.strategy !== 'hardlink') throw new Error(`expected hardlink, got ${r.strategy}`);
      await armHooks(main, wt);
    },
    pnpm: () => pnpm(add()),
  });
  const mainKiB = duKiB(path.join(main, 'node_modules'));
  const [poolWt, pnpmWt] = [worktrees[0]!, worktrees[1]!];
  const nmDirs = (wt: string) =>
    git(wt, 'ls-files', '--', 'package.json', ':(glob)**/package.json')
      .trim()
      .split('\n')
      .map((f) => path.join(wt, path.dirname(f), 'node_modules'))
      .filter((p) => spawnSync('test', ['-e', p]).status === 0);
  const mainAll = duKiB(...nmDirs(main));
  const extra = (wt: string) => duKiB(...nmDirs(main), ...nmDirs(wt)) - mainAll;
  const [poolExtra, pnpmExtra] = [extra(poolWt), extra(pnpmWt)];
  for (const wt of worktrees) git(main, 'worktree', 'remove', '--force', wt);
  rmSync(sandbox, { recursive: true, force: true });
  const [p, q] = [median(s.pool!), median(s.pnpm!)];
  return [
    {
      what: 'ready slot for this repo: worktree add + hard-link node_modules + hooks',
      value: fmtMs(p),
      baseline: `${fmtMs(q)} (worktree add + pnpm install --offline)`,
      ratio: ratio(p, q),
      goal: '≤ 0.5×',
    },
    {
      what: 'extra disk per slot, hard links counted once',
      value: `${poolExtra} KiB`,
      baseline: `${mainKiB} KiB main node_modules (pnpm --offline slot: ${pnpmExtra} KiB)`,
      ratio: ratio(poolExtra, mainKiB),
      goal: '≤ 0.10×',
    },
  ];
}

async function clientRows(redisUrl: string): Promise<Row[]> {
  const port = new URL(redisUrl).port;
  const ioredisPath = createRequire(path.join(SERVICES, 'package.json')).resolve('ioredis');
  // The raw client's own public entry point (@wtpool/services/resp), as a fresh process loads it.
  const resp = createRequire(path.join(SERVICES, 'package.json')).resolve('@wtpool/services/resp');
  const node = (code: string) => () =>
    execFileSync(process.execPath, ['--input-type=module', '-e', code], { stdio: 'pipe' });
  const s = await interleave(ROUNDS * 2, {
    bare: node('0'),
    raw: node(
      `const m = await import(${JSON.stringify(resp)}); await m.redisPipeline('redis://127.0.0.1:${port}', [['PING']]);`,
    ),
    ioredis: node(
      `const { default: R } = await import(${JSON.stringify(ioredisPath)}); const r = new R(${port}); await r.ping(); r.disconnect();`,
    ),
  });
  const [b, r, i] = [median(s.bare!), median(s.raw!), median(s.ioredis!)];
  return [
    {
      what: 'process: node + raw RESP PING (lease path)',
      value: fmtMs(r),
      baseline: `${fmtMs(b)} (node -e 0)`,
      ratio: ratio(r, b),
    },
    {
      what: 'process: node + ioredis PING',
      value: fmtMs(i),
      baseline: `${fmtMs(b)} (node -e 0)`,
      ratio: ratio(i, b),
    },
  ];
}

async function bandRows(redisUrl: string): Promise<Row[]> {
  const cycle = async (tmpfs: boolean) => {
    const dir = tempRepo(
      { redis: { url: redisUrl, bandStart: 30 }, deps: { strategy: 'none' } },
      tmpfs,
    );
    const loaded = loadConfig({ repo: dir });
    const providers = (await createProviders(loaded)).filter((p) => p.name === 'redis');
    const ctx = ctxFor(loaded, 1);
    return async () => {
      await leaseSlot(providers, ctx, lease);
      await releaseSlot(providers, ctx);
    };
  };
  const [disk, shm] = [await cycle(false), await cycle(true)];
  const ping = () => redisPipeline(redisUrl, [['PING']]);
  const s = await interleave(ROUNDS * 10, { disk, shm, ping });
  const [d, t, p] = [median(s.disk!), median(s.shm!), median(s.ping!)];
  return [
    {
      what: 'band lease + release (3 round trips, 2 locked store updates), disk',
      value: fmtMs(d),
      baseline: `${fmtMs(p)} (one PING round trip)`,
      ratio: ratio(d, p),
    },
    {
      what: 'band lease + release, state on tmpfs',
      value: fmtMs(t),
      baseline: `${fmtMs(p)} (one PING round trip)`,
      ratio: ratio(t, p),
    },
  ];
}

export async function run(): Promise<void> {
  const [redis, pg] = await Promise.all([startRedis({ databases: 64 }), startPostgres()]);
  try {
    const rows = [
      ...(await databaseRows(pg.url, redis.url)),
      ...(await depsRows()),
      ...(await clientRows(redis.url)),
      ...(await bandRows(redis.url)),
    ];
    report('services', rows);
  } finally {
    await Promise.all([redis.stop(), pg.stop()]);
  }
}
