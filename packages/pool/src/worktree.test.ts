/**
 * The warm-path branch switch without a git process: git must see exactly what
 * `git switch -c <branch> <base>` would have made, and every unusual case falls back to git.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makeTempRepo, type TempRepo } from '@wtpool/testkit';
import {
  deleteBranchWithoutGit,
  detachWithoutGit,
  switchToNewBranch,
  switchWithoutGit,
} from './worktree.js';

const repos: TempRepo[] = [];
afterEach(async () => {
  await Promise.all(repos.splice(0).map((r) => r.cleanup()));
});

async function slot() {
  const repo = await makeTempRepo();
  repos.push(repo);
  const dir = path.join(repo.sandbox, 'wt-1');
  await repo.git(['worktree', 'add', '-q', '--detach', dir, 'main']);
  return { repo, dir, common: path.join(repo.dir, '.git') };
}

describe('switchWithoutGit', () => {
  it('creates the branch at the base and points HEAD at it, as git would', async () => {
    const { repo, dir, common } = await slot();
    expect(await switchWithoutGit(dir, 'pool/wt-1/task', 'main', common)).toBe(true);
    expect(await repo.git(['symbolic-ref', 'HEAD'], dir)).toBe('refs/heads/pool/wt-1/task');
    expect(await repo.git(['rev-parse', 'pool/wt-1/task'])).toBe(
      await repo.git(['rev-parse', 'main']),
    );
    expect(await repo.git(['status', '--porcelain'], dir)).toBe('');
    expect(await repo.git(['branch', '--list', 'pool/*'])).toContain('pool/wt-1/task');
    // The branch is a normal branch: commits land on it, and it can be deleted.
    await repo.commit({ 'a.txt': 'a\n' }, 'work', dir);
    expect(await repo.git(['rev-list', '--count', 'main..pool/wt-1/task'])).toBe('1');
  });

  it('never takes over an existing branch, loose or packed', async () => {
    const { repo, dir, common } = await slot();
    await repo.git(['branch', 'pool/wt-1/loose']);
    expect(await switchWithoutGit(dir, 'pool/wt-1/loose', 'main', common)).toBe(false);
    await repo.git(['branch', 'pool/wt-1/packed']);
    await repo.git(['pack-refs', '--all']);
    expect(await switchWithoutGit(dir, 'pool/wt-1/packed', 'main', common)).toBe(false);
    expect(
      (await fs.readFile(path.join(common, 'worktrees', 'wt-1', 'HEAD'), 'utf8')).trim(),
    ).toMatch(/^[0-9a-f]{40}$/);
  });

  it('reads a packed base and declines when the base moved on (git then checks it out)', async () => {
    const { repo, dir, common } = await slot();
    await repo.git(['pack-refs', '--all']);
    expect(await switchWithoutGit(dir, 'pool/wt-1/a', 'main', common)).toBe(true);
    const other = await slot();
    await other.repo.commit({ 'new.txt': 'n\n' }, 'main moves');
    expect(await switchWithoutGit(other.dir, 'pool/wt-1/b', 'main', other.common)).toBeUndefined();
    expect(await switchToNewBranch(other.dir, 'pool/wt-1/b', 'main', other.common)).toBe(true);
    expect(await other.repo.git(['rev-parse', 'HEAD'], other.dir)).toBe(
      await other.repo.git(['rev-parse', 'main']),
    );
    await expect(fs.readFile(path.join(other.dir, 'new.txt'), 'utf8')).resolves.toBe('n\n');
  });

  it('declines on a HEAD that is not detached, or a ref in the way', async () => {
    const { repo, dir, common } = await slot();
    await repo.git(['switch', '-q', '-c', 'topic'], dir);
    expect(await switchWithoutGit(dir, 'pool/wt-1/x', 'main', common)).toBeUndefined();
    const s2 = await slot();
    await s2.repo.git(['branch', 'pool']); // refs/heads/pool is a file: no directory can go there
    expect(await switchWithoutGit(s2.dir, 'pool/wt-1/x', 'main', s2.common)).toBeUndefined();
  });
});

describe('release without git', () => {
  it('detaches a clean lease at the base and deletes its empty branch, as git would', async () => {
    const { repo, dir, common } = await slot();
    const base = await repo.git(['rev-parse', 'main']);
    expect(await switchWithoutGit(dir, 'pool/wt-1/t', 'main', common)).toBe(true);
    // Still checked out here: git would refuse to delete it, and so do we.
    expect(await deleteBranchWithoutGit(common, 'pool/wt-1/t', base)).toBe(false);
    expect(await detachWithoutGit(dir, 'pool/wt-1/other', base)).toBe(false);
    expect(await detachWithoutGit(dir, 'pool/wt-1/t', base)).toBe(true);
    expect(await repo.git(['rev-parse', 'HEAD'], dir)).toBe(base);
    await expect(repo.git(['symbolic-ref', '-q', 'HEAD'], dir)).rejects.toThrow();
    expect(await deleteBranchWithoutGit(common, 'pool/wt-1/t', base)).toBe(true);
    expect(await repo.git(['branch', '--list', 'pool/*'])).toBe('');
    expect(await repo.git(['status', '--porcelain'], dir)).toBe('');
    expect(await repo.git(['fsck', '--no-progress'])).toBe('');
  });

  it('leaves branches with other commits, packed branches and branches checked out elsewhere to git', async () => {
    const { repo, dir, common } = await slot();
    const base = await repo.git(['rev-parse', 'main']);
    await repo.git(['branch', 'pool/wt-1/ahead']);
    await repo.commit({ 'x.txt': 'x\n' }, 'ahead', dir); // dir is detached: make a real branch commit instead
    await repo.git(['branch', '-f', 'pool/wt-1/ahead', 'HEAD'], dir);
    expect(await deleteBranchWithoutGit(common, 'pool/wt-1/ahead', base)).toBe(false);
    await repo.git(['branch', 'pool/wt-1/packed', base]);
    await repo.git(['pack-refs', '--all']);
    expect(await deleteBranchWithoutGit(common, 'pool/wt-1/packed', base)).toBe(false);
    expect(await repo.git(['branch', '--list', 'pool/*'])).toContain('pool/wt-1/packed');
  });
});
