/**
 * The must-show outcomes of the pre-commit gates, through real `git commit` runs in temp
 * repositories with the toolkit's hook installed by `gates install`: from the main checkout,
 * from a worktree created by hand after the install, and from a pool slot the real pool CLI
 * created and leased after the install.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TempRepo } from '@wtpool/testkit';
import {
  FAILING_TEST,
  POOL_CONFIG,
  commit,
  gates,
  makeQuickRepo,
  makeTsRepo,
  pool,
  type Lease,
} from './fixtures.testutil.js';

type Place = { where: string; setup: (repo: TempRepo) => Promise<string> };

/** Where the commits are made: each setup runs after `gates install` and returns the directory. */
const places: Place[] = [
  { where: 'the main checkout', setup: async (repo) => repo.dir },
  {
    where: 'a worktree created by hand with `git worktree add`',
    setup: async (repo) => {
      // Created after the install, without any help from the toolkit.
      const cwd = path.join(repo.sandbox, 'by-hand');
      await repo.git(['worktree', 'add', '-q', '-b', 'by-hand', cwd]);
      expect(existsSync(path.join(cwd, 'hooks'))).toBe(false);
      return cwd;
    },
  },
  {
    where: 'a pool slot worktree (`pool init`, `pool acquire`)',
    setup: async (repo) => {
      await pool(['init'], repo);
      const lease = await pool<Lease>(['acquire', 'agent-1', 'gates check', '--no-wait'], repo);
      expect(lease.branch).toBe('pool/wt-1/gates-check');
      return lease.path;
    },
  },
];

describe.each(places)('pre-commit gates from $where', ({ setup }) => {
  let repo: TempRepo;
  let cwd: string;
  const head = () => repo.git(['rev-parse', 'HEAD'], cwd);

  beforeAll(async () => {
    repo = await makeTsRepo(POOL_CONFIG);
    const r = await gates(['install', '--json'], repo.dir);
    expect(r.code, r.stderr).toBe(0);
    cwd = await setup(repo);
    // The hook git runs here is the one `gates install` wrote to the common dir.
    const hook = await repo.git(
      ['rev-parse', '--path-format=absolute', '--git-path', 'hooks/pre-commit'],
      cwd,
    );
    expect(hook).toBe(path.join(repo.dir, '.git/hooks/pre-commit'));
  });
  afterAll(() => repo.cleanup());

  it('rejects an unformatted file at the format gate', async () => {
    const before = await head();
    const r = await commit(repo, cwd, { 'src/ugly.ts': 'export const  ugly =  {a:1}\n' });
    expect(r.code).not.toBe(0);
    expect(r.stdout + r.stderr).toContain('the format gate failed');
    expect(r.stdout + r.stderr).toContain('src/ugly.ts');
    expect(r.stdout + r.stderr).toMatch(/reproduce: cd .* && prettier --check/);
    expect(await head()).toBe(before);
    await repo.git(['rm', '-q', '--cached', 'src/ugly.ts'], cwd);
    await repo.write('src/ugly.ts', '', cwd);
    await repo.git(['clean', '-fq', 'src'], cwd);
  });

  it('rejects a type error at the build gate', async () => {
    const before = await head();
    const r = await commit(repo, cwd, { 'src/bad.ts': 'export const bad: number = "one";\n' });
    expect(r.code).not.toBe(0);
    expect(r.stdout + r.stderr).toContain('the build gate failed');
    expect(r.stdout + r.stderr).toContain('TS2322');
    expect(r.stdout + r.stderr).toContain('reproduce: cd');
    expect(await head()).toBe(before);
    await repo.git(['rm', '-q', '-f', 'src/bad.ts'], cwd);
  });

  it('lets a good commit through', async () => {
    const before = await head();
    const r = await commit(repo, cwd, { 'src/good.ts': 'export const good: number = 2;\n' });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(await head()).not.toBe(before);
    expect(await repo.git(['show', '--name-only', '--format=', 'HEAD'], cwd)).toBe('src/good.ts');
  });

  it('runs the tests only with RUN_TESTS_ON_COMMIT=1, and rejects a failing one', async () => {
    const before = await head();
    const r = await commit(
      repo,
      cwd,
      { 'test/fail.test.mjs': FAILING_TEST },
      {
        RUN_TESTS_ON_COMMIT: '1',
      },
    );
    expect(r.code).not.toBe(0);
    expect(r.stdout + r.stderr).toContain('the test gate failed');
    expect(await head()).toBe(before);
    // The same commit without the variable passes: the tests are opt-in on commit.
    const again = await commit(repo, cwd, { 'test/fail.test.mjs': FAILING_TEST });
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(await head()).not.toBe(before);
  });
});

// The details are about staging, config and switches, not what the build checks: quick build.
describe('pre-commit details', () => {
  let repo: TempRepo;
  beforeAll(async () => {
    repo = await makeQuickRepo();
    expect((await gates(['install'], repo.dir)).code).toBe(0);
  });
  afterAll(() => repo.cleanup());

  it('checks what is staged, not the working tree (partially staged files, as lint-staged does)', async () => {
    // Staged: unformatted. Working tree: formatted. The commit must be refused.
    await repo.write('src/part.ts', 'export const  part =  1;\n');
    await repo.git(['add', 'src/part.ts']);
    await repo.write('src/part.ts', 'export const part = 1;\n');
    const r = await gates(['pre-commit', '--json'], repo.dir);
    expect(r.code).toBe(1);
    expect(r.json<{ failed: string }>().failed).toBe('format');
    // lint-staged restored the unstaged (formatted) version of the file.
    expect(await repo.git(['diff', '--name-only'])).toBe('src/part.ts');
    // Staged: formatted. Unstaged: an unformatted edit. The commit passes.
    await repo.git(['add', 'src/part.ts']);
    await repo.write('src/part.ts', 'export const part = 1;\nexport const  later =2\n');
    const ok = await gates(['pre-commit', '--json'], repo.dir);
    expect(ok.code, ok.stdout).toBe(0);
    const report = ok.json<{ ok: boolean; gates: { name: string; status: string }[] }>();
    expect(report.gates.map((g) => `${g.name}:${g.status}`)).toEqual([
      'beads:skipped',
      'format:passed',
      'build:passed',
      'test:skipped',
    ]);
    expect(await repo.git(['diff', '--name-only'])).toBe('src/part.ts');
    await repo.git(['reset', '-q', '--hard']);
  });

  it.each(['', '  ', 'true', 'exit 0', ':'])(
    'refuses a config that disables the build gate (build: %j)',
    async (build) => {
      const file = path.join(repo.sandbox, `disable-${build.trim() || 'empty'}.yaml`);
      await repo.write(
        path.relative(repo.dir, file),
        `gates:\n  build: ${JSON.stringify(build)}\n`,
      );
      const r = await gates(['pre-commit', '--config', file], repo.dir);
      expect(r.code).toBe(3);
      expect(r.stderr).toContain('gates.build');
    },
  );

  it('has no switch that skips the build gate', async () => {
    const r = await gates(['pre-commit', '--no-build'], repo.dir);
    expect(r.code).toBe(2);
    // Environment variables named like skip switches do nothing: a type error still fails.
    await repo.write('src/skip.ts', 'export const skip = 1; // BROKEN\n');
    await repo.git(['add', 'src/skip.ts']);
    const env = { SKIP_BUILD: '1', GATES_SKIP_BUILD: '1', SKIP: 'build', HUSKY: '0' };
    const s = await gates(['pre-commit', '--json'], repo.dir, env);
    expect(s.code).toBe(1);
    expect(s.json<{ failed: string }>().failed).toBe('build');
    await repo.git(['rm', '-q', '-f', 'src/skip.ts']);
  });
});
