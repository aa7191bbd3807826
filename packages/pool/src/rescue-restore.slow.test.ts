/**
 * Rescued work one command away (issue 24) and the rescue gaps of issue 21 (item 7): a
 * submodule inside a nested repository (a new commit, an untracked file), a nested repository
 * without commits (a staged file only), an empty one, an ignored 0600 file and a dirty tracked
 * file, saved by a forced release (and by a refresh), shown by `pool rescue show` and restored
 * byte for byte by `pool rescue restore --into DIR`; restore never overwrites a file or writes
 * into someone else's slot. Real git, the real CLI.
 * Build first (`pnpm -s build`): these spawn packages/pool/bin/pool.js.
 */
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { makeTempRepo, runCli, type TempRepo } from '@wtpool/testkit';
import type { AcquireResult, PoolStatus } from './types.js';

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../bin/pool.js');
const repos: TempRepo[] = [];
afterEach(async () => {
  await Promise.all(repos.splice(0).map((r) => r.cleanup()));
});

async function setup() {
  const repo = await makeTempRepo({
    files: { 'README.md': '# test repo\n', '.gitignore': '.env.local\n' },
  });
  repos.push(repo);
  await fs.writeFile(path.join(repo.dir, 'pool.config.yaml'), 'scale:\n  min: 1\n  max: 1\n');
  const pool = (...args: string[]) => runCli(BIN, [...args, '--repo', repo.dir], { cwd: repo.dir });
  expect((await pool('init')).code).toBe(0);
  // The submodule's upstream: its new commit below is never pushed there.
  const upstream = path.join(repo.sandbox, 'upstream');
  await fs.mkdir(upstream);
  await repo.git(['init', '-q', '-b', 'main'], upstream);
  await repo.commit({ 'lib.txt': 'upstream lib\n' }, 'upstream commit', upstream);
  return { repo, pool, upstream };
}

/** Everything planted, relative path → content (the expected bytes, written by the test). */
const FILES = {
  'README.md': '# test repo\nedited, not committed\n',
  'notes.txt': 'untracked notes\n',
  '.env.local': 'SECRET=kept-private\n',
  'nested/committed.txt': 'committed in nested\n',
  'nested/uncommitted.txt': 'not committed in nested\n',
  'nested/sub/added.txt': 'committed in the submodule, never pushed\n',
  'nested/sub/untracked.txt': 'untracked in the submodule\n',
  'fresh/staged.txt': 'staged in a repository without commits\n',
};

async function plant(repo: TempRepo, dir: string, upstream: string): Promise<void> {
  const w = (rel: keyof typeof FILES) => repo.write(rel, FILES[rel], dir);
  await w('README.md');
  await w('notes.txt');
  await w('.env.local');
  await fs.chmod(path.join(dir, '.env.local'), 0o600);
  const nested = path.join(dir, 'nested');
  await fs.mkdir(nested);
  await repo.git(['init', '-q', '-b', 'trunk'], nested);
  await repo.commit({ 'committed.txt': FILES['nested/committed.txt'] }, 'nested commit', nested);
  await repo.git(
    ['-c', 'protocol.file.allow=always', 'submodule', 'add', '-q', upstream, 'sub'],
    nested,
  );
  await repo.git(['commit', '-q', '-m', 'add submodule'], nested);
  await w('nested/uncommitted.txt');
  const sub = path.join(nested, 'sub');
  await repo.commit({ 'added.txt': FILES['nested/sub/added.txt'] }, 'submodule commit', sub);
  await w('nested/sub/untracked.txt');
  const fresh = path.join(dir, 'fresh');
  await fs.mkdir(fresh);
  await repo.git(['init', '-q'], fresh);
  await w('fresh/staged.txt');
  await repo.git(['add', 'staged.txt'], fresh);
  await fs.mkdir(path.join(dir, 'empty'));
  await repo.git(['init', '-q'], path.join(dir, 'empty'));
}

/** Every planted byte is in `dir` again, with the 0600 mode, and the repositories are repositories. */
async function expectRestored(repo: TempRepo, dir: string): Promise<void> {
  for (const [rel, text] of Object.entries(FILES))
    expect(await fs.readFile(path.join(dir, rel), 'utf8'), rel).toBe(text);
  expect((await fs.stat(path.join(dir, '.env.local'))).mode & 0o777).toBe(0o600);
  const nested = path.join(dir, 'nested');
  expect(await repo.git(['symbolic-ref', 'HEAD'], nested)).toBe('refs/heads/trunk');
  expect(await repo.git(['log', '--format=%s', 'trunk'], nested)).toBe(
    'add submodule\nnested commit',
  );
  // Its saved work shows as uncommitted again, not as a commit.
  expect(await repo.git(['status', '--porcelain', '--', 'uncommitted.txt'], nested)).toBe(
    '?? uncommitted.txt',
  );
  const sub = path.join(nested, 'sub');
  expect(await repo.git(['log', '-1', '--format=%s', 'HEAD'], sub)).toBe('submodule commit');
  expect(await repo.git(['status', '--porcelain'], sub)).toBe('?? untracked.txt');
  expect(existsSync(path.join(dir, 'fresh/.git'))).toBe(true);
  expect(existsSync(path.join(dir, 'empty/.git'))).toBe(true);
}

interface Show {
  ref: string;
  dirty: { path: string; change: string }[];
  ignored: string[];
  nested: {
    path: string;
    submodule: boolean;
    nested: Show['nested'];
    branches: { name: string }[];
  }[];
}

describe('pool rescue show / restore (real git, the real CLI)', () => {
  it('a forced release saves a submodule in a nested repo, repos without commits, ignored and dirty files; restore gives every byte back', async () => {
    const { repo, pool, upstream } = await setup();
    const lease = (await pool('acquire', 'a', 'work', '--json')).json<AcquireResult>();
    await plant(repo, lease.path, upstream);

    const forced = await pool('release', lease.slot, 'a', '--force', '--json');
    expect(forced.code, forced.stderr).toBe(0);
    const ref = forced.json<{ rescueRef: string }>().rescueRef;
    expect(ref).toMatch(/^refs\/wtpool\/rescue\/wt-1\//);
    // Back to the base: the tracked file as committed, everything else gone from the slot.
    expect(await fs.readFile(path.join(lease.path, 'README.md'), 'utf8')).toBe('# test repo\n');
    for (const rel of Object.keys(FILES).filter((f) => f !== 'README.md'))
      expect(existsSync(path.join(lease.path, rel)), rel).toBe(false);

    const show = await pool('rescue', 'show', ref, '--json');
    expect(show.code, show.stderr).toBe(0);
    const s = show.json<Show>();
    expect(s.ignored).toEqual(['.env.local']);
    expect(s.dirty).toEqual(
      expect.arrayContaining([
        { path: 'README.md', change: 'modified' },
        { path: 'notes.txt', change: 'added' },
      ]),
    );
    expect(s.nested.map((n) => n.path).sort()).toEqual(['empty', 'fresh', 'nested']);
    const nested = s.nested.find((n) => n.path === 'nested')!;
    expect(nested.branches.map((b) => b.name)).toEqual(['trunk']);
    expect(nested.nested.map((n) => [n.path, n.submodule])).toEqual([['sub', true]]);
    const human = await pool('rescue', 'show', ref.slice('refs/wtpool/rescue/'.length));
    expect(human.stdout).toContain('nested repository sub (submodule)');

    const dir = path.join(repo.sandbox, 'restored');
    const restored = await pool('rescue', 'restore', ref, '--into', dir, '--json');
    expect(restored.code, restored.stderr).toBe(0);
    await expectRestored(repo, dir);

    // Never overwrites: a changed file is named, nothing is written; --force writes it back.
    await fs.writeFile(path.join(dir, 'notes.txt'), 'changed since\n');
    await fs.rm(path.join(dir, '.env.local'));
    const again = await pool('rescue', 'restore', ref, '--into', dir);
    expect(again.code).toBe(5);
    expect(again.stderr).toContain('notes.txt');
    expect(await fs.readFile(path.join(dir, 'notes.txt'), 'utf8')).toBe('changed since\n');
    expect(existsSync(path.join(dir, '.env.local'))).toBe(false);
    const forcedRestore = await pool('rescue', 'restore', ref, '--into', dir, '--force');
    expect(forcedRestore.code, forcedRestore.stderr).toBe(0);
    expect(await fs.readFile(path.join(dir, 'notes.txt'), 'utf8')).toBe(FILES['notes.txt']);
    expect((await fs.stat(path.join(dir, '.env.local'))).mode & 0o777).toBe(0o600);

    // Into a slot: never a ready one, never another agent's lease; the holder's, yes.
    const ready = await pool('rescue', 'restore', ref, '--slot', lease.slot, '--agent', 'a');
    expect(ready.code).toBe(5);
    const b = (await pool('acquire', 'b', 'next', '--json')).json<AcquireResult>();
    expect(b.slot).toBe(lease.slot);
    const other = await pool('rescue', 'restore', ref, '--slot', b.slot, '--agent', 'a');
    expect(other.code).toBe(5);
    expect(other.stderr).toContain('leased by b');
    expect(existsSync(path.join(b.path, 'notes.txt'))).toBe(false);
    const own = await pool('rescue', 'restore', ref, '--slot', b.slot, '--agent', 'b');
    expect(own.code).toBe(5); // README.md differs from the base's
    expect(own.stderr).toContain('README.md');
    const ownForced = await pool(
      'rescue',
      'restore',
      ref,
      '--slot',
      b.slot,
      '--agent',
      'b',
      '--force',
    );
    expect(ownForced.code, ownForced.stderr).toBe(0);
    await expectRestored(repo, b.path);
    const st = (await pool('status', '--json')).json<PoolStatus>();
    expect(st.slots[0]!.state).toBe('leased');
  });

  it('refresh of a ready slot saves a submodule inside a nested repository', async () => {
    const { repo, pool, upstream } = await setup();
    const slot = (await pool('status', '--json')).json<PoolStatus>().slots[0]!;
    await plant(repo, slot.path, upstream);
    const r = await pool('refresh');
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(path.join(slot.path, 'nested'))).toBe(false);
    const list = (await pool('rescue', 'list', '--json')).json<{ rescues: { ref: string }[] }>();
    const ref = list.rescues.map((x) => x.ref).find((x) => !x.includes('-nested/'))!;
    const dir = path.join(repo.sandbox, 'restored');
    const restored = await pool('rescue', 'restore', ref, '--into', dir);
    expect(restored.code, restored.stderr).toBe(0);
    await expectRestored(repo, dir);
  });

  it('`pool rescue --help` lists the rescue commands', async () => {
    const r = await runCli(BIN, ['rescue', '--help']);
    expect(r.code).toBe(0);
    for (const c of ['rescue list', 'rescue show', 'rescue restore']) expect(r.stdout).toContain(c);
    expect(r.stdout).not.toContain('acquire');
  });
});
