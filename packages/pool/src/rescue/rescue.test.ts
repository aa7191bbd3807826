/**
 * The rescue API on its own (real git in a temp repository, no CLI): saveWork then
 * restoreRescue gives back bytes, modes and symlinks; a second restore writes nothing; restore
 * never writes through a symlink or outside its directory, whatever a crafted manifest says.
 */
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makeTempRepo, type TempRepo } from '@wtpool/testkit';
import { limitsOf, readManifest, restoreRescue, saveWork, showRescue } from './index.js';

const repos: TempRepo[] = [];
afterEach(async () => {
  await Promise.all(repos.splice(0).map((r) => r.cleanup()));
});

const LIMITS = limitsOf({ keep: ['node_modules'], disposable: ['dist'], rescueMaxBytes: 1 << 20 });

async function worktreeWithWork() {
  const repo = await makeTempRepo({
    files: { 'README.md': '# r\n', '.gitignore': '.env\nnode_modules/\ndist/\n' },
  });
  repos.push(repo);
  await repo.write('README.md', '# r\nchanged\n');
  await repo.write('dir with space/new file.txt', 'spaces\n');
  await repo.write('run.sh', '#!/bin/sh\necho hi\n');
  await fs.chmod(path.join(repo.dir, 'run.sh'), 0o755);
  await repo.write('.env', 'TOKEN=x\n');
  await fs.chmod(path.join(repo.dir, '.env'), 0o600);
  await fs.symlink('README.md', path.join(repo.dir, 'link'));
  await repo.write('dist/out.js', 'disposable\n');
  await repo.write('node_modules/dep.js', 'cache\n');
  return repo;
}

describe('rescue: save, show, restore', () => {
  it('restores bytes, modes and symlinks; a second restore writes nothing', async () => {
    const repo = await worktreeWithWork();
    const out = await saveWork(repo.dir, 'refs/wtpool/rescue/t/', 'test rescue', LIMITS);
    expect(out.ref).toMatch(/^refs\/wtpool\/rescue\/t\//);
    expect(out.ignoredSaved).toEqual(['.env']);
    const msg = await repo.git(['log', '-1', '--format=%B', out.ref!]);
    expect(readManifest(msg)?.modes).toEqual({ '.env': 0o600 });

    const show = await showRescue(repo.dir, out.ref!, 'main');
    expect(show.ignored).toEqual(['.env']);
    expect(show.dirty.map((d) => `${d.change} ${d.path}`).sort()).toEqual([
      'added dir with space/new file.txt',
      'added link',
      'added run.sh',
      'modified README.md',
    ]);

    const into = path.join(repo.sandbox, 'out');
    const r = await restoreRescue(repo.dir, out.ref!, into);
    expect(r.written.sort()).toEqual(
      ['.env', '.gitignore', 'README.md', 'dir with space/new file.txt', 'link', 'run.sh'].sort(),
    );
    expect(await fs.readFile(path.join(into, 'README.md'), 'utf8')).toBe('# r\nchanged\n');
    expect(await fs.readFile(path.join(into, 'dir with space/new file.txt'), 'utf8')).toBe(
      'spaces\n',
    );
    expect((await fs.stat(path.join(into, '.env'))).mode & 0o777).toBe(0o600);
    expect((await fs.stat(path.join(into, 'run.sh'))).mode & 0o777).toBe(0o755);
    expect(await fs.readlink(path.join(into, 'link'))).toBe('README.md');
    expect(existsSync(path.join(into, 'dist'))).toBe(false);
    expect(existsSync(path.join(into, 'node_modules'))).toBe(false);

    const again = await restoreRescue(repo.dir, out.ref!, into);
    expect(again.written).toEqual([]);
    expect(again.unchanged).toBe(6);
  });

  it('never writes through a symlink, even with force, and refuses an unknown ref (exit 4)', async () => {
    const repo = await worktreeWithWork();
    const out = await saveWork(repo.dir, 'refs/wtpool/rescue/t/', 'test rescue', LIMITS);
    const into = path.join(repo.sandbox, 'out');
    const outside = path.join(repo.sandbox, 'outside');
    await fs.mkdir(into);
    await fs.mkdir(outside);
    await fs.symlink(outside, path.join(into, 'dir with space'));
    await expect(restoreRescue(repo.dir, out.ref!, into, { force: true })).rejects.toMatchObject({
      exitCode: 5,
    });
    expect(await fs.readdir(outside)).toEqual([]);
    expect(await fs.readdir(into)).toEqual(['dir with space']);
    await expect(restoreRescue(repo.dir, 't/nope', into)).rejects.toMatchObject({ exitCode: 4 });
    await expect(restoreRescue(repo.dir, '../../etc', into)).rejects.toMatchObject({
      exitCode: 2,
    });
  });

  it('a crafted manifest cannot send a nested repository outside the directory', async () => {
    const repo = await worktreeWithWork();
    const out = await saveWork(repo.dir, 'refs/wtpool/rescue/t/', 'test rescue', LIMITS);
    // A second commit with the same tree whose manifest names ../escape and an absolute path.
    const tree = await repo.git(['rev-parse', `${out.ref!}^{tree}`]);
    const work = 'refs/wtpool/rescue/t/x-nested/n/work';
    await repo.git(['update-ref', work, out.ref!]);
    const evil = JSON.stringify({
      v: 1,
      branch: null,
      head: null,
      ignored: [],
      nested: [
        { path: '../escape', ref: work, submodule: false },
        { path: '/tmp/abs', ref: work, submodule: false },
        { path: 'a/.git/x', ref: work, submodule: false },
        { path: 'ok', ref: work, submodule: false }, // the control: a safe path is restored
      ],
      unsaved: [],
      discarded: [],
      modes: {},
    });
    const commit = await repo.git(['commit-tree', tree, '-m', `x\n\nwtpool-manifest: ${evil}`]);
    await repo.git(['update-ref', 'refs/wtpool/rescue/t/evil', commit]);
    const into = path.join(repo.sandbox, 'out');
    const r = await restoreRescue(repo.dir, 't/evil', into);
    expect(r.nested.map((n) => n.path)).toEqual(['ok']);
    expect(await fs.readFile(path.join(into, 'ok/README.md'), 'utf8')).toBe('# r\nchanged\n');
    expect(existsSync(path.join(repo.sandbox, 'escape'))).toBe(false);
    expect(existsSync(path.join(into, 'a'))).toBe(false);
  });
});
