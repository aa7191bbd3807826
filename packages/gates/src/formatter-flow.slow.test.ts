/**
 * The gates and the repository's own formatter flow (issue 21 item 11), with real git, the real
 * `pool setup` / `gates install` CLIs and this workspace's husky, lint-staged and prettier
 * (offline): a repository without a formatter commits after `pool setup`; in a husky +
 * lint-staged (`prettier --write`) repository a badly formatted commit is still fixed and
 * committed after `gates install`, in the main checkout and in a worktree.
 */
import { existsSync, readFileSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT, makeTempRepo, runCli, type TempRepo } from '@wtpool/testkit';
import type { InstallResult } from './install.js';
import {
  ENV,
  POOL_BIN,
  QUICK_BUILD,
  brokenMessage,
  gates,
  makeQuickRepo,
} from './fixtures.testutil.js';

const UGLY = 'export const  ugly =  {a:1}\n';
/** What prettier makes of UGLY (its default style). */
const PRETTY = 'export const ugly = { a: 1 };\n';

async function commitIn(repo: TempRepo, cwd: string, file: string, content: string, env = ENV) {
  await repo.write(file, content, cwd);
  await repo.git(['add', '--', file], cwd);
  const r = await runCli('git', ['commit', '-q', '-m', `add ${file}`], { cwd, env });
  return { ...r, out: r.stdout + r.stderr };
}

describe('a repository without a formatter, after `pool setup`', () => {
  let repo: TempRepo;
  // No prettier anywhere: node, git and npm from the system only.
  const bare: NodeJS.ProcessEnv = {
    PATH: [path.dirname(process.execPath), '/usr/bin', '/bin'].join(path.delimiter),
    RUN_TESTS_ON_COMMIT: '',
    npm_config_update_notifier: 'false',
  };
  beforeAll(async () => {
    repo = await makeTempRepo({
      files: {
        'package.json': JSON.stringify(
          { name: 'plain', private: true, type: 'module', scripts: { build: 'node build.mjs' } },
          null,
          2,
        ),
        '.gitignore': 'node_modules/\n',
        'build.mjs': QUICK_BUILD,
        'src/index.ts': 'export const one = 1;\n',
      },
    });
    const which = await runCli('sh', ['-c', 'command -v prettier || echo none'], { env: bare });
    expect(which.stdout.trim()).toBe('none');
  });
  afterAll(() => repo.cleanup());

  it('writes no format command, and commits pass the format gate saying once that there is nothing to check', async () => {
    const s = await runCli(POOL_BIN, ['setup', '--json', '--repo', repo.dir], {
      cwd: repo.dir,
      env: bare,
    });
    expect(s.code, s.stdout + s.stderr).toBe(0);
    const setup = s.json<{ detected: { formatter: string | null }; gates: { ok: boolean } }>();
    expect(setup.detected.formatter).toBeNull();
    expect(setup.gates.ok).toBe(true);
    const yaml = readFileSync(path.join(repo.dir, 'pool.config.yaml'), 'utf8');
    expect(yaml).not.toMatch(/^\s*format:/m);
    expect(yaml).toContain('no formatter found');

    const wt = path.join(repo.sandbox, 'by-hand');
    await repo.git(['worktree', 'add', '-q', '-b', 'by-hand', wt]);
    for (const cwd of [repo.dir, wt]) {
      const ok = await commitIn(repo, cwd, 'src/a.ts', 'export const  a =1\n', bare);
      expect(ok.code, `${cwd}: ${ok.out}`).toBe(0);
      expect(ok.out).not.toContain('not found');
      expect(ok.out.split('no formatter: prettier is not installed').length - 1, ok.out).toBe(1);
      // The gates are still there: the build gate rejects a broken commit.
      const bad = await commitIn(repo, cwd, 'src/b.ts', 'export const b = 1; // BROKEN\n', bare);
      expect(bad.code).not.toBe(0);
      expect(bad.out).toContain(brokenMessage('src/b.ts'));
      await repo.git(['rm', '-q', '-f', 'src/b.ts'], cwd);
    }
  });
});

describe('husky + lint-staged (`prettier --write`), after `gates install`', () => {
  let repo: TempRepo;
  const HUSKY = path.join(PROJECT_ROOT, 'node_modules/husky/bin.js');
  /** Dependencies "installed": this workspace's node_modules (husky, lint-staged, prettier, gates). */
  const linkDeps = (cwd: string) =>
    symlinkSync(path.join(PROJECT_ROOT, 'node_modules'), path.join(cwd, 'node_modules'));

  beforeAll(async () => {
    repo = await makeQuickRepo();
    await repo.write(
      'package.json',
      JSON.stringify(
        {
          name: 'tiny',
          private: true,
          type: 'module',
          'lint-staged': { '*.{ts,mjs,json}': 'prettier --write' },
        },
        null,
        2,
      ) + '\n',
    );
    await repo.write('.gitignore', 'dist/\nnode_modules\n'); // node_modules is a symlink here
    linkDeps(repo.dir);
    const h = await runCli('node', [HUSKY], { cwd: repo.dir, env: ENV });
    expect(h.code, h.stderr).toBe(0);
    await repo.write('.husky/pre-commit', 'npx lint-staged\n');
    await repo.git(['add', '.']);
    await repo.git(['commit', '-q', '--no-verify', '-m', 'husky and lint-staged']);
  });
  afterAll(() => repo.cleanup());

  it('before adoption lint-staged fixes the commit; after it, the gates run after lint-staged and the fixed commit goes through, in the main checkout and a worktree', async () => {
    const before = await commitIn(repo, repo.dir, 'src/before.ts', UGLY);
    expect(before.code, before.out).toBe(0);
    expect(await repo.git(['show', 'HEAD:src/before.ts'])).toBe(PRETTY.trimEnd());

    const r = await gates(['install', '--json'], repo.dir);
    expect(r.code, r.stderr).toBe(0);
    const res = r.json<InstallResult>();
    expect(res.mode).toBe('directory');
    expect(res.notes.join('\n')).toContain('the gates run after `npx lint-staged`');
    const script = readFileSync(path.join(repo.dir, '.husky/pre-commit'), 'utf8');
    expect(script.indexOf('npx lint-staged')).toBeLessThan(script.indexOf('gates pre-commit'));
    await repo.git(['commit', '-q', '-m', 'gates in husky pre-commit', '.husky/pre-commit']);

    const wt = path.join(repo.sandbox, 'by-hand');
    await repo.git(['worktree', 'add', '-q', '-b', 'by-hand', wt]);
    linkDeps(wt);
    expect((await gates(['install', '--json'], wt)).json<InstallResult>().armed).toEqual([wt]);
    expect(existsSync(path.join(wt, '.husky/_/h'))).toBe(true);

    for (const cwd of [repo.dir, wt]) {
      const head = await repo.git(['rev-parse', 'HEAD'], cwd);
      const fixed = await commitIn(repo, cwd, 'src/ugly.ts', UGLY);
      expect(fixed.code, `${cwd}: ${fixed.out}`).toBe(0);
      expect(await repo.git(['show', 'HEAD:src/ugly.ts'], cwd)).toBe(PRETTY.trimEnd());
      expect(await repo.git(['rev-parse', 'HEAD~1'], cwd)).toBe(head);
      // The gates ran on the fixed files (and passed the format gate)…
      expect(fixed.out, cwd).toMatch(/ok\s+format\s+prettier --check/);
      // …and still reject what lint-staged cannot fix.
      const bad = await commitIn(repo, cwd, 'src/bad.ts', 'export const bad = 1; // BROKEN\n');
      expect(bad.code, cwd).not.toBe(0);
      expect(bad.out).toContain('the build gate failed');
      await repo.git(['rm', '-q', '-f', 'src/bad.ts'], cwd);
      await repo.git(['rm', '-q', '-f', 'src/ugly.ts'], cwd);
      await repo.git(['commit', '-q', '--no-verify', '-m', 'clean up'], cwd);
    }
  });
});
