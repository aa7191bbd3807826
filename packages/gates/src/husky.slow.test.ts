/**
 * `gates install` in a fresh husky 9 repository with `pre-commit` and `commit-msg` hooks: the
 * gates join `.husky/pre-commit`, core.hooksPath stays husky's, and from the main checkout, a
 * worktree made by hand and a pool slot, husky's hooks still run (a bad message is rejected)
 * and so do the gates (a build error is rejected). `gates uninstall` restores the script. The
 * subject is the hooks, not the build: the quick build gate (fixtures.testutil.ts).
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT, runCli, type TempRepo } from '@wtpool/testkit';
import type { InstallResult } from './install.js';
import { ENV, POOL_CONFIG, gates, makeQuickRepo, pool, type Lease } from './fixtures.testutil.js';

const HUSKY = path.join(PROJECT_ROOT, 'node_modules/husky/bin.js');
const PRE_COMMIT =
  'echo "husky pre-commit ran" >> "$(git rev-parse --show-toplevel)/husky-ran.log"\n';
// Conventional-commit style check: the kind of commit-msg hook husky repositories have.
const COMMIT_MSG =
  'grep -Eq "^(feat|fix|chore)(\\(.+\\))?: " "$1" || { echo "commit-msg: bad message" >&2; exit 1; }\n';

async function commitIn(repo: TempRepo, cwd: string, file: string, content: string, msg: string) {
  await repo.write(file, content, cwd);
  await repo.git(['add', '--', file], cwd);
  return runCli('git', ['commit', '-q', '-m', msg], { cwd, env: ENV });
}

describe('gates install with husky 9', () => {
  let repo: TempRepo;
  const places: { where: string; cwd: string }[] = [];

  beforeAll(async () => {
    repo = await makeQuickRepo(POOL_CONFIG);
    await repo.write('.gitignore', 'dist/\nnode_modules/\nhusky-ran.log\n');
    // husky 9 as its own install does it: core.hooksPath=.husky/_, `_` generated and ignored.
    const h = await runCli('node', [HUSKY], { cwd: repo.dir, env: ENV });
    expect(h.code, h.stderr).toBe(0);
    await repo.write('.husky/pre-commit', PRE_COMMIT);
    await repo.write('.husky/commit-msg', COMMIT_MSG);
    await repo.git(['add', '.']);
    await repo.git(['commit', '-q', '--no-verify', '-m', 'chore: husky']);

    const r = await gates(['install', '--json'], repo.dir);
    expect(r.code, r.stderr).toBe(0);
    const res = r.json<InstallResult>();
    expect(res.mode).toBe('directory');
    expect(res.manager).toBe('husky');
    expect(res.hook).toBe(path.join(repo.dir, '.husky/pre-commit'));
    expect(await repo.git(['config', '--get', 'core.hooksPath'])).toBe('.husky/_');
    const script = readFileSync(path.join(repo.dir, '.husky/pre-commit'), 'utf8');
    expect(script).toContain('gates pre-commit');
    expect(script).toContain(PRE_COMMIT.trim()); // husky's own line is kept
    await repo.git(['commit', '-q', '-m', 'chore: gates in husky pre-commit', '.husky/pre-commit']);
    places.push({ where: 'the main checkout', cwd: repo.dir });

    // A worktree made by hand has no `.husky/_` (ignored) until it is armed.
    const byHand = path.join(repo.sandbox, 'by-hand');
    await repo.git(['worktree', 'add', '-q', '-b', 'by-hand', byHand]);
    expect(existsSync(path.join(byHand, '.husky/_'))).toBe(false);
    const again = (await gates(['install', '--json'], byHand)).json<InstallResult>();
    expect(again.armed).toEqual([byHand]);
    places.push({ where: 'a worktree made by hand', cwd: byHand });

    await pool(['init'], repo);
    const lease = await pool<Lease>(['acquire', 'agent-1', 'husky', '--no-wait'], repo);
    expect(existsSync(path.join(lease.path, '.husky/_/h'))).toBe(true);
    places.push({ where: 'a pool slot', cwd: lease.path });
  }, 600_000);
  afterAll(() => repo.cleanup());

  it('keeps husky hooks and the gates running everywhere', async () => {
    for (const { where, cwd } of places) {
      const head = await repo.git(['rev-parse', 'HEAD'], cwd);
      const badMsg = await commitIn(repo, cwd, 'src/ok.ts', 'export const ok = 1;\n', 'oops');
      expect(badMsg.code, where).not.toBe(0);
      expect(badMsg.stderr, where).toContain('commit-msg: bad message');
      expect(await repo.git(['rev-parse', 'HEAD'], cwd), where).toBe(head);

      const badBuild = await commitIn(
        repo,
        cwd,
        'src/bad.ts',
        'export const bad = 1; // BROKEN\n',
        'feat: bad build',
      );
      expect(badBuild.code, where).not.toBe(0);
      expect(badBuild.stdout + badBuild.stderr, where).toContain('the build gate failed');
      await repo.git(['rm', '-q', '-f', 'src/bad.ts'], cwd);

      const good = await runCli('git', ['commit', '-q', '-m', 'feat: ok'], { cwd, env: ENV });
      expect(good.code, `${where}: ${good.stdout}${good.stderr}`).toBe(0);
      expect(await repo.git(['rev-parse', 'HEAD~1'], cwd), where).toBe(head);
      // husky's pre-commit ran for the good commit (and the rejected ones before it).
      expect(readFileSync(path.join(cwd, 'husky-ran.log'), 'utf8'), where).toContain(
        'husky pre-commit ran',
      );
    }
  }, 900_000);

  it('uninstall takes the gates out of .husky/pre-commit and leaves husky as it was', async () => {
    const r = await gates(['uninstall', '--json'], repo.dir);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(path.join(repo.dir, '.husky/pre-commit'), 'utf8')).toBe(PRE_COMMIT);
    expect(await repo.git(['config', '--get', 'core.hooksPath'])).toBe('.husky/_');
  });
});
