/**
 * The merge queue on real repositories: three candidates (good, broken build, good), promote,
 * the refusals of promote, kept pool branches, and a run interrupted by SIGTERM or killed.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '@wtpool/config';
import { until, type TempRepo } from '@wtpool/testkit';
import { keptBranches } from './candidates.js';
import type { RunReport, StatusReport } from './integrate.js';
import {
  ENV,
  INTEGRATE_BIN,
  integrate,
  makeTsRepo,
  pool,
  POOL_CONFIG,
  type Lease,
} from './fixtures.testutil.js';

let repo: TempRepo | undefined;
afterEach(async () => {
  await repo?.cleanup();
  repo = undefined;
});

async function branch(r: TempRepo, name: string, files: Record<string, string>): Promise<string> {
  await r.git(['switch', '-q', '-c', name, 'main']);
  const sha = await r.commit(files, `work on ${name}`);
  await r.git(['switch', '-q', 'main']);
  return sha;
}

const wtOf = (r: TempRepo) => path.join(r.sandbox, 'repo.worktrees', 'integration');

describe('integrate run and promote', () => {
  it('keeps the two good merges, rejects the broken build with its log, promotes main to the green head', async () => {
    repo = await makeTsRepo();
    const mainBefore = await repo.git(['rev-parse', 'main']);
    await branch(repo, 'feature/good-a', { 'src/a.ts': 'export const a: number = 1;\n' });
    await branch(repo, 'feature/broken', { 'src/b.ts': 'export const b: number = "two";\n' });
    await branch(repo, 'feature/good-c', { 'src/c.ts': 'export const c: number = 3;\n' });

    const run = await integrate(
      ['run', '--branches', 'feature/good-a,feature/broken,feature/good-c', '--json'],
      repo.dir,
    );
    expect(run.code, run.stderr).toBe(1); // a candidate was rejected
    const report = run.json<RunReport>();
    expect(report.results.map((r) => `${r.branch}:${r.status}`)).toEqual([
      'feature/good-a:kept',
      'feature/broken:rejected',
      'feature/good-c:kept',
    ]);
    const broken = report.results[1]!;
    expect(broken.failedGate).toBe('build');
    expect(existsSync(broken.log!)).toBe(true);
    expect(readFileSync(broken.log!, 'utf8')).toContain('TS2322');

    // integration holds both good merges (as --no-ff merge commits) and not the broken one.
    const head = await repo.git(['rev-parse', 'integration']);
    expect(report.head).toBe(head);
    expect(report.green).toBe(true);
    const files = await repo.git(['ls-tree', '-r', '--name-only', 'integration', 'src']);
    expect(files.split('\n').sort()).toEqual(['src/a.ts', 'src/c.ts', 'src/index.ts']);
    expect(await repo.git(['rev-list', '--merges', '--count', `main..integration`])).toBe('2');
    // The integration worktree is clean, not mid-merge.
    const wt = wtOf(repo);
    expect(await repo.git(['status', '--porcelain'], wt)).toBe('');
    expect(existsSync(path.join(repo.dir, '.git/worktrees/integration/MERGE_HEAD'))).toBe(false);

    const status = (await integrate(['status', '--json'], repo.dir)).json<StatusReport>();
    expect(status.green).toBe(true);
    expect(status.results.find((r) => r.status === 'rejected')?.log).toBe(broken.log);

    expect(await repo.git(['rev-parse', 'main'])).toBe(mainBefore);
    const promote = await integrate(['promote', '--json'], repo.dir);
    expect(promote.code, promote.stderr).toBe(0);
    expect(promote.json<{ promoted: boolean; via: string }>()).toMatchObject({
      promoted: true,
      via: 'checkout',
    });
    expect(await repo.git(['rev-parse', 'main'])).toBe(head);
    expect(await repo.git(['status', '--porcelain'])).toBe('');
  });

  it('promote refuses a head that did not pass, a dirty main checkout and a non-fast-forward', async () => {
    repo = await makeTsRepo();
    await branch(repo, 'good', { 'src/g.ts': 'export const g: number = 1;\n' });
    expect((await integrate(['run', '--branches', 'good'], repo.dir)).code).toBe(0);
    const green = await repo.git(['rev-parse', 'integration']);

    // A commit on integration that never went through `gates ci`.
    const wt = wtOf(repo);
    await repo.commit({ 'notes.md': 'unchecked\n' }, 'direct commit', wt);
    const notGreen = await integrate(['promote'], repo.dir);
    expect(notGreen.code).toBe(1);
    expect(notGreen.stderr).toContain('has not passed `gates ci`');
    await repo.git(['reset', '-q', '--hard', green], wt);

    await repo.write('src/index.ts', 'export const one: number = 11;\n');
    const dirty = await integrate(['promote'], repo.dir);
    expect(dirty.code).toBe(5);
    expect(dirty.stderr).toContain('uncommitted changes');
    await repo.git(['checkout', '--', 'src/index.ts']);

    await repo.commit({ 'side.md': 'main moved\n' }, 'main moved on');
    const nonFf = await integrate(['promote'], repo.dir);
    expect(nonFf.code).toBe(5);
    expect(nonFf.stderr).toContain('not a fast-forward');
    expect(await repo.git(['log', '-1', '--format=%s', 'main'])).toBe('main moved on');
  });

  it('--from-pool takes the branches released pool leases kept: not an empty one, not a leased one', async () => {
    repo = await makeTsRepo(POOL_CONFIG);
    await pool(['init'], repo);
    const acquire = (agent: string, task: string) =>
      pool<Lease>(['acquire', agent, task, '--no-wait'], repo!);
    const done = await acquire('ag-1', 'task a');
    const busy = await acquire('ag-2', 'task b');
    const empty = await acquire('ag-3', 'task c');
    await repo.commit({ 'src/k.ts': 'export const k: number = 1;\n' }, 'k', done.path);
    await repo.commit({ 'src/l.ts': 'export const l: number = 2;\n' }, 'l', busy.path);
    await pool(['release', done.slot, 'ag-1'], repo);
    await pool(['release', empty.slot, 'ag-3'], repo);
    // A branch outside the pool is never a candidate, even with commits.
    await branch(repo, 'feature/not-pool', { 'src/m.ts': 'export const m: number = 3;\n' });

    const loaded = loadConfig({ repo: repo.dir, env: {} });
    expect(await keptBranches(loaded)).toEqual([done.branch]);
    const status = (await integrate(['status', '--json'], repo.dir)).json<StatusReport>();
    expect(status.candidates.map((c) => c.branch)).toEqual([done.branch]);

    const run = await integrate(['run', '--from-pool', '--json'], repo.dir);
    expect(run.code, run.stderr).toBe(0);
    expect(run.json<RunReport>().results.map((r) => `${r.branch}:${r.status}`)).toEqual([
      `${done.branch}:kept`,
    ]);
    // The lease's owner is named in the result and in the pool's event log.
    expect(run.json<RunReport>().results[0]!.owner).toEqual({
      agent: 'ag-1',
      task: 'task a',
      slot: done.slot,
    });
    const events = readFileSync(path.join(repo.dir, '.git/wtpool/events.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((e) => e.type === 'integrate');
    expect(events).toMatchObject([
      { branch: done.branch, status: 'kept', agent: 'ag-1', task: 'task a', slot: done.slot },
    ]);
    // Once released, the other lease's branch is a candidate; the merged one is no longer shown.
    await pool(['release', busy.slot, 'ag-2'], repo);
    expect(await keptBranches(loaded)).toEqual([done.branch, busy.branch]);
    const after = (await integrate(['status', '--json'], repo.dir)).json<StatusReport>();
    expect(after.candidates.map((c) => c.branch)).toEqual([busy.branch]);
  });

  it('refuses a run without candidates and bad branch names', async () => {
    repo = await makeTsRepo();
    expect((await integrate(['run'], repo.dir)).code).toBe(2);
    const bad = await integrate(['run', '--branches', '--upload-pack=x'], repo.dir);
    expect(bad.code).toBe(2);
    const odd = await integrate(['run', '--branches', 'a..b'], repo.dir);
    expect(odd.code).toBe(2);
  });
});

describe('integrate run never leaves the repository mid-merge', () => {
  async function startSlowRun(r: TempRepo) {
    const marker = path.join(r.sandbox, 'tests-started');
    const cfg = path.join(r.sandbox, 'slow.yaml');
    // The test gate of the merge signals that it started, then hangs: the merge commit exists by
    // then. The base check (without src/s.ts) passes at once.
    writeFileSync(
      cfg,
      `deps:\n  strategy: none\ngates:\n  build: tsc -b\n  test: if [ -f src/s.ts ]; then touch ${marker} && sleep 60; fi\n`,
    );
    await branch(r, 'slow', { 'src/s.ts': 'export const s: number = 1;\n' });
    const start = await r.git(['rev-parse', 'main']);
    const child = spawn(
      process.execPath,
      [INTEGRATE_BIN, 'run', '--branches', 'slow', '--config', cfg],
      {
        cwd: r.dir,
        env: { ...process.env, ...ENV },
        stdio: 'ignore',
      },
    );
    let ended: number | null | undefined;
    const exited = new Promise<number | null>((res) =>
      child.on('close', (code) => res((ended = code))),
    );
    await until('the run reaches its test gate', () => {
      // The run ended before reaching the test gate: fail with its exit code, don't hang.
      if (ended !== undefined)
        throw new Error(`integrate run exited (${String(ended)}) before the test gate`);
      return existsSync(marker);
    });
    return { child, exited, start, cfg };
  }

  it('restores the previous head on SIGTERM', async () => {
    repo = await makeTsRepo();
    const { child, exited, start } = await startSlowRun(repo);
    const wt = wtOf(repo);
    expect(await repo.git(['rev-parse', 'HEAD'], wt)).not.toBe(start); // merged, being checked
    // `integrate status` shows the run in progress: candidate 1 of 1, in its test gate (the
    // gate is recorded just after it starts: poll, the run is hanging in that gate meanwhile).
    let running: StatusReport['running'] = null;
    while (running?.gate !== 'test') {
      running = (await integrate(['status', '--json'], repo.dir)).json<StatusReport>().running;
    }
    expect(running).toMatchObject({ branch: 'slow', index: 1, total: 1, pid: child.pid });
    child.kill('SIGTERM');
    expect(await exited).toBe(143);
    expect(await repo.git(['rev-parse', 'integration'])).toBe(start);
    expect(await repo.git(['status', '--porcelain'], wt)).toBe('');
    const status = (await integrate(['status', '--json'], repo.dir)).json<StatusReport>();
    expect(status.current).toBeNull();
    expect(status.running).toBeNull();
  });

  it('recovers a run killed with SIGKILL at the start of the next command', async () => {
    repo = await makeTsRepo();
    const { child, exited, start } = await startSlowRun(repo);
    child.kill('SIGKILL');
    await exited;
    // The killed run left its merge in place and its record behind.
    expect(await repo.git(['rev-parse', 'integration'])).not.toBe(start);
    expect(
      (await integrate(['status', '--json'], repo.dir)).json<StatusReport>().current,
    ).not.toBeNull();
    const promote = await integrate(['promote'], repo.dir);
    expect(promote.code).toBe(0); // nothing green to move to: main stays
    expect(await repo.git(['rev-parse', 'integration'])).toBe(start);
    const status = (await integrate(['status', '--json'], repo.dir)).json<StatusReport>();
    expect(status.current).toBeNull();
    expect(status.results.at(-1)).toMatchObject({ branch: 'slow', status: 'interrupted' });
  });
});
