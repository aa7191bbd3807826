/**
 * The incremental disk measure against `du -sb` on a pool-shaped tree of more than 100,000
 * entries: one dependency tree hard-linked (`cp -al`, what the pool's hardlink strategy does)
 * into the node_modules of five slots, plus each slot's own sources. `du -sb` counts a
 * hard-linked file once per invocation, so on the whole root it is the figure to equal; on one
 * slot alone it is that slot's own bytes plus the shared files once.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, promises as fs, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '@wtpool/testkit';
import {
  diskUsage,
  loadDiskRecords,
  measureTree,
  saveDiskRecords,
  type TreeMeasure,
} from './disk.js';

const SLOTS = ['wt-1', 'wt-2', 'wt-3', 'wt-4', 'wt-5'];
const PKGS = 200;
const FILES = 100;

const du = (p: string) =>
  Number(execFileSync('du', ['-sb', p], { encoding: 'utf8' }).split('\t')[0]);
const count = (p: string, ...args: string[]) =>
  execFileSync('find', [p, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 })
    .split('\n')
    .filter(Boolean).length;

describe('incremental disk measure vs du -sb (≥ 100,000 entries, hard links)', () => {
  let sandbox: string;
  let root: string;
  let store: string;
  // The tree was just built: its directories changed less than RACY_MS ago, which would make
  // every record "racy" (re-read). The injected clock stamps the records as read 10 s later,
  // as a measure of a tree that settled a while ago would.
  const later = () => Date.now() + 10_000;

  beforeAll(() => {
    sandbox = tempDir('wtpool-disk-big-');
    root = path.join(sandbox, 'repo.worktrees');
    store = path.join(sandbox, 'store');
    for (let d = 0; d < PKGS; d++) {
      const dir = path.join(store, `pkg-${d}`, d % 2 ? 'lib' : 'dist');
      mkdirSync(dir, { recursive: true });
      for (let f = 0; f < FILES; f++)
        writeFileSync(path.join(dir, `f${f}.js`), 'x'.repeat(100 + ((d * FILES + f) % 900)));
    }
    for (const s of SLOTS) {
      mkdirSync(path.join(root, s, 'src', 'deep'), { recursive: true });
      for (let f = 0; f < 30; f++)
        writeFileSync(path.join(root, s, 'src', `m${f}.ts`), `${s}`.repeat(10 + f));
      writeFileSync(path.join(root, s, 'src', 'deep', 'big.bin'), Buffer.alloc(50_000 + s.length));
      execFileSync('cp', ['-al', store, path.join(root, s, 'node_modules')]);
    }
  }, 300_000);
  afterAll(() => fs.rm(sandbox, { recursive: true, force: true }));

  /**
   * Checks a measure against du and find: the total is du's; per slot, the shared bytes are the
   * distinct multi-link inodes find lists under it, its own bytes the rest of its du, its fair
   * figure its own bytes plus size / (slots reaching it) of each shared inode.
   */
  function agrees(m: TreeMeasure): void {
    expect(m.bytes).toBe(du(root));
    const reach = new Map<string, { size: number; slots: Set<string> }>();
    for (const s of SLOTS)
      for (const line of execFileSync(
        'find',
        [path.join(root, s), '-type', 'f', '-links', '+1', '-printf', '%D:%i %s\\n'],
        { encoding: 'utf8', maxBuffer: 64 << 20 },
      )
        .split('\n')
        .filter(Boolean)) {
        const [key, size] = line.split(' ');
        const r = reach.get(key!) ?? { size: Number(size), slots: new Set<string>() };
        r.slots.add(s);
        reach.set(key!, r);
      }
    // Every multi-link inode here is reached from two slots or more (the store is outside).
    expect([...reach.values()].every((r) => r.slots.size >= 2)).toBe(true);
    expect(m.shared).toBe([...reach.values()].reduce((a, r) => a + r.size, 0));
    for (const s of SLOTS) {
      let linked = 0;
      let fair = 0;
      for (const r of reach.values())
        if (r.slots.has(s)) {
          linked += r.size;
          fair += r.size / r.slots.size;
        }
      const own = du(path.join(root, s)) - linked;
      expect(m.perEntryOwn.get(s), s).toBe(own);
      expect(Math.abs(m.perEntry.get(s)! - (own + fair)), s).toBeLessThan(0.501);
    }
  }

  it('a cold measure equals du -sb and attributes the shared tree in equal parts', async () => {
    expect(count(root)).toBeGreaterThanOrEqual(100_000);
    const m = await measureTree(root, { now: later });
    agrees(m);
    expect(m.dirsReused).toBe(0);
    expect(m.dirsRead).toBe(count(root, '-type', 'd'));
  });

  it('a warm measure lists no unchanged directory, lstat-s the sources, and equals du after changes', async () => {
    const cold = await measureTree(root, { now: later });
    const warm = await measureTree(root, { cache: cold.cache, now: later });
    agrees(warm);
    expect(warm.dirsReused).toBe(count(root, '-type', 'd'));
    expect(warm.dirsRead).toBe(0);

    // Changes of every kind: new files and a new package, removed files and a removed package,
    // a source file rewritten in place, a shared file hard-linked into one slot's sources.
    const nm = (s: string, ...p: string[]) => path.join(root, s, 'node_modules', ...p);
    await fs.writeFile(nm('wt-2', 'pkg-3', 'lib', 'added.js'), 'a'.repeat(4321));
    await fs.mkdir(nm('wt-2', 'new-pkg'));
    await fs.writeFile(nm('wt-2', 'new-pkg', 'index.js'), 'b'.repeat(999));
    for (let f = 0; f < 10; f++) await fs.rm(nm('wt-3', 'pkg-4', 'dist', `f${f}.js`));
    await fs.rm(nm('wt-4', 'pkg-7'), { recursive: true });
    await fs.appendFile(path.join(root, 'wt-1', 'src', 'm0.ts'), 'c'.repeat(7777));
    await fs.link(nm('wt-5', 'pkg-9', 'lib', 'f1.js'), path.join(root, 'wt-5', 'src', 'f1.js'));

    const after = await measureTree(root, { cache: warm.cache, now: later });
    agrees(after); // wt-1's source appended in place: seen, its entries are lstat-ed each time
    // Listed again: the five changed node_modules directories (wt-2/node_modules, its pkg-3/lib
    // and new-pkg, wt-3's pkg-4/dist, wt-4/node_modules) and wt-5/src (a new link).
    expect(after.dirsRead).toBe(6);
    expect(after.dirsReused).toBe(count(root, '-type', 'd') - 6);
  });

  it('a record read within RACY_MS of its directory change is read again', async () => {
    const base = await measureTree(root, { now: later });
    const fresh = path.join(root, 'wt-5', 'node_modules', 'fresh');
    await fs.mkdir(fresh);
    await fs.writeFile(path.join(fresh, 'x.js'), 'x'.repeat(123));
    const changedAt = (await fs.stat(fresh)).mtimeMs;
    // Read 100 ms after the change: wt-5/node_modules and fresh/ are racy, the rest is old.
    const racy = await measureTree(root, { cache: base.cache, now: () => changedAt + 100 });
    expect(racy.dirsRead).toBe(2);
    const again = await measureTree(root, { cache: racy.cache, now: later });
    expect(again.dirsRead).toBe(2);
    expect(again.bytes).toBe(du(root));
    const settled = await measureTree(root, { cache: again.cache, now: later });
    expect(settled.dirsRead).toBe(0);
    expect(settled.bytes).toBe(du(root));
  });

  it('the records survive a save and a load (the state dir files), and diskUsage uses them', async () => {
    const state = path.join(sandbox, 'state');
    const m = await measureTree(root, { now: later });
    await saveDiskRecords(state, m);
    const dir = path.join(state, 'monitor', 'disk');
    const files = (await fs.readdir(dir)).filter((n) => n.endsWith('.json'));
    expect(files).toHaveLength(SLOTS.length); // one per slot
    for (const n of [...files.map((f) => path.join(dir, f)), path.join(dir, 'lists')])
      expect((await fs.stat(n)).mode & 0o777).toBe(n.endsWith('lists') ? 0o700 : 0o600);
    expect(loadDiskRecords(state, path.join(sandbox, 'elsewhere')).dirs.size).toBe(0);
    const loaded = loadDiskRecords(state, root);
    expect(loaded.dirs.size).toBe(m.cache.dirs.size - 1); // all but the root's own
    const file = path.join(dir, files[0]!);
    const ino = (await fs.stat(file)).ino;
    const u = await diskUsage(root, { stateDir: state });
    expect(u.bytes).toBe(du(root));
    // The root's own listing is not saved (it is no slot's): listed again, nothing else.
    expect([u.dirsRead, u.dirsReused]).toEqual([1, count(root, '-type', 'd') - 1]);
    expect(u.shared).toBe(m.shared);
    // Nothing trusted changed: the file is not rewritten (an atomic write is a new inode).
    expect((await fs.stat(file)).ino).toBe(ino);
    // A change in a node_modules directory is saved for the next run.
    await fs.writeFile(path.join(root, 'wt-1', 'node_modules', 'pkg-11', 'lib', 'new.js'), 'n');
    const inos = async () =>
      Promise.all(files.map(async (f) => (await fs.stat(path.join(dir, f))).ino));
    const before = await inos();
    const u2 = await diskUsage(root, { stateDir: state });
    expect(u2.bytes).toBe(du(root));
    // Only wt-1's file is written again.
    const after = await inos();
    expect(after.filter((n, i) => n !== before[i])).toHaveLength(1);
    // Its record lists every file by inode, the new single-link one too (a later clone would
    // make it shared without touching the directory).
    const rec = loadDiskRecords(state, root).dirs.get('wt-1/node_modules/pkg-11/lib')!;
    expect([rec.count, rec.bytes, rec.links.length / 3]).toEqual([0, 0, FILES + 1]);
  });
});

describe('records taken before a clone', () => {
  it('stay exact when a later cp -al makes their single-link files shared; a retired slot’s go', async () => {
    const sandbox = tempDir('wtpool-disk-clone-');
    try {
      const root = path.join(sandbox, 'repo.worktrees');
      const lib = path.join(root, 'wt-1', 'node_modules', 'dep', 'lib');
      mkdirSync(lib, { recursive: true });
      for (let f = 0; f < 50; f++) writeFileSync(path.join(lib, `f${f}.js`), 'y'.repeat(500 + f));
      mkdirSync(path.join(root, 'wt-2'));
      const later = () => Date.now() + 10_000;
      const first = await measureTree(root, { now: later });
      expect(first.bytes).toBe(du(root));
      // The clone links wt-1's files into wt-2 without touching any of wt-1's directories.
      execFileSync('cp', ['-al', path.join(root, 'wt-1', 'node_modules'), path.join(root, 'wt-2')]);
      const m = await measureTree(root, { cache: first.cache, now: later });
      // All records stood but wt-2's listing (the clone added an entry): wt-2 and the three
      // directories of its new tree are listed.
      expect(m.dirsReused).toBe(first.cache.dirs.size - 1);
      expect(m.dirsRead).toBe(4);
      expect(m.bytes).toBe(du(root));
      const files = 50 * 500 + (49 * 50) / 2;
      expect(m.shared).toBe(files);
      // Each slot's own bytes are its directories; the root's own inode is nobody's.
      const own = (await fs.lstat(root)).size;
      expect(m.perEntryOwn.get('wt-1')! + m.perEntryOwn.get('wt-2')! + files + own).toBe(m.bytes);

      // Saved, then wt-2 retired: the next save (wt-1 changed) removes its records file and the
      // first format's file.
      const state = path.join(sandbox, 'state');
      await saveDiskRecords(state, first);
      await saveDiskRecords(state, m);
      const dir = path.join(state, 'monitor', 'disk');
      const trees = async () => (await fs.readdir(dir)).filter((n) => n.endsWith('.json'));
      expect(await trees()).toHaveLength(2);
      writeFileSync(path.join(state, 'monitor', 'disk-cache.json'), '{"v":1}');
      await fs.rm(path.join(root, 'wt-2'), { recursive: true });
      writeFileSync(path.join(lib, 'new.js'), 'new');
      const after = await measureTree(root, { cache: loadDiskRecords(state, root), now: later });
      expect(after.bytes).toBe(du(root));
      await saveDiskRecords(state, after);
      expect(await trees()).toHaveLength(1);
      expect(loadDiskRecords(state, root).dirs.has('wt-1/node_modules/dep/lib')).toBe(true);
      expect(existsSync(path.join(state, 'monitor', 'disk-cache.json'))).toBe(false);
    } finally {
      await fs.rm(sandbox, { recursive: true, force: true });
    }
  });
});
