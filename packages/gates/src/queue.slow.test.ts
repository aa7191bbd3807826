/**
 * The merge queue a monorepo can live with, on real repositories: base first (a red base stops
 * the run and blames nobody), held heads and drops through the state on disk, per-path gates (a
 * mapping catches what the default build does not cover, with the real tsc), and the
 * integration worktree's dependencies (cloned the way slots get them). The policy behind them
 * is property-tested in queue/policy.test.ts; what is not about the build uses the quick build.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PROJECT_ROOT, runCli, type TempRepo } from '@wtpool/testkit';
import type { RunReport, StatusReport } from './integrate.js';
import type { GateReport } from './pipeline.js';
import {
  ENV,
  branch,
  brokenMessage,
  gates,
  integrate,
  makeQuickRepo,
  pool,
  POOL_BIN,
  POOL_CONFIG,
  TSCONFIG,
} from './fixtures.testutil.js';

let repo: TempRepo | undefined;
afterEach(async () => {
  await repo?.cleanup();
  repo = undefined;
});

const statuses = (r: RunReport) => r.results.map((x) => `${x.branch}:${x.status}`);

describe('base first', () => {
  it('a red base stops the run with one line naming the gate and its log; no candidate is blamed; a fixed base is checked once', async () => {
    repo = await makeQuickRepo();
    await branch(repo, 'good', { 'src/g.ts': 'export const g: number = 1;\n' });
    // main itself breaks the build (a commit that bypassed the hook).
    await repo.commit({ 'src/index.ts': 'export const one: number = 1; // BROKEN\n' }, 'red main');

    const red = await integrate(['run', '--branches', 'good'], repo.dir);
    expect(red.code).toBe(1);
    const line = red.stdout.trim();
    expect(line.split('\n')).toHaveLength(1);
    expect(line).toContain('the build gate failed');
    const log = /\(log: ([^)]+)\)/.exec(line)![1]!;
    expect(readFileSync(log, 'utf8')).toContain(brokenMessage('src/index.ts'));
    const json = (
      await integrate(['run', '--branches', 'good', '--json'], repo.dir)
    ).json<RunReport>();
    expect(json.base).toMatchObject({ status: 'red', failedGate: 'build' });
    expect(json.results).toEqual([]);
    const status = (await integrate(['status', '--json'], repo.dir)).json<StatusReport>();
    expect(status.results).toEqual([]);
    expect(status.held).toEqual([]);
    expect(await repo.git(['rev-parse', 'integration'])).toBe(json.head); // nothing merged

    // Fixed on main: the base is checked again (new commit), then the candidate goes through.
    await repo.commit({ 'src/index.ts': 'export const one: number = 1;\n' }, 'fix main');
    const green = await integrate(['run', '--branches', 'good', '--json'], repo.dir);
    expect(green.code, green.stderr).toBe(0);
    const report = green.json<RunReport>();
    expect(report.base.status).toBe('green');
    expect(statuses(report)).toEqual(['good:kept']);
    // The same base is not checked twice: cached by commit.
    await branch(repo, 'good-2', { 'src/h.ts': 'export const h: number = 2;\n' });
    const again = (
      await integrate(['run', '--branches', 'good-2', '--json'], repo.dir)
    ).json<RunReport>();
    expect(again.base).toMatchObject({ status: 'cached', head: report.head });
    expect(statuses(again)).toEqual(['good-2:kept']);
  });
});

describe('held heads, drop and retry, through the state on disk', () => {
  it('a conflicted head is skipped until it moves; a dropped branch until retry; the branches are kept', async () => {
    repo = await makeQuickRepo();
    await repo.commit({ 'notes.md': 'base\n' }, 'notes');
    const first = await branch(repo, 'clash', { 'notes.md': 'from the branch\n' });
    const later = await branch(repo, 'later', { 'src/l.ts': 'export const l: number = 1;\n' });
    await repo.commit({ 'notes.md': 'from main\n' }, 'main edits notes');
    const drop = await integrate(['drop', 'later', '--json'], repo.dir);
    expect(drop.code, drop.stderr).toBe(0);
    expect((await integrate(['drop', 'no-such-branch'], repo.dir)).code).toBe(4);
    expect((await integrate(['drop', '--bad'], repo.dir)).code).toBe(2);

    const r1 = await integrate(['run', '--branches', 'clash,later', '--json'], repo.dir);
    expect(r1.code).toBe(1);
    expect(statuses(r1.json<RunReport>())).toEqual(['clash:conflict', 'later:skipped']);
    expect(r1.json<RunReport>().results[1]!.reason).toContain('dropped');
    const r2 = await integrate(['run', '--branches', 'clash', '--json'], repo.dir);
    expect(r2.code).toBe(0); // nothing new failed
    const skipped = r2.json<RunReport>().results[0]!;
    expect(skipped).toMatchObject({ status: 'skipped', branchHead: first });
    expect(skipped.previous).toMatchObject({ status: 'conflict', head: first });
    expect(skipped.reason).toContain('integrate retry clash');

    // A new commit on the branch (it merged main and resolved); the drop forgotten by retry.
    await repo.git(['switch', '-q', 'clash']);
    await repo.git(['merge', '-q', '-X', 'theirs', '-m', 'resolve', 'main']);
    await repo.git(['switch', '-q', 'main']);
    expect((await integrate(['retry', 'later'], repo.dir)).code).toBe(0);
    const r3 = (
      await integrate(['run', '--branches', 'clash,later', '--json'], repo.dir)
    ).json<RunReport>();
    expect(statuses(r3)).toEqual(['clash:kept', 'later:kept']);
    expect(await repo.git(['rev-parse', 'later'])).toBe(later); // the branch is kept as it was
    const status = (await integrate(['status', '--json'], repo.dir)).json<StatusReport>();
    expect(status.held).toEqual([]);
    expect(status.dropped).toEqual([]);
    expect((await integrate(['retry', 'clash'], repo.dir)).code).toBe(4); // nothing to retry
  });
});

describe('per-path gates', () => {
  // A package with its own tsconfig: the root build (the quick build, src/ only) does not cover
  // it; its mapping typechecks it with the real tsc.
  const LIB_TSCONFIG = TSCONFIG.replace('"outDir": "dist"', '"noEmit": true')
    .replace(/\s*"tsBuildInfoFile": "dist\/.tsbuildinfo"/, '')
    .replace('"incremental": true,', '"incremental": false');
  const MAPPING =
    'deps:\n  strategy: none\ngates:\n  build: node build.mjs\n  test: node --test\n  paths:\n    "packages/lib/**":\n      typecheck: tsc -p packages/lib\n';

  async function monorepo(): Promise<TempRepo> {
    const r = await makeQuickRepo();
    await r.commit(
      {
        'packages/lib/tsconfig.json': LIB_TSCONFIG,
        'packages/lib/src/lib.ts': 'export const lib: number = 1;\n',
        'pool.config.yaml': MAPPING,
      },
      'a package',
    );
    await branch(r, 'lib-broken', {
      'packages/lib/src/bad.ts': 'export const bad: number = "x";\n',
    });
    return r;
  }

  it('a mapping catches a type error in a package the default build does not cover', async () => {
    // (Without the mapping the default build alone runs: checks.test.ts, planChecks.)
    repo = await monorepo();
    await branch(repo, 'app-only', { 'src/app.ts': 'export const app: number = 2;\n' });
    const run = await integrate(['run', '--branches', 'lib-broken,app-only', '--json'], repo.dir);
    expect(run.code).toBe(1);
    const report = run.json<RunReport>();
    expect(statuses(report)).toEqual(['lib-broken:rejected', 'app-only:kept']);
    expect(report.results[0]!.failedGate).toBe('typecheck');
    expect(readFileSync(report.results[0]!.log!, 'utf8')).toContain('TS2322');
  });

  it('pre-commit runs the checks of the staged paths; gates ci runs them all', async () => {
    repo = await monorepo();
    const names = (r: GateReport) => r.gates.map((g) => `${g.name}:${g.command}`);
    await repo.write('src/x.ts', 'export const x: number = 1;\n');
    await repo.git(['add', 'src/x.ts']);
    const app = (await gates(['pre-commit', '--json'], repo.dir)).json<GateReport>();
    expect(names(app).filter((n) => /^(build|typecheck)/.test(n))).toEqual([
      'build:node build.mjs',
    ]);
    await repo.git(['reset', '-q']);
    await repo.write('packages/lib/src/y.ts', 'export const y: number = "y";\n');
    await repo.git(['add', 'packages/lib/src/y.ts']);
    const lib = await gates(['pre-commit', '--json'], repo.dir);
    expect(lib.code).toBe(1);
    const libReport = lib.json<GateReport>();
    // The mapping has no build of its own: the default build still runs (it is mandatory).
    expect(names(libReport).filter((n) => /^(build|typecheck)/.test(n))).toEqual([
      'build:node build.mjs',
      'typecheck:tsc -p packages/lib',
    ]);
    expect(libReport.failed).toBe('typecheck');
    await repo.git(['reset', '-q']);
    await import('node:fs/promises').then((fs) =>
      fs.rm(path.join(repo!.dir, 'packages/lib/src/y.ts')),
    );
    const ci = (await gates(['ci', '--json'], repo.dir)).json<GateReport>();
    expect(ci.ok).toBe(true);
    expect(names(ci)).toContain('typecheck:tsc -p packages/lib');
    expect(names(ci)).toContain('build:node build.mjs');
  });

  it('validates the mapping: exit 3 naming the key', async () => {
    repo = await makeQuickRepo();
    const cfg = path.join(repo.sandbox, 'bad.yaml');
    await writeFile(cfg, 'gates:\n  paths:\n    "packages/lib/**":\n      build: "true"\n');
    const noop = await gates(['ci', '--config', cfg], repo.dir);
    expect(noop.code).toBe(3);
    expect(noop.stderr).toContain('gates.paths."packages/lib/**".build');
    await writeFile(cfg, 'gates:\n  paths:\n    "packages/lib/**":\n      lint: eslint .\n');
    const unknown = await gates(['ci', '--config', cfg], repo.dir);
    expect(unknown.code).toBe(3);
    expect(unknown.stderr).toContain('gates.paths."packages/lib/**".lint');
  });
});

describe('the integration worktree gets dependencies like a slot', () => {
  it('hard-links the main checkout node_modules; a changed lockfile is installed again', async () => {
    repo = await makeQuickRepo();
    const cfg =
      'deps:\n  strategy: hardlink\ngates:\n  build: node check.mjs && node build.mjs\n  test: node --test\n';
    await repo.commit(
      {
        'pool.config.yaml': cfg,
        'package-lock.json': '{\n  "lockfileVersion": 3,\n  "packages": {}\n}\n',
        'check.mjs': 'import "dep";\n',
      },
      'a dependency',
    );
    // The main checkout has its dependencies installed (ignored by git).
    await mkdir(path.join(repo.dir, 'node_modules/dep'), { recursive: true });
    await writeFile(
      path.join(repo.dir, 'node_modules/dep/package.json'),
      '{"name":"dep","type":"module","main":"index.js"}\n',
    );
    await writeFile(path.join(repo.dir, 'node_modules/dep/index.js'), 'export {};\n');
    await branch(repo, 'uses-dep', { 'src/u.ts': 'export const u: number = 1;\n' });
    await branch(repo, 'new-lock', {
      'package-lock.json': '{\n  "name": "tiny",\n  "lockfileVersion": 3,\n  "packages": {}\n}\n',
    });

    const run = await integrate(['run', '--branches', 'uses-dep,new-lock', '--json'], repo.dir);
    const report = run.json<RunReport>();
    expect(report.base.status, report.base.log && readFileSync(report.base.log, 'utf8')).toBe(
      'green',
    );
    const wt = report.worktree;
    expect(existsSync(path.join(wt, 'node_modules/dep/index.js'))).toBe(true);
    expect(statuses(report)).toEqual(['uses-dep:kept', 'new-lock:rejected']);
    // The new lockfile no longer matches the main checkout: the hard-link strategy refuses.
    expect(report.results[1]!.failedGate).toBe('deps');
  });
});

describe('the integration worktree is a protected part of the pool', () => {
  const MONITOR_BIN = path.join(PROJECT_ROOT, 'packages/monitor/bin/monitor.js');
  const monitor = (args: string[], r: TempRepo) =>
    runCli(MONITOR_BIN, [...args, '--repo', r.dir], { cwd: r.dir, env: ENV });

  it('after integrate run, detect-leaks, pool doctor and cleanup-leaks --yes leave it in place and report no leak', async () => {
    repo = await makeQuickRepo(POOL_CONFIG);
    await pool(['init'], repo);
    await branch(repo, 'good', { 'src/g.ts': 'export const g: number = 1;\n' });
    const run = await integrate(['run', '--branches', 'good', '--json'], repo.dir);
    expect(run.code, run.stderr).toBe(0);
    const wt = run.json<RunReport>().worktree;
    const head = await repo.git(['rev-parse', 'HEAD'], wt);

    const status = await pool<{ integration: { path: string; branch: string }[] }>(
      ['status'],
      repo,
    );
    expect(status.integration).toEqual([{ path: wt, branch: 'integration', head }]);
    const detect = await monitor(['detect-leaks', '--json'], repo);
    expect(detect.code, detect.stdout).toBe(0);
    expect(detect.json<{ leaks: unknown[] }>().leaks).toEqual([]);
    const doctor = await runCli(POOL_BIN, ['doctor', '--fix', '--json', '--repo', repo.dir], {
      cwd: repo.dir,
      env: ENV,
    });
    expect(doctor.code, doctor.stdout).toBe(0);
    expect(doctor.json<{ problems: unknown[] }>().problems).toEqual([]);
    const cleanup = await monitor(['cleanup-leaks', '--yes', '--json'], repo);
    expect(cleanup.code, cleanup.stdout).toBe(0);
    expect(cleanup.json<{ actions: unknown[] }>().actions).toEqual([]);
    const prune = await runCli(POOL_BIN, ['prune', '--json', '--repo', repo.dir], {
      cwd: repo.dir,
      env: ENV,
    });
    expect(prune.code, prune.stdout).toBe(0);

    expect(existsSync(path.join(wt, '.git'))).toBe(true);
    expect(await repo.git(['rev-parse', 'HEAD'], wt)).toBe(head);
    const listed = await repo.git(['worktree', 'list', '--porcelain']);
    expect(listed).toContain(`worktree ${wt}`);
  });
});
