/**
 * Nothing lost (issue 10, item 1): every path that removes a slot's files (release, release
 * --force, reclaim, refresh, scale in) either keeps each byte on disk, saves it where a rescue
 * ref reads it back, or refuses. The slot holds an ignored `.env.local`, an ignored `build/`
 * output and a nested repository with a commit and an uncommitted file; `dist/` is declared
 * disposable (deleted unsaved, by configuration) and `node_modules` kept.
 * Build first (`pnpm -s build`): these spawn packages/pool/bin/pool.js.
 */
import { spawn } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { makeTempRepo, runCli, type TempRepo } from '@wtpool/testkit';
import { readEvents } from './events.js';
import type { AcquireResult, PoolStatus } from './types.js';

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../bin/pool.js');
const repos: TempRepo[] = [];
afterEach(async () => {
  await Promise.all(repos.splice(0).map((r) => r.cleanup()));
});

const CONFIG = 'scale:\n  min: 1\n  max: 2\n  step: 1\n';

async function setup(yaml = CONFIG) {
  const repo = await makeTempRepo({
    files: {
      'README.md': '# test repo\n',
      '.gitignore': '.env.local\nbuild/\ndist/\nnode_modules/\n',
    },
  });
  repos.push(repo);
  await fs.writeFile(path.join(repo.dir, 'pool.config.yaml'), yaml);
  const pool = (...args: string[]) => runCli(BIN, [...args, '--repo', repo.dir], { cwd: repo.dir });
  expect((await pool('init')).code).toBe(0);
  return { repo, pool };
}

/** The bytes planted in a slot (relative path → content). */
const PLANTED = {
  '.env.local': 'API_KEY=not-in-git\n',
  'build/out.txt': 'a build output nobody can rebuild\n',
  'nested/committed.txt': 'committed in the nested repo\n',
  'nested/uncommitted.txt': 'not committed in the nested repo\n',
};

async function plant(repo: TempRepo, dir: string): Promise<void> {
  for (const [rel, text] of Object.entries(PLANTED)) {
    await fs.mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
    await fs.writeFile(path.join(dir, rel), text);
  }
  await fs.mkdir(path.join(dir, 'dist'), { recursive: true });
  await fs.writeFile(path.join(dir, 'dist/bundle.js'), 'disposable\n');
  await fs.mkdir(path.join(dir, 'node_modules/dep'), { recursive: true });
  await fs.writeFile(path.join(dir, 'node_modules/dep/index.js'), 'cache\n');
  const nested = path.join(dir, 'nested');
  await repo.git(['init', '-q', '-b', 'trunk'], nested);
  await repo.git(['add', 'committed.txt'], nested);
  await repo.git(['commit', '-q', '-m', 'nested commit'], nested);
}

/** Every planted byte is on disk (returns true) — checked by content. */
async function allOnDisk(dir: string): Promise<boolean> {
  for (const [rel, text] of Object.entries(PLANTED)) {
    const got = await fs.readFile(path.join(dir, rel), 'utf8').catch(() => null);
    if (got !== text) return false;
  }
  return (
    (await fs.readFile(path.join(dir, 'nested/.git/HEAD'), 'utf8').catch(() => '')) ===
    'ref: refs/heads/trunk\n'
  );
}

/** Every planted byte read back from the rescue refs of the main repository. */
async function expectRecoverable(repo: TempRepo): Promise<void> {
  const refs = (await repo.git(['for-each-ref', '--format=%(refname)', 'refs/wtpool/rescue/']))
    .split('\n')
    .filter(Boolean);
  const main = refs.find((r) => !r.includes('-nested/'));
  const work = refs.find((r) => r.endsWith('/work'));
  const head = refs.find((r) => r.endsWith('/heads/trunk'));
  expect(main, refs.join('\n')).toBeDefined();
  expect(work, refs.join('\n')).toBeDefined();
  expect(head, refs.join('\n')).toBeDefined();
  const show = (ref: string, rel: string) => repo.git(['show', `${ref}:${rel}`]);
  expect(await show(main!, '.env.local')).toBe(PLANTED['.env.local'].trim());
  expect(await show(main!, 'build/out.txt')).toBe(PLANTED['build/out.txt'].trim());
  // The nested repository: its uncommitted file, its committed file, and its own history.
  expect(await show(work!, 'uncommitted.txt')).toBe(PLANTED['nested/uncommitted.txt'].trim());
  expect(await show(work!, 'committed.txt')).toBe(PLANTED['nested/committed.txt'].trim());
  expect(await repo.git(['log', '--format=%s', head!])).toBe('nested commit');
  expect(await repo.git(['log', '--format=%s', '-1', `${work!}^`])).toBe('nested commit');
  // A disposable output is not saved: it was declared disposable.
  expect(
    (await repo.git(['ls-tree', '-r', '--name-only', main!]))
      .split('\n')
      .includes('dist/bundle.js'),
  ).toBe(false);
}

async function slotState(pool: (...a: string[]) => ReturnType<typeof runCli>) {
  const r = await pool('status', '--json');
  expect(r.code, r.stderr).toBe(0);
  return r.json<PoolStatus>();
}

describe('rescue of ignored files and nested repositories (real git, real processes)', () => {
  it('plain release refuses (exit 5) listing them; --force saves every byte to rescue refs', async () => {
    const { repo, pool } = await setup();
    const lease = (await pool('acquire', 'a', 'work', '--json')).json<AcquireResult>();
    await plant(repo, lease.path);

    const plain = await pool('release', lease.slot, 'a');
    expect(plain.code, plain.stderr).toBe(5);
    expect(await allOnDisk(lease.path)).toBe(true);

    // Only ignored files and the nested repo inside an ignored dir: still refused, named.
    await fs.rm(path.join(lease.path, 'nested'), { recursive: true });
    const ignoredOnly = await pool('release', lease.slot, 'a');
    expect(ignoredOnly.code).toBe(5);
    expect(ignoredOnly.stderr).toContain('.env.local');
    expect(ignoredOnly.stderr).toContain('build/out.txt');
    expect(ignoredOnly.stderr).not.toContain('dist/bundle.js');
    await plant(repo, lease.path);

    const forced = await pool('release', lease.slot, 'a', '--force', '--json');
    expect(forced.code, forced.stderr).toBe(0);
    const r = forced.json<{ rescueRef: string; nested: { path: string; ref: string }[] }>();
    expect(r.nested.map((n) => n.path)).toEqual(['nested']);
    await expectRecoverable(repo);
    // Back to the base: the saved files are gone from disk, the cache is kept.
    expect(existsSync(path.join(lease.path, 'nested'))).toBe(false);
    expect(existsSync(path.join(lease.path, '.env.local'))).toBe(false);
    expect(existsSync(path.join(lease.path, 'dist'))).toBe(false);
    expect(await fs.readFile(path.join(lease.path, 'node_modules/dep/index.js'), 'utf8')).toBe(
      'cache\n',
    );
    const ev = (await readEvents(path.join(repo.dir, '.git/wtpool'))).find(
      (e) => e.type === 'rescue',
    );
    expect(ev?.ref).toBe(r.rescueRef);
    expect(ev?.ignoredSaved).toBe(2);
  });

  it('a nested repository that cannot be saved refuses even --force, unless --discard-nested', async () => {
    const { repo, pool } = await setup();
    const lease = (await pool('acquire', 'a', 'work', '--json')).json<AcquireResult>();
    await plant(repo, lease.path);
    // A corrupt nested repository: HEAD names no valid ref, nothing can be committed there.
    await fs.writeFile(path.join(lease.path, 'nested/.git/HEAD'), 'garbage\n');
    const forced = await pool('release', lease.slot, 'a', '--force');
    expect(forced.code, forced.stderr).toBe(5);
    expect(forced.stderr).toContain('nested');
    expect(forced.stderr).toContain('--discard-nested');
    expect(await fs.readFile(path.join(lease.path, 'nested/uncommitted.txt'), 'utf8')).toBe(
      PLANTED['nested/uncommitted.txt'],
    );
    expect((await slotState(pool)).slots[0]!.state).toBe('leased');
    const discard = await pool('release', lease.slot, 'a', '--force', '--discard-nested', '--json');
    expect(discard.code, discard.stderr).toBe(0);
    expect(discard.json<{ discarded: string[] }>().discarded).toEqual(['nested']);
    expect(existsSync(path.join(lease.path, 'nested'))).toBe(false);
  });

  it('an ignored file over pool.rescueMaxBytes blocks the slot: release --force refuses, a reclaim leaves it broken, never ready', async () => {
    // 53 bytes of planted ignored files fit in 60; the 100-byte one does not.
    const { repo, pool } = await setup(`${CONFIG}pool:\n  rescueMaxBytes: 60\n`);
    const holder = spawn('sleep', ['600'], { stdio: 'ignore' });
    const lease = (
      await pool('acquire', 'a', 'work', '--holder-pid', String(holder.pid), '--json')
    ).json<AcquireResult>();
    await plant(repo, lease.path);
    const big = 'x'.repeat(100);
    await fs.writeFile(path.join(lease.path, 'build/big.bin'), big);

    const forced = await pool('release', lease.slot, 'a', '--force');
    expect(forced.code, forced.stderr).toBe(5);
    expect(forced.stderr).toContain('build/big.bin');
    expect((await slotState(pool)).slots[0]!.state).toBe('leased');
    expect(await allOnDisk(lease.path)).toBe(true);
    expect(await fs.readFile(path.join(lease.path, 'build/big.bin'), 'utf8')).toBe(big);
    // Nothing was written: no rescue ref claims a save that did not happen.
    expect(await repo.git(['for-each-ref', 'refs/wtpool/rescue/'])).toBe('');

    // The holder dies: the reclaim cannot save it either, so the slot is broken, never ready.
    holder.kill('SIGKILL');
    await new Promise((r) => holder.on('exit', r));
    const next = await pool('acquire', 'b', 'next', '--no-wait', '--json');
    if (next.code === 0) expect(next.json<AcquireResult>().slot).not.toBe(lease.slot);
    const s = (await slotState(pool)).slots.find((x) => x.id === lease.slot)!;
    expect(s.state).toBe('broken');
    expect(JSON.stringify(s)).toContain('build/big.bin');
    expect(await allOnDisk(lease.path)).toBe(true);
    expect(await fs.readFile(path.join(lease.path, 'build/big.bin'), 'utf8')).toBe(big);
  });

  it('reclaim of a dead holder’s lease saves them', async () => {
    const { repo, pool } = await setup();
    const holder = spawn('sleep', ['600'], { stdio: 'ignore' });
    const lease = (
      await pool('acquire', 'a', 'work', '--holder-pid', String(holder.pid), '--json')
    ).json<AcquireResult>();
    await plant(repo, lease.path);
    holder.kill('SIGKILL');
    await new Promise((r) => holder.on('exit', r));
    const next = await pool('acquire', 'b', 'next', '--no-wait', '--json');
    expect(next.code, next.stderr).toBe(0);
    expect(next.json<AcquireResult>().slot).toBe(lease.slot);
    await expectRecoverable(repo);
    expect(existsSync(path.join(lease.path, '.env.local'))).toBe(false);
  });

  it('refresh of a ready slot saves them', async () => {
    const { repo, pool } = await setup();
    const slot = (await slotState(pool)).slots[0]!;
    await plant(repo, slot.path);
    const r = await pool('refresh');
    expect(r.code, r.stderr).toBe(0);
    await expectRecoverable(repo);
    expect(existsSync(path.join(slot.path, 'build'))).toBe(false);
    expect((await slotState(pool)).slots[0]!.state).toBe('ready');
  });

  it('scale in of a ready slot saves them before removing the worktree', async () => {
    const { repo, pool } = await setup(`scale:\n  min: 0\n  max: 2\n  step: 1\n`);
    expect((await pool('init', '--size', '1')).code).toBe(0);
    const slot = (await slotState(pool)).slots[0]!;
    await plant(repo, slot.path);
    const r = await pool('scale', 'in');
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(slot.path)).toBe(false);
    await expectRecoverable(repo);
  });

  it('scale in leaves a slot whose nested repository cannot be saved on disk (broken, not removed)', async () => {
    const { repo, pool } = await setup(`scale:\n  min: 0\n  max: 2\n  step: 1\n`);
    expect((await pool('init', '--size', '1')).code).toBe(0);
    const slot = (await slotState(pool)).slots[0]!;
    await plant(repo, slot.path);
    await fs.writeFile(path.join(slot.path, 'nested/.git/HEAD'), 'garbage\n');
    const r = await pool('scale', 'in', '--json');
    // Not reported removed: it is still there, broken.
    expect(r.code, r.stderr).toBe(5);
    expect(r.json<{ removed: string[]; failed: string[] }>()).toMatchObject({
      removed: [],
      failed: [slot.id],
    });
    expect((await slotState(pool)).slots[0]!.state).toBe('broken');
    expect(await fs.readFile(path.join(slot.path, 'nested/uncommitted.txt'), 'utf8')).toBe(
      PLANTED['nested/uncommitted.txt'],
    );
    expect(await fs.readFile(path.join(slot.path, '.env.local'), 'utf8')).toBe(
      PLANTED['.env.local'],
    );
  });
});
