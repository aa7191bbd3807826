/**
 * The `pool` CLI with real concurrent OS processes on real temp repositories: the races the
 * issue asks for, priority order, dead holders and waiters, dirty release, hostile names.
 * Build first (`pnpm -s build`): these spawn packages/pool/bin/pool.js.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { makeTempRepo, runCli, until, type TempRepo } from '@wtpool/testkit';
import { readEvents } from './events.js';
import type { AcquireResult, PoolEvent, PoolStatus } from './types.js';

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../bin/pool.js');
const repos: TempRepo[] = [];
const children: ChildProcess[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
  await Promise.all(repos.splice(0).map((r) => r.cleanup()));
});

async function setup(yaml: string) {
  const repo = await makeTempRepo();
  repos.push(repo);
  // cli-redis.slow.test.ts runs these races again on the Redis lease store.
  await fs.writeFile(
    path.join(repo.dir, 'pool.config.yaml'),
    yaml + (process.env.WTPOOL_TEST_STORE_YAML ?? ''),
  );
  const pool = (...args: string[]) => {
    const dd = args.indexOf('--');
    const at = dd === -1 ? args.length : dd;
    return runCli(BIN, [...args.slice(0, at), '--repo', repo.dir, ...args.slice(at)], {
      cwd: repo.dir,
    });
  };
  return { repo, pool };
}

async function status(pool: (...a: string[]) => ReturnType<typeof runCli>): Promise<PoolStatus> {
  const r = await pool('status', '--json');
  expect(r.code, r.stderr).toBe(0);
  return r.json<PoolStatus>();
}

/** Replays events.jsonl: no slot is ever granted while another lease holds it. */
function checkNoDoubleHolder(events: PoolEvent[]): void {
  const held = new Map<string, number>();
  for (const e of events) {
    const slot = e.slot as string;
    if (e.type === 'acquire') {
      expect(
        held.has(slot),
        `${slot} acquired (token ${e.token}) while held by token ${held.get(slot)}`,
      ).toBe(false);
      held.set(slot, e.token as number);
    } else if (e.type === 'release' || e.type === 'reclaim') {
      expect(held.get(slot), `${e.type} of ${slot} by a non-holder`).toBe(e.token);
      held.delete(slot);
    }
  }
}

describe('pool CLI races (real processes)', () => {
  it('24 concurrent `acquire --no-wait` on min = max = 3: exactly 3 distinct winners, 21 exit 75', async () => {
    const { pool, repo } = await setup('scale:\n  min: 3\n  max: 3\n');
    expect((await pool('init')).code).toBe(0);
    const results = await Promise.all(
      Array.from({ length: 24 }, (_, i) =>
        pool('acquire', `agent-${i}`, `task-${i}`, '--no-wait', '--json'),
      ),
    );
    const winners = results.filter((r) => r.code === 0).map((r) => r.json<AcquireResult>());
    const losers = results.filter((r) => r.code !== 0);
    expect(winners).toHaveLength(3);
    expect(losers.map((r) => r.code)).toEqual(Array(21).fill(75));
    expect(new Set(winners.map((w) => w.slot)).size).toBe(3);
    expect(new Set(winners.map((w) => w.path)).size).toBe(3);
    for (const w of winners)
      expect(await repo.git(['rev-parse', '--abbrev-ref', 'HEAD'], w.path)).toBe(w.branch);
    expect(losers[0]!.json<{ error: { code: string } }>().error.code).toBe('ERR_POOL_FULL');
    const st = await status(pool);
    expect(st.pool).toMatchObject({ size: 3, leased: 3, waiters: 0 });
    checkNoDoubleHolder(await readEvents(path.join(repo.dir, '.git/wtpool')));
  });

  it('20 concurrent blocking acquires on min 3 / max 10: all complete, never > 10 slots, no double holder, growth logged', async () => {
    const { pool, repo } = await setup('scale:\n  min: 3\n  max: 10\n  step: 2\n');
    expect((await pool('init')).code).toBe(0);
    // Each holder runs a short random job through `pool run`, which releases when it ends.
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        pool(
          'run',
          `agent-${i}`,
          `job ${i}`,
          '--json',
          '--',
          'sleep',
          (0.05 + ((i * 37) % 10) / 40).toFixed(2),
        ),
      ),
    );
    for (const r of results) expect(r.code, r.stderr).toBe(0);
    const runs = results.map((r) => r.json<{ slot: string; exitCode: number }>());
    expect(runs.every((r) => r.exitCode === 0)).toBe(true);
    const events = await readEvents(path.join(repo.dir, '.git/wtpool'));
    checkNoDoubleHolder(events);
    expect(events.filter((e) => e.type === 'acquire')).toHaveLength(20);
    const releases = events.filter((e) => e.type === 'release');
    expect(releases).toHaveLength(20);
    // each carries how long its reset took (the monitor's reset-duration metric)
    for (const e of releases) expect(e.resetMs).toEqual(expect.any(Number));
    const grown = events.filter((e) => e.type === 'grow');
    const created = grown.reduce((n, e) => n + (e.by as number), 0);
    expect(created).toBeGreaterThan(3); // grew past the 3 of init
    expect(created).toBeLessThanOrEqual(10); // no shrink configured here, so this bounds the size
    const slotsSeen = new Set(events.filter((e) => e.slot).map((e) => e.slot as string));
    expect(slotsSeen.size).toBeLessThanOrEqual(10);
    const st = await status(pool);
    expect(st.pool.size).toBeLessThanOrEqual(10);
    expect(st.pool).toMatchObject({ leased: 0, waiters: 0 });
  });

  it('priority: with the pool full, waiters 3, 0, 2 are served 0, 2, 3 on successive releases', async () => {
    const { pool } = await setup('scale:\n  min: 1\n  max: 1\n');
    expect((await pool('init')).code).toBe(0);
    const first = await pool('acquire', 'holder', 'first', '--json');
    expect(first.code).toBe(0);
    const served: string[] = [];
    const waiters = new Map<string, Promise<AcquireResult>>();
    for (const [i, p] of ['3', '0', '2'].entries()) {
      const agent = `p${p}`;
      waiters.set(
        agent,
        pool('acquire', agent, `task-${p}`, '--priority', p, '--json').then((r) => {
          expect(r.code, r.stderr).toBe(0);
          served.push(agent);
          return r.json<AcquireResult>();
        }),
      );
      await until(
        `waiter ${agent} queued`,
        async () => (await status(pool)).queue.length === i + 1,
      );
    }
    expect((await status(pool)).queue.map((q) => q.priority)).toEqual([0, 2, 3]);
    let holder = { slot: first.json<AcquireResult>().slot, agent: 'holder' };
    for (const next of ['p0', 'p2', 'p3']) {
      expect((await pool('release', holder.slot, holder.agent)).code).toBe(0);
      const got = await waiters.get(next)!;
      expect(got.agent).toBe(next);
      holder = { slot: got.slot, agent: got.agent };
    }
    expect(served).toEqual(['p0', 'p2', 'p3']);
  });

  it('a SIGKILLed --holder-pid holder is reclaimed before its TTL, its uncommitted work in a rescue ref', async () => {
    const { pool, repo } = await setup('scale:\n  min: 1\n  max: 1\n');
    expect((await pool('init')).code).toBe(0);
    const holder = spawn('sleep', ['600'], { stdio: 'ignore' });
    children.push(holder);
    const r = await pool(
      'acquire',
      'agent-x',
      'doomed',
      '--holder-pid',
      String(holder.pid),
      '--ttl',
      '2h',
      '--json',
    );
    expect(r.code, r.stderr).toBe(0);
    const lease = r.json<AcquireResult>();
    await fs.writeFile(path.join(lease.path, 'README.md'), 'edited by the dead agent\n');
    await fs.writeFile(path.join(lease.path, 'notes.txt'), 'untracked notes\n');
    expect((await status(pool)).slots[0]!.state).toBe('leased');
    holder.kill('SIGKILL');
    await until('holder dead', async () => holder.exitCode !== null || holder.signalCode !== null);

    // The next acquire finds the dead holder's slot, reclaims it (rescue first) and gets it.
    const next = await pool('acquire', 'agent-y', 'next', '--no-wait', '--json');
    expect(next.code, next.stderr).toBe(0);
    expect(next.json<AcquireResult>().slot).toBe(lease.slot);
    expect(await fs.readFile(path.join(lease.path, 'README.md'), 'utf8')).toBe('# test repo\n');
    const rescues = (await pool('rescue', 'list', '--json')).json<{
      rescues: { ref: string; slot: string }[];
    }>().rescues;
    expect(rescues).toHaveLength(1);
    expect(rescues[0]!.slot).toBe(lease.slot);
    expect(await repo.git(['show', `${rescues[0]!.ref}:README.md`])).toBe(
      'edited by the dead agent',
    );
    expect(await repo.git(['show', `${rescues[0]!.ref}:notes.txt`])).toBe('untracked notes');
    const reclaim = (await readEvents(path.join(repo.dir, '.git/wtpool'))).find(
      (e) => e.type === 'reclaim',
    );
    expect(reclaim).toMatchObject({
      reason: 'holder-dead',
      agent: 'agent-x',
      rescueRef: rescues[0]!.ref,
      resetMs: expect.any(Number),
    });
  });

  it('a blocking acquire gives up after --timeout with exit 75 and leaves the queue', async () => {
    const { pool, repo } = await setup('scale:\n  min: 1\n  max: 1\n');
    expect((await pool('init')).code).toBe(0);
    expect((await pool('acquire', 'holder', 'h')).code).toBe(0);
    const r = await pool('acquire', 'patient', 'p', '--timeout', '300ms', '--json');
    expect(r.code).toBe(75);
    expect(r.json<{ error: { code: string; message: string } }>().error.message).toMatch(/within/);
    expect((await status(pool)).queue).toEqual([]);
    const types = (await readEvents(path.join(repo.dir, '.git/wtpool'))).map((e) => e.type);
    expect(types).toContain('enqueue');
    expect(types.filter((t) => t === 'acquire')).toHaveLength(1);
  });

  it('a waiter that dies leaves no ghost ticket', async () => {
    const { pool, repo } = await setup('scale:\n  min: 1\n  max: 1\n');
    expect((await pool('init')).code).toBe(0);
    expect((await pool('acquire', 'holder', 'h')).code).toBe(0);
    const waiter = spawn(process.execPath, [BIN, 'acquire', 'ghost', 'g', '--repo', repo.dir], {
      stdio: 'ignore',
    });
    children.push(waiter);
    await until('ghost queued', async () => (await status(pool)).queue.length === 1);
    waiter.kill('SIGKILL');
    await until('waiter dead', async () => waiter.signalCode !== null);
    // status is read-only: it still lists the ticket; the next mutating command drops it.
    expect((await status(pool)).queue.map((q) => q.agent)).toEqual(['ghost']);
    expect((await pool('doctor', '--fix')).code).toBe(0);
    expect((await status(pool)).queue).toEqual([]);
    const dequeue = (await readEvents(path.join(repo.dir, '.git/wtpool'))).find(
      (e) => e.type === 'dequeue',
    );
    expect(dequeue).toMatchObject({ agent: 'ghost', reason: 'waiter-dead' });
  });

  it('release of a dirty worktree without --force exits 5 and changes nothing', async () => {
    const { pool, repo } = await setup('scale:\n  min: 1\n  max: 1\n');
    expect((await pool('init')).code).toBe(0);
    const lease = (await pool('acquire', 'ag', 'work', '--json')).json<AcquireResult>();
    await fs.writeFile(path.join(lease.path, 'README.md'), 'dirty\n');
    const registry = async () => {
      // The Redis store (cli-redis.slow.test.ts) keeps its last commit in fleet-mirror.json.
      const file = process.env.WTPOOL_TEST_STORE_YAML ? 'fleet-mirror.json' : 'state.json';
      const j = JSON.parse(await fs.readFile(path.join(repo.dir, '.git/wtpool', file), 'utf8'));
      const data = j.data ?? j.doc;
      return JSON.stringify([data.slots, data.queue, data.kept]);
    };
    const stateBefore = await registry();
    const r = await pool('release', lease.slot, 'ag');
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(/uncommitted changes/);
    expect(r.stderr).toMatch(/--force/);
    expect(await registry()).toBe(stateBefore);
    expect(await fs.readFile(path.join(lease.path, 'README.md'), 'utf8')).toBe('dirty\n');
    expect(await repo.git(['rev-parse', '--abbrev-ref', 'HEAD'], lease.path)).toBe(lease.branch);
    expect(await repo.git(['for-each-ref', 'refs/wtpool/'])).toBe('');
    expect(existsSync(path.join(repo.dir, '.git/wtpool/leases', `${lease.slot}.json`))).toBe(true);
    // Not the holder: exit 5 too; unknown slot: exit 4; bad slot id: exit 2.
    expect((await pool('release', lease.slot, 'other', '--force')).code).toBe(5);
    expect((await pool('release', 'wt-9', 'ag')).code).toBe(4);
    expect((await pool('release', '../wt-1', 'ag')).code).toBe(2);
  });

  it('hostile agent and task names get a clear error or a safe slug; nothing outside the pool is touched', async () => {
    const { pool, repo } = await setup('scale:\n  min: 1\n  max: 1\n');
    expect((await pool('init')).code).toBe(0);
    const listing = async () => (await fs.readdir(repo.sandbox)).sort();
    const before = await listing();
    const badAgents = ['../../etc', 'a b', '$(touch pwned)', 'a\nb', 'x'.repeat(300), '', '-rf'];
    for (const agent of badAgents) {
      const r = await pool('acquire', agent, 'task', '--no-wait', '--json');
      expect(r.code, `agent ${JSON.stringify(agent)}`).toBe(2);
      expect(r.stderr).toMatch(/^error: .*(agent|unknown option -rf)/m);
    }
    for (const task of ['line\nbreak', 'y'.repeat(300), '', '   ', '../..']) {
      const r = await pool('acquire', 'ag', task, '--no-wait');
      expect(r.code, `task ${JSON.stringify(task)}`).toBe(2);
      expect(r.stderr).toMatch(/^error: .*task/m);
    }
    const r = await pool('acquire', 'ag', '../../$(touch pwned) `id` ; rm -rf ~', '--json');
    expect(r.code, r.stderr).toBe(0);
    const lease = r.json<AcquireResult>();
    expect(lease.branch).toBe('pool/wt-1/touch-pwned-id-rm-rf');
    expect(lease.task).toBe('../../$(touch pwned) `id` ; rm -rf ~');
    expect(await listing()).toEqual(before);
    expect(existsSync(path.join(repo.dir, 'pwned'))).toBe(false);
    expect(existsSync(path.join(lease.path, 'pwned'))).toBe(false);
    expect((await pool('status', '--json')).json<PoolStatus>().slots[0]!.lease!.task).toBe(
      lease.task,
    );
  });

  it('`pool run` forwards SIGTERM to its command and still releases', async () => {
    const { pool, repo } = await setup('scale:\n  min: 1\n  max: 1\n');
    expect((await pool('init')).code).toBe(0);
    const child = spawn(
      process.execPath,
      [
        BIN,
        'run',
        'runner',
        'long job',
        '--repo',
        repo.dir,
        '--',
        'sh',
        '-c',
        'echo started > started.txt; exec sleep 60',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    children.push(child);
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    const wt = path.join(repo.sandbox, 'repo.worktrees', 'wt-1');
    await until('command started', async () => existsSync(path.join(wt, 'started.txt')));
    const exited = new Promise<number | null>((resolve) =>
      child.on('exit', (code) => resolve(code)),
    );
    child.kill('SIGTERM');
    expect(await exited).toBe(143);
    expect(stderr).toMatch(/saving them to a rescue ref/);
    const st = await status(pool);
    expect(st.pool).toMatchObject({ leased: 0, ready: 1 });
    const [rescue] = (await pool('rescue', 'list', '--json')).json<{ rescues: { ref: string }[] }>()
      .rescues;
    expect(await repo.git(['show', `${rescue!.ref}:started.txt`])).toBe('started');
  });

  it('targets the repository pnpm was run from (INIT_CWD) and honours environment overrides', async () => {
    const { repo } = await setup('scale:\n  max: 5\n');
    const elsewhere = repo.sandbox; // not a git repository
    const env = { INIT_CWD: repo.dir, npm_lifecycle_event: 'pool', WORKTREE_POOL_SIZE: '2' };
    const init = await runCli(BIN, ['init', '--json'], { cwd: elsewhere, env });
    expect(init.code, init.stderr).toBe(0);
    expect(init.json<PoolStatus>().pool).toMatchObject({ min: 2, size: 2, ready: 2 });
    const off = await runCli(BIN, ['acquire', 'ag', 't', '--no-wait'], {
      cwd: elsewhere,
      env: { ...env, WORKTREE_POOL_ENABLED: 'false' },
    });
    expect(off.code).toBe(1);
    expect(off.stderr).toMatch(/disabled/);
    const base = path.join(repo.sandbox, 'slots');
    const moved = await runCli(BIN, ['acquire', 'ag', 't', '--json'], {
      cwd: elsewhere,
      env: { ...env, WORKTREE_BASE_PATH: base },
    });
    // A new pool root (WORKTREE_BASE_PATH): slots move there when next used.
    expect(moved.code, moved.stderr).toBe(0);
    const lease = moved.json<AcquireResult>();
    expect(lease.path).toBe(path.join(base, lease.slot));
    expect(existsSync(path.join(repo.sandbox, 'repo.worktrees', lease.slot))).toBe(false);
  });

  it('config errors exit 3 naming the file, key and expected type; --help comes from the option table', async () => {
    const { pool } = await setup('scale:\n  max: lots\n');
    const r = await pool('status');
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/pool\.config\.yaml: scale\.max must be an integer/);
    const h = await runCli(BIN, ['acquire', '--help']);
    expect(h.code).toBe(0);
    for (const opt of [
      '--priority',
      '--no-wait',
      '--wait',
      '--timeout',
      '--ttl',
      '--holder-pid',
      '--identity',
      '--json',
    ]) {
      expect(h.stdout).toContain(opt.replace('--no-wait', '--wait'));
    }
  });
});
