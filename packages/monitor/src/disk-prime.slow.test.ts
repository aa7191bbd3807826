/**
 * Disk records primed when a slot's dependencies arrive (D397): a real `pool init` hard-link
 * clones a pnpm-shaped main checkout's dependencies into three slots, and the first
 * `monitor status` after it reads no directory inside any node_modules, yet equals `du -sb` and
 * splits the shared files fairly; after changes of every kind a package manager makes, it still
 * does.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempRepo, PROJECT_ROOT, runCli, tempDir, type TempRepo, until } from '@wtpool/testkit';
import { primeDiskRecords, measureTree, loadDiskRecords } from './disk.js';

const POOL = path.join(PROJECT_ROOT, 'packages/pool/bin/pool');
const MONITOR = path.join(PROJECT_ROOT, 'packages/monitor/bin/monitor.js');
const SLOTS = ['wt-1', 'wt-2', 'wt-3'];

const du = (p: string) =>
  Number(execFileSync('du', ['-sb', p], { encoding: 'utf8' }).split('\t')[0]);
/** Directories outside every node_modules. */
const untrusted = (root: string) =>
  find(root, '-type', 'd', '!', '-path', '*/node_modules', '!', '-path', '*/node_modules/*').length;
const find = (...args: string[]) =>
  execFileSync('find', args, { encoding: 'utf8', maxBuffer: 64 << 20 })
    .split('\n')
    .filter(Boolean);

/** A pnpm-shaped install: a virtual store, links to it, an npm-style package with a nested tree. */
async function install(dir: string, pkgs: number): Promise<void> {
  const nm = path.join(dir, 'node_modules');
  for (let k = 0; k < pkgs; k++) {
    const pkg = path.join(nm, '.pnpm', `dep-${k}@1.0.0`, 'node_modules', `dep-${k}`);
    await fs.mkdir(path.join(pkg, 'lib', 'sub'), { recursive: true });
    await fs.writeFile(path.join(pkg, 'package.json'), `{"name":"dep-${k}"}`);
    for (let f = 0; f < 20; f++)
      await fs.writeFile(path.join(pkg, 'lib', `f${f}.js`), 'p'.repeat(100 + k * 20 + f));
    await fs.writeFile(path.join(pkg, 'lib', 'sub', 'x.js'), 'q'.repeat(k + 1));
    await fs.symlink(`.pnpm/dep-${k}@1.0.0/node_modules/dep-${k}`, path.join(nm, `dep-${k}`));
  }
  await fs.writeFile(path.join(nm, '.pnpm', 'lock.yaml'), "lockfileVersion: '9.0'\n");
  await fs.mkdir(path.join(nm, '.pnpm', 'node_modules'));
  await fs.symlink('../dep-0@1.0.0/node_modules/dep-0', path.join(nm, '.pnpm/node_modules/dep-0'));
  const legacy = path.join(nm, 'legacy');
  await fs.mkdir(path.join(legacy, 'dist'), { recursive: true });
  await fs.mkdir(path.join(legacy, 'node_modules', 'inner'), { recursive: true });
  await fs.writeFile(path.join(legacy, 'package.json'), '{"name":"legacy"}');
  await fs.writeFile(path.join(legacy, 'dist', 'a.js'), 'l'.repeat(4000));
  await fs.writeFile(path.join(legacy, 'node_modules', 'inner', 'package.json'), '{}');
  await fs.writeFile(path.join(legacy, 'node_modules', 'inner', 'i.js'), 'i'.repeat(300));
  await fs.mkdir(path.join(nm, '.bin'));
  await fs.writeFile(
    path.join(nm, '.bin', 'tool'),
    `#!/bin/sh\nexec node "${dir}/node_modules/dep-0/lib/f0.js" "$@"\n`,
    { mode: 0o755 },
  );
  const a = path.join(dir, 'packages', 'a', 'node_modules');
  await fs.mkdir(a, { recursive: true });
  await fs.symlink(
    '../../../node_modules/.pnpm/dep-1@1.0.0/node_modules/dep-1',
    path.join(a, 'dep-1'),
  );
}

describe('disk records primed at provisioning', () => {
  let repo: TempRepo;
  let root: string;
  const status = async () => {
    const r = await runCli(MONITOR, ['status', '--json', '--fresh', '--repo', repo.dir], {
      cwd: repo.dir,
    });
    expect([0, 20, 21]).toContain(r.code);
    return r.json<{
      disk: {
        bytes: number;
        dirsRead: number;
        dirsReused: number;
        shared: number;
        perEntryOwn: Record<string, number>;
      };
    }>().disk;
  };

  /** Total du's; per slot, its own bytes are its du minus the files other slots reach too. */
  function agrees(d: Awaited<ReturnType<typeof status>>): void {
    expect(d.bytes).toBe(du(root));
    const reach = new Map<string, { size: number; slots: Set<string> }>();
    for (const s of SLOTS)
      for (const line of find(path.join(root, s), '!', '-type', 'd', '-printf', '%D:%i %s\\n')) {
        const [key, size] = line.split(' ');
        const r = reach.get(key!) ?? { size: Number(size), slots: new Set<string>() };
        r.slots.add(s);
        reach.set(key!, r);
      }
    let shared = 0;
    for (const r of reach.values()) if (r.slots.size > 1) shared += r.size;
    expect(d.shared).toBe(shared);
    for (const s of SLOTS) {
      let linked = 0;
      for (const r of reach.values()) if (r.slots.size > 1 && r.slots.has(s)) linked += r.size;
      expect(d.perEntryOwn[s], s).toBe(du(path.join(root, s)) - linked);
    }
  }

  beforeAll(async () => {
    repo = await makeTempRepo({
      files: {
        'package.json': '{"name":"app","private":true}',
        'pnpm-workspace.yaml': 'packages:\n  - packages/*\n',
        'packages/a/package.json': '{"name":"a"}',
        'pnpm-lock.yaml': "lockfileVersion: '9.0'\n",
        '.gitignore': 'node_modules\n',
        'src/app.ts': 'export const app = 1;\n',
        'pool.config.yaml': 'scale:\n  min: 3\n  max: 3\ndeps:\n  strategy: auto\n',
      },
    });
    await install(repo.dir, 30);
    const init = await runCli(POOL, ['init', '--repo', repo.dir], { cwd: repo.dir });
    expect(init.code, init.stderr).toBe(0);
    root = path.join(repo.sandbox, 'repo.worktrees');
  }, 120_000);
  afterAll(() => repo?.cleanup());

  it('the first status reads no node_modules directory and equals du -sb', async () => {
    for (const s of SLOTS) {
      // The clone is the main checkout's: the same files (inodes), the slot's own shims.
      const f = 'node_modules/.pnpm/dep-3@1.0.0/node_modules/dep-3/lib/f2.js';
      expect((await fs.stat(path.join(root, s, f))).ino).toBe(
        (await fs.stat(path.join(repo.dir, f))).ino,
      );
    }
    const records = loadDiskRecords(path.join(repo.dir, '.git', 'wtpool'), root);
    expect([...records.dirs.values()].filter((r) => r.unit === 'store')).toHaveLength(3);
    expect([...records.dirs.keys()].filter((k) => k.endsWith('/legacy'))).toHaveLength(3);
    const d = await status();
    // Listed: the directories outside node_modules (the sources), nothing inside: the
    // node_modules directories' records, and the packages' and stores' whole, stood.
    expect(d.dirsRead).toBe(untrusted(root));
    expect(d.dirsReused).toBe(records.dirs.size);
    expect(records.dirs.size).toBeLessThan(find(root, '-type', 'd').length / 3);
    agrees(d);
    // The sources' listings are recorded by that status: once they are older than the racy
    // window, a status lists the pool root only (no slot's, not kept); entries are lstat-ed.
    await until(
      'a status that lists the pool root only',
      async () => (await status()).dirsRead === 1,
      {
        everyMs: 200,
        attempts: 150,
      },
    );
  });

  it('after an install adds, removes and caches in node_modules, status still equals du -sb', async () => {
    const nm = (s: string, ...p: string[]) => path.join(root, s, 'node_modules', ...p);
    // wt-2: a new package in the store and its link.
    const added = nm('wt-2', '.pnpm', 'new@2.0.0', 'node_modules', 'new');
    await fs.mkdir(added, { recursive: true });
    await fs.writeFile(path.join(added, 'package.json'), '{"name":"new"}');
    await fs.writeFile(path.join(added, 'index.js'), 'n'.repeat(12345));
    await fs.symlink('.pnpm/new@2.0.0/node_modules/new', nm('wt-2', 'new'));
    // wt-3: a package removed. wt-1: a tool's cache written, a source appended in place.
    await fs.rm(nm('wt-3', 'legacy'), { recursive: true });
    await fs.mkdir(nm('wt-1', '.cache'));
    await fs.writeFile(nm('wt-1', '.cache', 'c.json'), 'c'.repeat(777));
    await fs.appendFile(path.join(root, 'wt-1', 'src', 'app.ts'), '// more\n'.repeat(100));
    const d = await status();
    agrees(d);
    // Listed again: the pool root, wt-2's node_modules and its whole store, wt-3's node_modules,
    // wt-1's node_modules and the new cache; every other record stood.
    const store = find(
      nm('wt-2', '.pnpm'),
      '-path',
      '*/.pnpm/node_modules',
      '-prune',
      '-o',
      '-type',
      'd',
      '-print',
    ).length;
    expect(d.dirsRead).toBe(1 + 1 + store + 1 + 2);
    expect(existsSync(nm('wt-3', 'legacy'))).toBe(false);
  });
});

describe('primeDiskRecords', () => {
  it('derives a clone unit by unit, and reads a unit whose directories differ from the source', async () => {
    const sandbox = tempDir('wtpool-prime-');
    try {
      const src = path.join(sandbox, 'src');
      const root = path.join(sandbox, 'root');
      await install(src, 5);
      const state = path.join(sandbox, 'state');
      const rels = ['node_modules', 'packages/a/node_modules'];
      const slots = ['wt-1', 'wt-2', 'wt-3'];
      for (const s of slots) {
        await fs.mkdir(path.join(root, s, 'packages', 'a'), { recursive: true });
        for (const rel of rels)
          execFileSync('cp', ['-al', path.join(src, rel), path.join(root, s, rel)]);
      }
      // wt-3's copy gets directories of its own before its records are primed: one in legacy,
      // one deep in a package of the store.
      const nm3 = path.join(root, 'wt-3', 'node_modules');
      await fs.mkdir(path.join(nm3, 'legacy', 'extra'));
      await fs.writeFile(path.join(nm3, 'legacy', 'extra', 'e.js'), 'e');
      await fs.mkdir(path.join(nm3, '.pnpm/dep-2@1.0.0/node_modules/dep-2/lib/sub/extra'));
      await fs.writeFile(
        path.join(nm3, '.pnpm/dep-2@1.0.0/node_modules/dep-2/lib/sub/extra/x'),
        'x',
      );
      // The source is a slot whose install was just primed (what the deps provider does for
      // the slot that installs): its records are reused by every clone's priming.
      await primeDiskRecords({ stateDir: state, worktree: src, rels });
      const derived: number[] = [];
      for (const s of slots)
        derived.push(
          (
            await primeDiskRecords({
              stateDir: state,
              worktree: path.join(root, s),
              rels,
              source: src,
            })
          ).dirsDerived,
        );
      // Units: the store, legacy and inner (nested in legacy, a package of its own). wt-2's
      // store is derived from the directories wt-1's derivation found (none listed); wt-3's
      // store and legacy are read: their directories are not the source's.
      expect(derived).toEqual([3, 3, 1]);
      const cache = loadDiskRecords(state, root);
      const m = await measureTree(root, { cache });
      expect(m.dirsRead).toBe(untrusted(root)); // the sources, nothing in node_modules
      expect(m.bytes).toBe(du(root));
      // wt-1's and wt-2's stores share one list of files in memory (and one file on disk).
      const stores = [...cache.dirs].filter(([k]) => k.endsWith('node_modules/.pnpm'));
      expect(stores.map(([k]) => k).sort()).toEqual(slots.map((s) => `${s}/node_modules/.pnpm`));
      const list = (s: string) => cache.dirs.get(`${s}/node_modules/.pnpm`)!.links;
      expect(list('wt-1')).toBe(list('wt-2'));
      expect(list('wt-3')).not.toBe(list('wt-1'));
    } finally {
      await fs.rm(sandbox, { recursive: true, force: true });
    }
  });
});
