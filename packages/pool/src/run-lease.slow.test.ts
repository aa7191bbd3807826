/**
 * A lease's command belongs to the lease, and a lease has one end (issue 21 items 1, 2, 4, 5,
 * 10; issue 22's `pool run` SIGTERM race), with real processes and real signals:
 * - release --force by another process (and by the library call the dashboard's action makes)
 *   while `pool run` runs a loop and grandchildren that left its session (`setsid`) write into
 *   the slot: every one is gone before the next holder's grant, nothing lands in its worktree,
 *   `pool run` exits 5;
 * - a stale holder inside its old worktree cannot act on the next lease; tokens are canonical;
 * - parallel releases and heartbeats of one lease: one release wins, the others say so;
 * - SIGTERM / SIGINT at random moments after `pool run` starts: released, exit 143 / 130, the
 *   command's files in a rescue ref.
 * WTPOOL_STRESS_RUNS raises the repetitions of the last two. Build first (`pnpm -s build`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readProcStat } from '@wtpool/core';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { GIT_ENV, jitter, makeTempRepo, runCli, type TempRepo, until } from '@wtpool/testkit';
import { WorktreePool } from './pool.js';
import type { AcquireResult, PoolStatus, ReleaseResult } from './types.js';

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../bin/pool.js');
const STRESS = process.env.WTPOOL_STRESS_RUNS ? Number(process.env.WTPOOL_STRESS_RUNS) : null;
const repos: TempRepo[] = [];
const children: ChildProcess[] = [];
const pids: number[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) {
    if (c.exitCode === null && c.signalCode === null && c.pid) {
      try {
        process.kill(-c.pid, 'SIGKILL');
      } catch {
        c.kill('SIGKILL');
      }
    }
  }
  for (const pid of pids.splice(0)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  await Promise.all(repos.splice(0).map((r) => r.cleanup()));
});

async function setup(size = 1) {
  const repo = await makeTempRepo();
  repos.push(repo);
  await fs.writeFile(
    path.join(repo.dir, 'pool.config.yaml'),
    `scale:\n  min: ${size}\n  max: ${size}\n`,
  );
  const pool = (args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) =>
    runCli(BIN, [...args, '--repo', repo.dir], { cwd: opts.cwd ?? repo.dir, env: opts.env });
  expect((await pool(['init'])).code).toBe(0);
  return { repo, pool };
}

/** Dead, or a zombie nobody reaped yet (it cannot write). */
const procGone = (pid: number) => ['Z', undefined].includes(readProcStat(pid)?.state);

function startRun(repoDir: string, agent: string, task: string, command: string[]) {
  const child = spawn(
    process.execPath,
    [BIN, 'run', agent, task, '--repo', repoDir, '--', ...command],
    { cwd: repoDir, stdio: ['ignore', 'pipe', 'pipe'], detached: true },
  );
  children.push(child);
  let stderr = '';
  child.stdout!.resume();
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.on('exit', (code, signal) => r({ code, signal })),
  );
  return { child, exited, stderr: () => stderr };
}

/**
 * The command of scenarios 1 and 2: a loop writing into its cwd (the slot), and two
 * grandchildren that leave its session with setsid and write into the slot from outside it:
 * one keeps its environment (cwd /), one clears it (`env -i`) and keeps a file open in the slot.
 * Each writes its pid to <out>/<name>.pid first (outside the slot).
 */
function writerCommand(out: string): string[] {
  const script = `
    out=${JSON.stringify(out)}; slot="$PWD"
    setsid sh -c 'echo $$ > "$1/setsid.pid"; cd /; while :; do echo g >> "$2/setsid.txt"; sleep 0.02; done' sh "$out" "$slot" </dev/null &
    setsid env -i /bin/sh -c 'echo $$ > "$1/noenv.pid"; cd /; exec 3>>"$2/noenv.txt"; while :; do echo n >&3; sleep 0.02; done' sh "$out" "$slot" </dev/null &
    echo $$ > "$out/loop.pid"
    while :; do echo l >> lines.txt; echo tick; sleep 0.02; done`;
  return ['/bin/sh', '-c', script];
}

const WRITERS = ['loop', 'setsid', 'noenv'];
const FILES = ['lines.txt', 'setsid.txt', 'noenv.txt'];

async function writersRunning(out: string, dir: string): Promise<number[] | false> {
  const ids: number[] = [];
  for (const w of WRITERS) {
    const pid = Number(await fs.readFile(path.join(out, `${w}.pid`), 'utf8').catch(() => '0'));
    if (!pid) return false;
    ids.push(pid);
  }
  pids.push(...ids);
  for (const f of FILES) if (!existsSync(path.join(dir, f))) return false;
  return ids;
}

describe("a lease's command ends with the lease (real processes)", () => {
  for (const by of [
    'release --force by another process',
    'the dashboard action (library release)',
  ]) {
    it(`${by}: the loop and its setsid grandchildren are gone before the next grant; 0 lines after it; pool run exits 5`, async () => {
      const { repo, pool } = await setup();
      const out = await fs.mkdtemp(path.join(repo.dir, '..', 'out-'));
      const run = startRun(repo.dir, 'A', 'loop', writerCommand(out));
      const st0 = await until('leased', async () => {
        const s = (await pool(['status', '--json'])).json<PoolStatus>();
        return s.slots[0]?.lease ? s : undefined;
      });
      const dir = st0.slots[0]!.path;
      const writers = await until('writers running', () => writersRunning(out, dir));

      if (by.startsWith('release')) {
        const rel = await pool(['release', 'wt-1', 'A', '--force', '--json']);
        expect(rel.code, rel.stderr).toBe(0);
        expect(rel.json<ReleaseResult>().rescueRef).toMatch(/^refs\/wtpool\/rescue\/wt-1\//);
      } else {
        // What the dashboard's release action calls (monitor/src/serve.ts).
        const lib = new WorktreePool({ repo: repo.dir });
        const r = await lib.release({ slot: 'wt-1', agent: 'A', force: true });
        expect(r.rescueRef).toMatch(/^refs\/wtpool\/rescue\/wt-1\//);
      }
      // Every writer is gone before anyone can be granted the slot.
      expect(writers.map(procGone)).toEqual([true, true, true]);
      const next = await pool(['acquire', 'B', 'next', '--no-wait', '--json']);
      expect(next.code, next.stderr).toBe(0);
      const b = next.json<AcquireResult>();
      expect(b.path).toBe(dir);
      const present = () => FILES.filter((f) => existsSync(path.join(dir, f)));
      expect(present()).toEqual([]);

      const end = await run.exited;
      expect(end.code, run.stderr()).toBe(5);
      expect(run.stderr()).toMatch(/lost the lease of wt-1/);
      // After pool run is gone: still nothing of A's in B's worktree, B's lease intact.
      expect(present()).toEqual([]);
      const st = (await pool(['status', '--json'])).json<PoolStatus>();
      expect(st.slots[0]!.lease).toMatchObject({ agent: 'B', token: b.token });
    });
  }

  it('a command that ends leaving a setsid orphan on its pipes: pool run stops the orphan, releases and exits with the command', async () => {
    const { repo, pool } = await setup();
    const out = await fs.mkdtemp(path.join(repo.dir, '..', 'orphan-'));
    const script = `setsid sh -c 'echo $$ > "$1/orphan.pid"; while :; do echo o; echo o >> orphan.txt; sleep 0.02; done' sh ${JSON.stringify(out)} &
      while [ ! -s ${JSON.stringify(out)}/orphan.pid ]; do sleep 0.01; done; echo done > done.txt`;
    const run = startRun(repo.dir, 'A', 'orphan', ['/bin/sh', '-c', script]);
    const end = await run.exited;
    expect(end.code, run.stderr()).toBe(0);
    const orphan = Number(await fs.readFile(path.join(out, 'orphan.pid'), 'utf8'));
    pids.push(orphan);
    expect(procGone(orphan)).toBe(true);
    const st = (await pool(['status', '--json'])).json<PoolStatus>();
    expect(st.slots[0]).toMatchObject({ state: 'ready', lease: null });
    expect(existsSync(path.join(st.slots[0]!.path, 'orphan.txt'))).toBe(false);
  });

  it('a plain release by another process is refused while pool run works (it releases when its command ends)', async () => {
    const { repo, pool } = await setup();
    const run = startRun(repo.dir, 'A', 'wait', ['sleep', '30']);
    await until('leased', async () => {
      const s = (await pool(['status', '--json'])).json<PoolStatus>();
      return s.slots[0]?.lease ? s : undefined;
    });
    const rel = await pool(['release', 'wt-1', 'A']);
    expect(rel.code).toBe(5);
    expect(rel.stderr).toMatch(/runs a `pool run` command under this lease/);
    expect(run.child.exitCode).toBe(null);
    run.child.kill('SIGTERM');
    expect((await run.exited).code).toBe(143);
  });
});

describe('a token comes from its own lease', () => {
  it('a stale holder inside wt-1 after a re-acquire: heartbeat and release exit 5, the new lease untouched', async () => {
    const { pool } = await setup();
    const first = await pool(['acquire', 'A', 'one', '--json']);
    expect(first.code, first.stderr).toBe(0);
    const a = first.json<AcquireResult>();
    // A's shell, started in its lease: the env as `set -a; . .env.worktree` gives it.
    const aEnv = { WORKTREE_ID: a.slot, WTPOOL_LEASE_TOKEN: String(a.token) };
    expect((await pool(['release', a.slot, 'A'], { cwd: a.path, env: aEnv })).code).toBe(0);

    for (const agent of ['B', 'A']) {
      const second = await pool(['acquire', agent, 'two', '--no-wait', '--json']);
      expect(second.code, second.stderr).toBe(0);
      const b = second.json<AcquireResult>();
      expect(b.path).toBe(a.path);
      // The env file on disk now holds the new lease's token.
      expect(await fs.readFile(b.envFile, 'utf8')).toContain(`WTPOOL_LEASE_TOKEN=${b.token}\n`);
      await fs.writeFile(path.join(b.path, 'live.txt'), 'the new lease is working\n');

      // The stale holder, inside its old worktree: with its own env (stale token), and for
      // another agent's lease also without any token (the agent name does not match).
      const envs = agent === 'B' ? [aEnv, {}] : [aEnv];
      for (const env of envs) {
        const hb = await pool(['heartbeat', a.slot, 'A'], { cwd: a.path, env });
        expect(hb.code, hb.stderr).toBe(5);
        const rel = await pool(['release', a.slot, 'A', '--force'], { cwd: a.path, env });
        expect(rel.code, rel.stderr).toBe(5);
      }
      expect(await fs.readFile(path.join(b.path, 'live.txt'), 'utf8')).toBe(
        'the new lease is working\n',
      );
      const st = (await pool(['status', '--json'])).json<PoolStatus>();
      expect(st.slots[0]!.lease).toMatchObject({ agent, token: b.token });
      const rel = await pool(['release', b.slot, agent, '--force', '--token', String(b.token)]);
      expect(rel.code, rel.stderr).toBe(0);
    }
  });

  it('a token naming another slot is refused; tokens are canonical integers', async () => {
    const { pool } = await setup();
    const a = (await pool(['acquire', 'A', 'one', '--json'])).json<AcquireResult>();
    const other = await pool(['heartbeat', a.slot, 'A'], {
      env: { WORKTREE_ID: 'wt-2', WTPOOL_LEASE_TOKEN: String(a.token) },
    });
    expect(other.code, other.stderr).toBe(5);
    expect(other.stderr).toMatch(/is the lease of wt-2, not of wt-1/);
    for (const bad of ['02', '+2', '2.0', '0', '-1', ' 1', '1e0']) {
      const r = await pool(['heartbeat', a.slot, 'A', '--token', bad]);
      expect(r.code, `--token ${JSON.stringify(bad)}: ${r.stderr}`).toBe(2);
      const e = await pool(['heartbeat', a.slot, 'A'], { env: { WTPOOL_LEASE_TOKEN: bad } });
      expect(e.code, `WTPOOL_LEASE_TOKEN=${JSON.stringify(bad)}: ${e.stderr}`).toBe(2);
    }
    const ok = await pool(['heartbeat', a.slot, 'A', '--token', String(a.token)]);
    expect(ok.code, ok.stderr).toBe(0);
  });
});

describe('release and heartbeat of one lease are serialised', () => {
  it('8 parallel releases + 8 heartbeats: exactly one release wins, the others say already released, the slot ends ready', async () => {
    const { pool } = await setup();
    const reps = STRESS ?? 4;
    for (let rep = 0; rep < reps; rep++) {
      const got = await pool(['acquire', 'A', `t${rep}`, '--json']);
      expect(got.code, got.stderr).toBe(0);
      const a = got.json<AcquireResult>();
      await fs.writeFile(path.join(a.path, 'work.txt'), `rep ${rep}\n`);
      const tok = ['--token', String(a.token)];
      const [rels, hbs] = await Promise.all([
        Promise.all(
          Array.from({ length: 8 }, () =>
            pool(['release', a.slot, 'A', '--force', ...tok, '--json']),
          ),
        ),
        Promise.all(Array.from({ length: 8 }, () => pool(['heartbeat', a.slot, 'A', ...tok]))),
      ]);
      expect(
        rels.map((r) => r.code),
        rels.map((r) => r.stderr).join(''),
      ).toEqual(Array(8).fill(0));
      const docs = rels.map((r) => r.json<ReleaseResult>());
      expect(docs.filter((d) => !d.alreadyReleased)).toHaveLength(1);
      expect(docs.filter((d) => d.alreadyReleased === true)).toHaveLength(7);
      // They all describe the one release: one rescue ref.
      expect(new Set(docs.map((d) => d.rescueRef)).size).toBe(1);
      // A heartbeat before the release renews (0); after it, the lease is over (5).
      for (const h of hbs) expect([0, 5], h.stderr).toContain(h.code);
      const st = (await pool(['status', '--json'])).json<PoolStatus>();
      expect(st.slots[0]!.state).toBe('ready');
      expect(st.slots[0]!.lease ?? null).toBe(null);
    }
  });
});

describe('pool run and signals at random moments', () => {
  it('SIGTERM and SIGINT 0-2 s after start: released, exit 143/130, the work in a rescue ref', async () => {
    const { repo, pool } = await setup(2);
    const runs = STRESS ?? 6;
    const out = await fs.mkdtemp(path.join(repo.dir, '..', 'sig-'));
    const stateDir = new WorktreePool({ repo: repo.dir }).repo.stateDir;
    // The command writes its work, says so (outside the slot), then works on.
    const command = (i: number) => [
      '/bin/sh',
      '-c',
      `echo "work ${i}" > work-${i}.txt && echo ok > ${out}/wrote-${i}; exec sleep 30`,
    ];
    const plan = Array.from({ length: runs * 2 }, (_, i) => ({
      i,
      sig: (i % 2 === 0 ? 'SIGTERM' : 'SIGINT') as NodeJS.Signals,
    }));
    const results: string[] = [];
    // Two at a time (two slots).
    for (let k = 0; k < plan.length; k += 2) {
      await Promise.all(
        plan.slice(k, k + 2).map(async ({ i, sig }) => {
          const run = startRun(repo.dir, `S${i}`, `sig${i}`, command(i));
          const t0 = Date.now();
          await jitter(2000); // the signal at a random moment 0-2 s after the start
          const delay = Date.now() - t0;
          run.child.kill(sig);
          const end = await run.exited;
          const wrote = existsSync(path.join(out, `wrote-${i}`));
          const expected = sig === 'SIGTERM' ? 143 : 130;
          if (end.code === null) {
            // Killed by the signal itself: only possible before any JavaScript ran (Node's
            // start-up), so it must not have leased anything.
            expect(end.signal).toBe(sig);
            const events = await fs
              .readFile(path.join(stateDir, 'events.jsonl'), 'utf8')
              .catch(() => '');
            expect(events).not.toContain(`"agent":"S${i}"`);
            results.push(`${i}:${sig}:startup`);
            return;
          }
          expect(end.code, `${sig} after ${Math.round(delay)} ms: ${run.stderr()}`).toBe(expected);
          if (wrote) {
            // Its work is in a rescue ref of its lease.
            const rescue = /saved to (refs\/wtpool\/rescue\/\S+)/.exec(run.stderr())?.[1];
            expect(rescue, run.stderr()).toBeTruthy();
            const show = await runCli('git', ['-C', repo.dir, 'show', `${rescue}:work-${i}.txt`], {
              env: GIT_ENV,
            });
            expect(show.stdout).toBe(`work ${i}\n`);
          }
          results.push(`${i}:${sig}:${wrote ? 'rescued' : 'before-work'}`);
        }),
      );
    }
    const st = (await pool(['status', '--json'])).json<PoolStatus>();
    expect(st.slots.map((s) => s.state)).toEqual(['ready', 'ready']);
    expect(st.pool.waiters).toBe(0);
    expect(results).toHaveLength(plan.length);
    if (STRESS) {
      // The measurement's breakdown (docs/pool.md): how far each run got before its signal.
      const tally: Record<string, number> = {};
      for (const r of results) {
        const k = r.split(':').slice(1).join(':');
        tally[k] = (tally[k] ?? 0) + 1;
      }
      console.log(`signals at random moments: ${JSON.stringify(tally)}`);
    }
  });
});
