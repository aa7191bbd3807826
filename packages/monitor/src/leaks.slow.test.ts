import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadConfig, type LoadedConfig } from '@wtpool/config';
import { pidAlive } from '@wtpool/lock';
import { WorktreePool, readEvents } from '@wtpool/pool';
import {
  makeTempRepo,
  PROJECT_ROOT,
  type RedisServer,
  runCli,
  startRedis,
  type TempRepo,
  until,
} from '@wtpool/testkit';
import { detectLeaks, type Leak } from './leaks.js';
import { withPg } from './postgres.js';
import { redisPipeline } from '@wtpool/services';
import { cleanupLeaks } from './cleanup.js';

// --repo always: under `pnpm test` INIT_CWD names the project checkout, not the temp repo.
const BIN = path.join(PROJECT_ROOT, 'packages/monitor/bin/monitor.js');
const exited = (c: ChildProcess) =>
  new Promise<void>((r) =>
    c.exitCode !== null || c.signalCode !== null ? r() : c.once('exit', () => r()),
  );

describe('leaks: one of each kind, detected once, cleaned up, nothing lost', () => {
  let repo: TempRepo;
  let redis: RedisServer;
  let loaded: LoadedConfig;
  let zombie: ChildProcess;
  const prefix = `ml${process.pid}`;
  let stray: string;
  let strayCommit: string;

  beforeAll(async () => {
    // Our own Redis: the orphan-redis-db check looks at every DB of the server.
    [repo, redis] = await Promise.all([makeTempRepo(), startRedis({ databases: 32 })]);
    await fs.writeFile(
      path.join(repo.dir, 'pool.config.yaml'),
      [
        'scale:',
        '  min: 2',
        '  max: 4',
        'postgres:',
        `  url: ${inject('pgUrl')}`,
        `  dbPrefix: ${prefix}`,
        'redis:',
        `  url: ${redis.url}`,
        '',
      ].join('\n'),
    );
    await repo.commit({
      'pool.config.yaml': await fs.readFile(path.join(repo.dir, 'pool.config.yaml'), 'utf8'),
    });
    loaded = loadConfig({ repo: repo.dir });
    const pool = new WorktreePool(loaded);
    await pool.initialize({ size: 2 });
    const { stateDir } = loaded.repo;

    // expired-lease: a lease whose holder process died.
    const holder = spawn('sleep', ['600'], { stdio: 'ignore' });
    const lease = await pool.lease({
      agent: 'agent-1',
      task: 'task 1',
      holderPid: holder.pid!,
      wait: false,
    });
    holder.kill('SIGKILL');
    await exited(holder);
    const other = lease.slot === 'wt-1' ? 'wt-2' : 'wt-1';
    // missing-worktree: the other (ready) slot's directory is deleted.
    await fs.rm(pool.names(other).path, { recursive: true, force: true });
    // orphan-worktree: a worktree under the pool root the registry does not know, with a
    // commit no ref holds and uncommitted work.
    stray = path.join(path.dirname(pool.names(1).path), 'stray');
    await repo.git(['worktree', 'add', '--detach', '-q', stray, 'main']);
    strayCommit = await repo.commit(
      { 'committed.txt': 'only on a detached HEAD\n' },
      'stray work',
      stray,
    );
    await repo.write('wip.txt', 'uncommitted work\n', stray);
    // orphan-branch: a lease branch without a lease and without commits beyond main; and a
    // branch WITH such commits, which is not a leak.
    await repo.git(['branch', 'pool/wt-9/old-task', 'main']);
    await repo.git(['branch', 'pool/wt-8/has-work', 'main']);
    const wt8 = path.join(repo.sandbox, 'wt8');
    await repo.git(['worktree', 'add', '-q', wt8, 'pool/wt-8/has-work']);
    await repo.commit({ 'work.txt': 'awaiting integration\n' }, 'work', wt8);
    await repo.git(['worktree', 'remove', wt8]);
    // orphan-db: a slot database of a slot that does not exist.
    await withPg(inject('pgUrl'), (c) => c.query(`CREATE DATABASE ${prefix}_wt9`));
    // orphan-redis-db: keys in a band DB no slot holds.
    await redisPipeline(redis.url, [
      ['SELECT', 17],
      ['SET', 'left', 'over'],
    ]);
    // stale-lock: a lock directory 5 minutes old whose recorded holder is dead.
    const lockDir = path.join(stateDir, 'planted.lock');
    await fs.mkdir(lockDir);
    await fs.writeFile(
      path.join(stateDir, 'planted.lock.owner'),
      JSON.stringify({ pid: holder.pid, host: os.hostname(), since: new Date().toISOString() }),
    );
    const old = new Date(Date.now() - 5 * 60_000);
    await fs.utimes(lockDir, old, old);
    // zombie-process: a process started for slot wt-3, which has no lease.
    zombie = spawn('sleep', ['600'], {
      stdio: 'ignore',
      env: { ...process.env, WORKTREE_ID: 'wt-3', POOL_STATE_DIR: stateDir },
    });
  });

  afterAll(async () => {
    if (zombie && pidAlive(zombie.pid!)) zombie.kill('SIGKILL');
    await withPg(inject('pgUrl'), async (c) => {
      const dbs = await c.query<{ datname: string }>(
        `SELECT datname FROM pg_database WHERE datname LIKE '${prefix}\\_%'`,
      );
      for (const { datname } of dbs.rows) {
        await c.query(`ALTER DATABASE "${datname}" IS_TEMPLATE false`);
        await c.query(`DROP DATABASE "${datname}" WITH (FORCE)`);
      }
    }).catch(() => {});
    await Promise.all([redis?.stop(), repo?.cleanup()]);
  });

  it('detect-leaks --json lists each planted leak exactly once with the right kind', async () => {
    const r = await runCli(BIN, ['detect-leaks', '--json', '--repo', repo.dir], { cwd: repo.dir });
    expect(r.code).toBe(20);
    const { leaks, skipped } = r.json<{ leaks: Leak[]; skipped: unknown[] }>();
    expect(skipped).toEqual([]);
    const byKind = Object.fromEntries(leaks.map((l) => [l.kind, l]));
    expect(leaks.map((l) => l.kind).sort()).toEqual(
      [
        'expired-lease',
        'missing-worktree',
        'orphan-branch',
        'orphan-db',
        'orphan-redis-db',
        'orphan-worktree',
        'stale-lock',
        'zombie-process',
      ].sort(),
    );
    expect(byKind['orphan-db']!.id).toBe(`${prefix}_wt9`);
    expect(byKind['orphan-redis-db']!.id).toBe('17');
    expect(byKind['orphan-worktree']!.id).toBe(stray);
    expect(byKind['orphan-worktree']!.evidence).toMatchObject({ dirty: true, exists: true });
    expect(byKind['orphan-branch']!.id).toBe('pool/wt-9/old-task');
    expect(byKind['stale-lock']!.id).toBe(path.join(loaded.repo.stateDir, 'planted.lock'));
    expect(byKind['expired-lease']!.evidence).toMatchObject({
      agent: 'agent-1',
      reason: 'holder-dead',
    });
    expect(byKind['zombie-process']!.id).toBe(String(zombie.pid));
    expect(byKind['zombie-process']!.evidence).toMatchObject({ slot: 'wt-3' });
  });

  it('cleanup-leaks refuses without --yes when there is no terminal, and changes nothing', async () => {
    const r = await runCli(BIN, ['cleanup-leaks', '--repo', repo.dir], { cwd: repo.dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--yes/);
    expect(await repo.git(['branch', '--list', 'pool/wt-9/old-task'])).toContain('old-task');
    expect(pidAlive(zombie.pid!)).toBe(true);
  });

  it('cleanup-leaks --yes fixes all of them, rescues the orphan worktree, logs events; then nothing is left', async () => {
    const r = await runCli(BIN, ['cleanup-leaks', '--yes', '--json', '--repo', repo.dir], {
      cwd: repo.dir,
    });
    const res = r.json<{
      actions: Array<{ kind: string; ok: boolean; rescueRef?: string; error?: string }>;
    }>();
    expect(res.actions.filter((a) => !a.ok)).toEqual([]);
    expect(r.code).toBe(0);
    expect(res.actions).toHaveLength(8);

    // The orphan worktree's work is in a rescue ref: the uncommitted file and the detached commit.
    const ref = res.actions.find((a) => a.kind === 'orphan-worktree')!.rescueRef!;
    expect(ref).toMatch(/^refs\/wtpool\/rescue\/orphan-stray\//);
    expect(await repo.git(['show', `${ref}:wip.txt`])).toBe('uncommitted work');
    await repo.git(['merge-base', '--is-ancestor', strayCommit, ref]);
    await expect(fs.stat(stray)).rejects.toThrow();
    // The branch with commits awaiting integration survived.
    expect(await repo.git(['branch', '--list', 'pool/wt-8/has-work'])).toContain('has-work');
    await exited(zombie);

    const events = (await readEvents(loaded.repo.stateDir)).filter(
      (e) => e.type === 'leak-cleanup',
    );
    expect(events.map((e) => e.kind).sort()).toEqual(res.actions.map((a) => a.kind).sort());
    expect(
      (await readEvents(loaded.repo.stateDir)).some((e) => e.type === 'rescue' && e.ref === ref),
    ).toBe(true);

    const again = await runCli(BIN, ['detect-leaks', '--json', '--repo', repo.dir], {
      cwd: repo.dir,
    });
    expect(again.json()).toEqual({ leaks: [], skipped: [] });
    expect(again.code).toBe(0);
  });
});

describe('zombie-process: defunct children of a pool holder', () => {
  let repo: TempRepo;
  afterAll(async () => {
    await repo?.cleanup();
  });

  it('reports a defunct child its holder does not reap, and says cleanup cannot reap it', async () => {
    repo = await makeTempRepo();
    const loaded = loadConfig({ repo: repo.dir });
    const pool = new WorktreePool(loaded);
    await pool.initialize({ size: 1 });
    // `sleep 0` exits at once; its parent exec's into `sleep 600`, which never waits for it.
    const holder = spawn('sh', ['-c', 'sleep 0 & exec sleep 600'], { stdio: 'ignore' });
    try {
      await pool.lease({
        agent: 'agent-z',
        task: 'zombie parent',
        holderPid: holder.pid!,
        wait: false,
      });
      // Other children of this test process (the lease's claimer) may be defunct for an
      // instant; the holder's is the one this test is about.
      const zombies = async () =>
        (await detectLeaks(loaded)).leaks.filter(
          (l) => l.kind === 'zombie-process' && l.evidence.parent === holder.pid,
        );
      const leaks: Leak[] = await until(
        "the holder's zombie child",
        async () => {
          const found = await zombies();
          return found.length > 0 && found;
        },
        { attempts: 50 },
      );
      expect(leaks).toHaveLength(1);
      expect(leaks[0]!.evidence).toMatchObject({ state: 'Z', parent: holder.pid, slot: 'wt-1' });
      const res = await cleanupLeaks(loaded, { leaks });
      expect(res.actions[0]).toMatchObject({ ok: false, kind: 'zombie-process' });
      expect(res.actions[0]!.error).toMatch(/until its parent/);
    } finally {
      holder.kill('SIGKILL');
      await exited(holder);
    }
  });
});
