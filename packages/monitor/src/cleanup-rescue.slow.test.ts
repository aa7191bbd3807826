/**
 * `monitor cleanup-leaks --yes` loses nothing (issue 10, item 1): the expired lease of a dead
 * holder and an orphan worktree, each holding an ignored `.env.local`, an ignored `build/`
 * output and a nested repository with a commit and an uncommitted file: every byte is read
 * back from a rescue ref afterwards, or still on disk when cleanup refused.
 * Build first (`pnpm -s build`): this spawns packages/monitor/bin/monitor.js.
 */
import { spawn } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '@wtpool/config';
import { WorktreePool } from '@wtpool/pool';
import { makeTempRepo, PROJECT_ROOT, runCli, type TempRepo } from '@wtpool/testkit';

const BIN = path.join(PROJECT_ROOT, 'packages/monitor/bin/monitor.js');
const repos: TempRepo[] = [];
afterEach(async () => {
  await Promise.all(repos.splice(0).map((r) => r.cleanup()));
});

const PLANTED: Record<string, string> = {
  '.env.local': 'API_KEY=not-in-git\n',
  'build/out.txt': 'a build output nobody can rebuild\n',
  'nested/committed.txt': 'committed in the nested repo\n',
  'nested/uncommitted.txt': 'not committed in the nested repo\n',
};

async function plant(repo: TempRepo, dir: string, tag: string): Promise<void> {
  for (const [rel, text] of Object.entries(PLANTED)) {
    await fs.mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
    await fs.writeFile(path.join(dir, rel), `${tag}: ${text}`);
  }
  await repo.git(['init', '-q', '-b', 'trunk'], path.join(dir, 'nested'));
  await repo.git(['add', 'committed.txt'], path.join(dir, 'nested'));
  await repo.git(['commit', '-q', '-m', `${tag} nested commit`], path.join(dir, 'nested'));
}

/** Reads every planted byte of `tag` back from the rescue refs whose name contains `where`. */
async function expectRecoverable(repo: TempRepo, where: string, tag: string): Promise<void> {
  const refs = (await repo.git(['for-each-ref', '--format=%(refname)', 'refs/wtpool/rescue/']))
    .split('\n')
    .filter((r) => r.includes(where));
  const main = refs.find((r) => !r.includes('-nested/'));
  const work = refs.find((r) => r.endsWith('/work'));
  const head = refs.find((r) => r.endsWith('/heads/trunk'));
  expect([main, work, head].every(Boolean), refs.join('\n')).toBe(true);
  const show = (ref: string, rel: string) => repo.git(['show', `${ref}:${rel}`]);
  expect(await show(main!, '.env.local')).toBe(`${tag}: ${PLANTED['.env.local']!.trim()}`);
  expect(await show(main!, 'build/out.txt')).toBe(`${tag}: ${PLANTED['build/out.txt']!.trim()}`);
  expect(await show(work!, 'uncommitted.txt')).toBe(
    `${tag}: ${PLANTED['nested/uncommitted.txt']!.trim()}`,
  );
  expect(await show(work!, 'committed.txt')).toBe(
    `${tag}: ${PLANTED['nested/committed.txt']!.trim()}`,
  );
  expect(await repo.git(['log', '--format=%s', head!])).toBe(`${tag} nested commit`);
}

describe('cleanup-leaks --yes saves ignored files and nested repositories', () => {
  it('expired lease of a dead holder and an orphan worktree: every byte recoverable', async () => {
    const repo = await makeTempRepo({
      files: { 'README.md': '# test\n', '.gitignore': '.env.local\nbuild/\n' },
    });
    repos.push(repo);
    await fs.writeFile(path.join(repo.dir, 'pool.config.yaml'), 'scale:\n  min: 1\n  max: 2\n');
    const loaded = loadConfig({ repo: repo.dir, env: {} });
    const pool = new WorktreePool(loaded);
    await pool.initialize({ size: 1 });
    const holder = spawn('sleep', ['600'], { stdio: 'ignore' });
    const lease = await pool.lease({ agent: 'a', task: 'work', holderPid: holder.pid! });
    await plant(repo, lease.path, 'leased');
    holder.kill('SIGKILL');
    await new Promise((r) => holder.on('exit', r));

    // An orphan worktree under the pool root, unknown to the registry.
    const orphan = path.join(path.dirname(lease.path), 'stray');
    await repo.git(['worktree', 'add', '-q', '--detach', orphan, 'main']);
    await plant(repo, orphan, 'orphan');

    const r = await runCli(BIN, ['cleanup-leaks', '--yes', '--json', '--repo', repo.dir], {
      cwd: repo.dir,
    });
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const actions = r.json<{ actions: { kind: string; ok: boolean }[] }>().actions;
    expect(
      actions.filter((a) => a.kind === 'expired-lease' || a.kind === 'orphan-worktree'),
    ).toHaveLength(2);
    expect(actions.every((a) => a.ok)).toBe(true);

    await expectRecoverable(repo, `/${lease.slot}/`, 'leased');
    await expectRecoverable(repo, '/orphan-stray/', 'orphan');
    expect(existsSync(orphan)).toBe(false);
    expect(existsSync(path.join(lease.path, 'nested'))).toBe(false);
  });

  it('an orphan worktree whose nested repository cannot be saved is left on disk', async () => {
    const repo = await makeTempRepo({
      files: { 'README.md': '# test\n', '.gitignore': '.env.local\nbuild/\n' },
    });
    repos.push(repo);
    await fs.writeFile(path.join(repo.dir, 'pool.config.yaml'), 'scale:\n  min: 1\n  max: 2\n');
    const pool = new WorktreePool(loadConfig({ repo: repo.dir, env: {} }));
    await pool.initialize({ size: 1 });
    const slot = (await pool.getStatus()).slots[0]!;
    const orphan = path.join(path.dirname(slot.path), 'stray');
    await repo.git(['worktree', 'add', '-q', '--detach', orphan, 'main']);
    await plant(repo, orphan, 'orphan');
    await fs.writeFile(path.join(orphan, 'nested/.git/HEAD'), 'garbage\n');

    const r = await runCli(BIN, ['cleanup-leaks', '--yes', '--json', '--repo', repo.dir], {
      cwd: repo.dir,
    });
    const actions = r.json<{ actions: { kind: string; ok: boolean; error?: string }[] }>().actions;
    const a = actions.find((x) => x.kind === 'orphan-worktree');
    expect(a?.ok).toBe(false);
    expect(a?.error).toContain('nested');
    for (const [rel, text] of Object.entries(PLANTED)) {
      expect(await fs.readFile(path.join(orphan, rel), 'utf8')).toBe(`orphan: ${text}`);
    }
  });
});
