/**
 * The incremental disk measure against `du -sb` on a pool-shaped tree of more than 100,000
 * entries: one dependency tree hard-linked (`cp -al`, what the pool's hardlink strategy does)
 * into the node_modules of five slots, plus each slot's own sources. `du -sb` counts a
 * hard-linked file once per invocation, so on the whole root it is the figure to equal; on one
 * slot alone it is that slot's own bytes plus the shared files once.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, promises as fs, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '@wtpool/testkit';
import { diskUsage, loadDiskCache, measureTree, saveDiskCache, type TreeMeasure } from './disk.js';

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

  it('a warm measure reuses every node_modules directory, reads the rest, and equals du after changes', async () => {
    const cold = await measureTree(root, { now: later });
    const warm = await measureTree(root, { cache: cold.cache, now: later });
    agrees(warm);
    const nmDirs = count(root, '-path', '*/node_modules*', '-type', 'd');
    expect(warm.dirsReused).toBe(nmDirs);
    expect(warm.dirsRead).toBe(count(root, '-type', 'd') - nmDirs);

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
    agrees(after);
    // Read again: the sources (never trusted) and the five changed node_modules directories
    // (wt-2/node_modules, its pkg-3/lib and new-pkg, wt-3's pkg-4/dist, wt-4/node_modules).
    const nmAfter = count(root, '-path', '*/node_modules*', '-type', 'd');
    expect(after.dirsRead).toBe(count(root, '-type', 'd') - nmAfter + 5);
    expect(after.dirsReused).toBe(nmAfter - 5);
  });

  it('a record read within RACY_MS of its directory change is read again', async () => {
    const base = await measureTree(root, { now: later });
    const nonNm = count(root, '-type', 'd') - count(root, '-path', '*/node_modules*', '-type', 'd');
    const fresh = path.join(root, 'wt-5', 'node_modules', 'fresh');
    await fs.mkdir(fresh);
    await fs.writeFile(path.join(fresh, 'x.js'), 'x'.repeat(123));
    const changedAt = (await fs.stat(fresh)).mtimeMs;
    // Read 100 ms after the change: wt-5/node_modules and fresh/ are racy, the rest is old.
    const racy = await measureTree(root, { cache: base.cache, now: () => changedAt + 100 });
    expect(racy.dirsRead).toBe(nonNm + 2);
    const again = await measureTree(root, { cache: racy.cache, now: later });
    expect(again.dirsRead).toBe(nonNm + 2);
    expect(again.bytes).toBe(du(root));
    const settled = await measureTree(root, { cache: again.cache, now: later });
    expect(settled.dirsRead).toBe(nonNm);
    expect(settled.bytes).toBe(du(root));
  });

  it('the cache survives a save and a load (the state dir file), and diskUsage uses it', async () => {
    const file = path.join(sandbox, 'state', 'monitor', 'disk-cache.json');
    const m = await measureTree(root, { now: later });
    await saveDiskCache(file, m.cache);
    expect((await fs.stat(file)).mode & 0o777).toBe(0o600);
    expect(loadDiskCache(file, path.join(sandbox, 'elsewhere'))).toBeNull();
    const loaded = loadDiskCache(file, root)!;
    expect(loaded.dirs.size).toBe(m.cache.dirs.size);
    const ino = (await fs.stat(file)).ino;
    const u = await diskUsage(root, { cacheFile: file });
    expect(u.bytes).toBe(du(root));
    expect(u.dirsReused).toBe(count(root, '-path', '*/node_modules*', '-type', 'd'));
    expect(u.shared).toBe(m.shared);
    // Nothing trusted changed: the file is not rewritten (an atomic write is a new inode).
    expect((await fs.stat(file)).ino).toBe(ino);
    // A change in a node_modules directory is saved for the next run.
    await fs.writeFile(path.join(root, 'wt-1', 'node_modules', 'pkg-11', 'lib', 'new.js'), 'n');
    const u2 = await diskUsage(root, { cacheFile: file });
    expect(u2.bytes).toBe(du(root));
    expect((await fs.stat(file)).ino).not.toBe(ino);
    // Its record: the new file is the one single-link entry (the others are hard links).
    const rec = loadDiskCache(file, root)!.dirs.get('wt-1/node_modules/pkg-11/lib')!;
    expect([rec.count, rec.bytes, rec.links.length / 3]).toEqual([1, 1, FILES]);
  });
});
