/**
 * The lease branch's life through git (D66): created and checked out by `git switch -c`,
 * detached and deleted by compare-and-swap `git update-ref`; git's own view is the oracle.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makeTempRepo, type TempRepo } from '@wtpool/testkit';
import { deleteBranchAt, detachAndDeleteBranch, detachAt, switchToNewBranch } from './worktree.js';

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

describe('switchToNewBranch', () => {
  it('creates the branch at the base and checks it out', async () => {
    const { repo, dir } = await slot();
    expect(await switchToNewBranch(dir, 'pool/wt-1/task', 'main')).toBe(true);
    expect(await repo.git(['symbolic-ref', 'HEAD'], dir)).toBe('refs/heads/pool/wt-1/task');
    expect(await repo.git(['rev-parse', 'pool/wt-1/task'])).toBe(
      await repo.git(['rev-parse', 'main']),
    );
    expect(await repo.git(['status', '--porcelain'], dir)).toBe('');
    // git wrote the reflog of the new branch (the hand-made ref had none).
    expect(await repo.git(['reflog', 'show', '--format=%gs', 'pool/wt-1/task'])).toMatch(
      /branch: Created from main/,
    );
  });

  it('on a slot detached at the base: the branch at HEAD (no tree walk), hooks as before', async () => {
    const { repo, dir, common } = await slot();
    const hook = path.join(common, 'hooks', 'post-checkout');
    await fs.mkdir(path.dirname(hook), { recursive: true });
    await fs.writeFile(hook, '#!/bin/sh\necho "$@" > "$PWD/.post-checkout"\n', { mode: 0o755 });
    expect(await switchToNewBranch(dir, 'pool/wt-1/fast', 'main', common)).toBe(true);
    expect(await repo.git(['symbolic-ref', 'HEAD'], dir)).toBe('refs/heads/pool/wt-1/fast');
    const main = await repo.git(['rev-parse', 'main']);
    expect(await repo.git(['rev-parse', 'pool/wt-1/fast'])).toBe(main);
    // post-checkout ran with (old HEAD, new HEAD, branch checkout), as for `switch -c … main`.
    expect((await fs.readFile(path.join(dir, '.post-checkout'), 'utf8')).trim()).toBe(
      `${main} ${main} 1`,
    );
    await fs.rm(path.join(dir, '.post-checkout'));
    expect(await repo.git(['status', '--porcelain'], dir)).toBe('');
    // An existing branch is refused on this path too.
    await repo.git(['update-ref', '--no-deref', 'HEAD', main], dir);
    expect(await switchToNewBranch(dir, 'pool/wt-1/fast', 'main', common)).toBe(false);
  });

  it('on a slot whose base moved on: the branch at the new base, its files checked out', async () => {
    const { repo, dir, common } = await slot();
    const moved = await repo.commit({ 'new.txt': 'after the slot was made\n' });
    expect(await switchToNewBranch(dir, 'pool/wt-1/moved', 'main', common)).toBe(true);
    expect(await repo.git(['rev-parse', 'HEAD'], dir)).toBe(moved);
    expect(await fs.readFile(path.join(dir, 'new.txt'), 'utf8')).toBe('after the slot was made\n');
    expect(await repo.git(['status', '--porcelain'], dir)).toBe('');
  });

  it('never takes over an existing branch, loose or packed', async () => {
    const { repo, dir, common } = await slot();
    await repo.git(['branch', 'pool/wt-1/loose']);
    expect(await switchToNewBranch(dir, 'pool/wt-1/loose', 'main')).toBe(false);
    await repo.git(['branch', 'pool/wt-1/packed']);
    await repo.git(['pack-refs', '--all']);
    expect(await switchToNewBranch(dir, 'pool/wt-1/packed', 'main')).toBe(false);
    expect(
      (await fs.readFile(path.join(common, 'worktrees', 'wt-1', 'HEAD'), 'utf8')).trim(),
    ).toMatch(/^[0-9a-f]{40}$/);
  });

  it('checks out a base that moved on since the slot was reset', async () => {
    const { repo, dir } = await slot();
    await repo.commit({ 'new.txt': 'n\n' }, 'main moves');
    expect(await switchToNewBranch(dir, 'pool/wt-1/b', 'main')).toBe(true);
    expect(await repo.git(['rev-parse', 'HEAD'], dir)).toBe(await repo.git(['rev-parse', 'main']));
    await expect(fs.readFile(path.join(dir, 'new.txt'), 'utf8')).resolves.toBe('n\n');
  });
});

describe('detachAt and deleteBranchAt', () => {
  it('detach a clean lease at the base and delete its empty branch, loose or packed', async () => {
    const { repo, dir, common } = await slot();
    const base = await repo.git(['rev-parse', 'main']);
    expect(await switchToNewBranch(dir, 'pool/wt-1/t', 'main')).toBe(true);
    // Still checked out here: git branch -D would refuse to delete it, and so do we.
    expect(await deleteBranchAt(common, 'pool/wt-1/t', base)).toBe(false);
    expect(await detachAt(dir, base)).toBe(true);
    expect(await repo.git(['rev-parse', 'HEAD'], dir)).toBe(base);
    await expect(repo.git(['symbolic-ref', '-q', 'HEAD'], dir)).rejects.toThrow();
    await repo.git(['pack-refs', '--all']); // a packed copy must go too, not come back
    expect(await deleteBranchAt(common, 'pool/wt-1/t', base)).toBe(true);
    expect(await repo.git(['branch', '--list', 'pool/*'])).toBe('');
    expect(await repo.git(['status', '--porcelain'], dir)).toBe('');
    expect(await repo.git(['fsck', '--no-progress'])).toBe('');
  });

  it('leave a branch with other commits, and a HEAD that moved, alone', async () => {
    const { repo, dir, common } = await slot();
    const base = await repo.git(['rev-parse', 'main']);
    expect(await switchToNewBranch(dir, 'pool/wt-1/ahead', 'main')).toBe(true);
    const ahead = await repo.commit({ 'x.txt': 'x\n' }, 'ahead', dir);
    expect(await detachAt(dir, base)).toBe(false);
    expect(await repo.git(['symbolic-ref', 'HEAD'], dir)).toBe('refs/heads/pool/wt-1/ahead');
    await repo.git(['switch', '-q', '--detach'], dir);
    expect(await deleteBranchAt(common, 'pool/wt-1/ahead', base)).toBe(false);
    expect(await repo.git(['rev-parse', 'pool/wt-1/ahead'])).toBe(ahead);
  });
});

describe('detachAndDeleteBranch (one git process for a clean release)', () => {
  it('detaches HEAD at the commit and deletes the empty branch', async () => {
    const { repo, dir, common } = await slot();
    const main = await repo.git(['rev-parse', 'main']);
    expect(await switchToNewBranch(dir, 'pool/wt-1/done', 'main', common)).toBe(true);
    expect(await detachAndDeleteBranch(dir, common, 'pool/wt-1/done', main)).toBe('both');
    expect(await repo.git(['rev-parse', 'HEAD'], dir)).toBe(main);
    await expect(repo.git(['symbolic-ref', '-q', 'HEAD'], dir)).rejects.toThrow();
    expect(await repo.git(['branch', '--list', 'pool/*'])).toBe('');
    expect(await repo.git(['reflog', 'show', '-1', '--format=%gs', 'HEAD'], dir)).toBe(
      'wtpool: release',
    );
  });

  it('changes nothing when HEAD moved on, or another worktree has the branch', async () => {
    const { repo, dir, common } = await slot();
    const main = await repo.git(['rev-parse', 'main']);
    expect(await switchToNewBranch(dir, 'pool/wt-1/work', 'main', common)).toBe(true);
    const work = await repo.commit({ 'w.txt': 'work\n' }, 'work', dir);
    expect(await detachAndDeleteBranch(dir, common, 'pool/wt-1/work', main)).toBe('none');
    expect(await repo.git(['symbolic-ref', 'HEAD'], dir)).toBe('refs/heads/pool/wt-1/work');
    expect(await repo.git(['rev-parse', 'pool/wt-1/work'])).toBe(work);
    // Checked out in a second worktree: not deleted, and this one is left as it was.
    const other = path.join(repo.sandbox, 'wt-2');
    await repo.git(['worktree', 'add', '-q', '--detach', other, 'main']);
    expect(await switchToNewBranch(other, 'pool/wt-2/t', 'main', common)).toBe(true);
    await repo.git(['symbolic-ref', 'HEAD', 'refs/heads/pool/wt-2/t'], dir);
    expect(await detachAndDeleteBranch(dir, common, 'pool/wt-2/t', main)).toBe('none');
    expect(await repo.git(['symbolic-ref', 'HEAD'], dir)).toBe('refs/heads/pool/wt-2/t');
    expect(await repo.git(['rev-parse', 'pool/wt-2/t'])).toBe(main);
  });

  it('detaches but keeps a branch that moved (the caller deletes it its own way, or keeps it)', async () => {
    const { repo, dir, common } = await slot();
    const main = await repo.git(['rev-parse', 'main']);
    const moved = await repo.commit({ 'm.txt': 'moved\n' }, 'moved');
    await repo.git(['branch', 'pool/wt-1/moved', moved]);
    expect(await detachAndDeleteBranch(dir, common, 'pool/wt-1/moved', main)).toBe('detached');
    expect(await repo.git(['rev-parse', 'HEAD'], dir)).toBe(main);
    expect(await repo.git(['rev-parse', 'pool/wt-1/moved'])).toBe(moved);
  });
});
