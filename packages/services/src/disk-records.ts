/**
 * Where the disk measure's records live (disk-measure.ts, D397), and their priming when a slot's
 * dependencies arrive:
 *
 * - one file per measured tree (a slot's worktree, the main checkout), named after its path,
 *   under `<stateDir>/monitor/disk/`: its directories' records (and listings), relative to it;
 * - the records' link lists (every file of a dependency tree) in content-addressed files beside
 *   them (`lists/<hash>.json`), so the thirty clones of one tree share one list on disk, in
 *   memory once loaded, and in the measure's count (walked once for all of them);
 * - `primeAfterInstall`, run by the deps provider: after an install, the new trees are measured
 *   (nothing else writes in a slot being provisioned, so the records are reusable at once);
 *   after a hard-link clone, each unit's record is derived from the source's (the same files:
 *   only the new directories are listed), so a clone costs a walk of its directories, not of
 *   its files.
 *
 * All files are 0600 in 0700 directories (they list the pool's paths). A missing or unreadable
 * file is no records: the next measure reads those directories.
 */
import { createHash } from 'node:crypto';
import {
  existsSync,
  lstatSync,
  promises as fs,
  readdirSync,
  readFileSync,
  statSync,
} from 'node:fs';
import path from 'node:path';
import { traced } from '@wtpool/core';
import { writePrivateFile } from '@wtpool/lock';
import { nodeModulesDirs } from './deps-clone.js';
import { deriveUnit } from './disk-derive.js';
import {
  measureTree,
  sameStamp,
  type DirRecord,
  type Derive,
  type DiskCache,
  type TreeMeasure,
} from './disk-measure.js';

const VERSION = 2;
/** A list file no tree file names is removed once older than this (a writer may be between the two). */
const ORPHAN_MS = 10 * 60_000;

export const diskRecordsDir = (stateDir: string) => path.join(stateDir, 'monitor', 'disk');
const listsDir = (stateDir: string) => path.join(diskRecordsDir(stateDir), 'lists');
const treeFile = (stateDir: string, dir: string) =>
  path.join(
    diskRecordsDir(stateDir),
    createHash('sha256').update(path.resolve(dir)).digest('hex').slice(0, 24) + '.json',
  );

// Row: dev, ino, mtimeMs, ctimeMs, readAt, flags (1 quiet, 2 store, 4 package, 8 listing),
// subdirs, bytes, count, links: flat inline when short, else the hash of its list file.
type Row = [
  number,
  number,
  number,
  number,
  number,
  number,
  string[],
  number,
  number,
  string | number[],
];
/** Lists of more entries than this go to a list file (shared by the clones of a tree). */
const INLINE = 64;
interface TreeDoc {
  v: number;
  dir: string;
  dirs: Record<string, Row>;
}

/** Lists by content hash, loaded once per process; and the hash of each list object seen. */
const listCache = new Map<string, number[]>();
const hashOf = new WeakMap<number[], string>();

/**
 * A list's file text: its (dev, ino, size) triples sorted, per device `dev, n` then n pairs
 * of (ino − previous ino, size): about a third of the plain text.
 */
function encodeList(l: number[]): string {
  const order = Array.from({ length: l.length / 3 }, (_, i) => i * 3);
  order.sort((a, b) => l[a]! - l[b]! || l[a + 1]! - l[b + 1]!);
  const out: number[] = [];
  let dev = NaN;
  let countAt = -1;
  let prev = 0;
  for (const i of order) {
    if (l[i] !== dev) {
      dev = l[i]!;
      out.push(dev, 0);
      countAt = out.length - 1;
      prev = 0;
    }
    out.push(l[i + 1]! - prev, l[i + 2]!);
    prev = l[i + 1]!;
    out[countAt]!++;
  }
  return JSON.stringify(out);
}

function decodeList(text: string): number[] {
  const e = JSON.parse(text) as number[];
  const l: number[] = [];
  for (let i = 0; i < e.length;) {
    const dev = e[i++]!;
    const n = e[i++]!;
    let ino = 0;
    for (let k = 0; k < n; k++) {
      ino += e[i++]!;
      l.push(dev, ino, e[i++]!);
    }
  }
  return l;
}

function loadList(stateDir: string, hash: string): number[] | null {
  const cached = listCache.get(hash);
  if (cached) return cached;
  try {
    const l = decodeList(readFileSync(path.join(listsDir(stateDir), `${hash}.json`), 'utf8'));
    listCache.set(hash, l);
    hashOf.set(l, hash);
    return l;
  } catch {
    return null;
  }
}

async function saveList(stateDir: string, l: number[]): Promise<string> {
  const known = hashOf.get(l);
  if (known && listCache.has(known)) {
    // Loaded or written by this process: on disk unless removed since (then write it again).
    try {
      statSync(path.join(listsDir(stateDir), `${known}.json`));
      return known;
    } catch {
      // fall through
    }
  }
  const text = encodeList(l);
  const hash = createHash('sha256').update(text).digest('hex').slice(0, 32);
  const file = path.join(listsDir(stateDir), `${hash}.json`);
  try {
    statSync(file);
  } catch {
    await writePrivateFile(file, text);
  }
  hashOf.set(l, hash);
  listCache.set(hash, l);
  return hash;
}

/** The records of the tree at `dir`, by path relative to it (empty when none were saved). */
export function loadTreeRecords(stateDir: string, dir: string): Map<string, DirRecord> {
  const out = new Map<string, DirRecord>();
  let doc: TreeDoc;
  try {
    doc = JSON.parse(readFileSync(treeFile(stateDir, dir), 'utf8')) as TreeDoc;
  } catch {
    return out;
  }
  if (doc.v !== VERSION || doc.dir !== path.resolve(dir)) return out;
  for (const [rel, r] of Object.entries(doc.dirs)) {
    const links = typeof r[9] === 'string' ? loadList(stateDir, r[9]) : r[9];
    if (!links) continue; // its list is gone: read the directory again
    const rec: DirRecord = {
      dev: r[0],
      ino: r[1],
      mtimeMs: r[2],
      ctimeMs: r[3],
      readAt: r[4],
      subdirs: r[6],
      bytes: r[7],
      count: r[8],
      links,
    };
    if (r[5] & 1) rec.quiet = true;
    if (r[5] & 2) rec.unit = 'store';
    else if (r[5] & 4) rec.unit = 'package';
    if (r[5] & 8) rec.listing = true;
    out.set(rel, rec);
  }
  return out;
}

/** Replaces the saved records of the tree at `dir` (none: its file is removed). */
export async function saveTreeRecords(
  stateDir: string,
  dir: string,
  recs: ReadonlyMap<string, DirRecord>,
): Promise<void> {
  const file = treeFile(stateDir, dir);
  if (!recs.size) {
    await fs.rm(file, { force: true });
    return;
  }
  const dirs: Record<string, Row> = {};
  for (const [rel, r] of recs) {
    const list = r.links.length > INLINE * 3 ? await saveList(stateDir, r.links) : r.links;
    const flags =
      (r.quiet ? 1 : 0) |
      (r.unit === 'store' ? 2 : r.unit === 'package' ? 4 : 0) |
      (r.listing ? 8 : 0);
    dirs[rel] = [
      r.dev,
      r.ino,
      r.mtimeMs,
      r.ctimeMs,
      r.readAt,
      flags,
      r.subdirs,
      r.bytes,
      r.count,
      list,
    ];
  }
  const doc: TreeDoc = { v: VERSION, dir: path.resolve(dir), dirs };
  await writePrivateFile(file, JSON.stringify(doc));
}

/** The records for a measure of `root`: those of each of its top-level entries. */
export function loadDiskRecords(stateDir: string, root: string): DiskCache {
  const dirs = new Map<string, DirRecord>();
  let tops: string[] = [];
  try {
    tops = readdirSync(root);
  } catch {
    // no root: no records
  }
  for (const top of tops)
    for (const [rel, r] of loadTreeRecords(stateDir, path.join(root, top)))
      dirs.set(rel ? `${top}/${rel}` : top, r);
  return { root, dirs };
}

/** Saves the records of the top-level entries a measure changed; drops what is orphaned. */
export async function saveDiskRecords(stateDir: string, m: TreeMeasure): Promise<void> {
  if (!m.cacheChanged) return;
  const byTop = new Map<string, Map<string, DirRecord>>();
  for (const t of m.changedTops) byTop.set(t, new Map());
  for (const [rel, r] of m.cache.dirs) {
    const i = rel.indexOf('/');
    byTop.get(i < 0 ? rel : rel.slice(0, i))?.set(i < 0 ? '' : rel.slice(i + 1), r);
  }
  for (const [top, recs] of byTop) {
    if (top) await saveTreeRecords(stateDir, path.join(m.cache.root, top), recs);
  }
  await dropOrphans(stateDir);
}

/**
 * Removes the records of trees that are gone (a retired slot), the state dir's file of the
 * records' first format, and list files no tree file names (older than ORPHAN_MS: a writer may
 * be between the two).
 */
async function dropOrphans(stateDir: string): Promise<void> {
  const dir = diskRecordsDir(stateDir);
  await fs.rm(path.join(stateDir, 'monitor', 'disk-cache.json'), { force: true });
  const used = new Set<string>();
  for (const n of await fs.readdir(dir).catch(() => [] as string[])) {
    if (!n.endsWith('.json')) continue;
    const file = path.join(dir, n);
    const text = await fs.readFile(file, 'utf8').catch(() => '');
    const tree = /^\{"v":\d+,"dir":("(?:[^"\\]|\\.)*")/.exec(text)?.[1];
    if (tree && !existsSync(JSON.parse(tree) as string)) {
      await fs.rm(file, { force: true });
      continue;
    }
    for (const m of text.matchAll(/"([0-9a-f]{32})"\]/g)) used.add(m[1]!);
  }
  const now = Date.now();
  for (const n of await fs.readdir(listsDir(stateDir)).catch(() => [] as string[])) {
    const hash = n.replace(/\.json$/, '');
    if (used.has(hash)) continue;
    const p = path.join(listsDir(stateDir), n);
    const st = await fs.stat(p).catch(() => null);
    if (st && now - st.mtimeMs > ORPHAN_MS) {
      await fs.rm(p, { force: true });
      listCache.delete(hash);
    }
  }
}

export interface PrimeResult {
  dirsRead: number;
  dirsDerived: number;
}

/**
 * Records of `worktree`, which nothing else writes while this runs (a slot being provisioned),
 * whose dependency trees `rels` (relative paths of node_modules directories) just arrived. With
 * `source`, those trees are `cp -al` clones of the source's: its records of them are brought
 * up to date first (read where they are missing or stale, saved), then each unit's record
 * derived from them.
 */
export async function primeDiskRecords(opts: {
  stateDir: string;
  worktree: string;
  rels: string[];
  source?: string;
}): Promise<PrimeResult> {
  const { stateDir, worktree, rels } = opts;
  const mine = priming(worktree);
  try {
    return await prime(stateDir, worktree, rels, opts.source);
  } finally {
    mine();
  }
}

/**
 * Primings under way in this process, by worktree: a clone's waits for its source's (the slot
 * that installed is still being read while the others clone, and records read from it then,
 * racy and not quiet, would replace its own).
 */
const primings = new Map<string, Promise<void>>();

function priming(worktree: string): () => void {
  let done!: () => void;
  const key = path.resolve(worktree);
  const p = new Promise<void>((r) => (done = r));
  primings.set(key, p);
  return () => {
    if (primings.get(key) === p) primings.delete(key);
    done();
  };
}

async function prime(
  stateDir: string,
  worktree: string,
  rels: string[],
  source?: string,
): Promise<PrimeResult> {
  let derive: Derive | undefined;
  if (source) {
    await primings.get(path.resolve(source));
    const had = loadTreeRecords(stateDir, source);
    const src = await measureTree(source, {
      cache: { root: source, dirs: had },
      only: rels,
      count: false,
    });
    if (src.cacheChanged) await saveTreeRecords(stateDir, source, replaced(had, rels, src));
    const theirs = src.cache.dirs;
    derive = (rel, abs, st) => {
      const s = theirs.get(rel);
      if (!s?.unit) return null;
      // The source must still be what its record, taken after the clone, says.
      let now;
      try {
        now = lstatSync(path.join(source, rel));
      } catch {
        return null;
      }
      return sameStamp(s, now) ? deriveUnit(abs, st, s, Date.now()) : null;
    };
  }
  // Only the new trees: the sources' listings are the first status's to record (listing them
  // here would cost every clone more than it spares that status).
  const m = await measureTree(worktree, {
    only: rels,
    quiet: true,
    count: false,
    ...(derive ? { derive } : {}),
  });
  await saveTreeRecords(stateDir, worktree, replaced(loadTreeRecords(stateDir, worktree), rels, m));
  // Quiet records have no racy window: a later change must not share the timestamp tick of
  // the last change they saw. Whoever writes next (the slot's setup, its agent) starts after
  // this returns, so it returns no earlier than a tick after that change.
  let newest = 0;
  for (const r of m.cache.dirs.values()) newest = Math.max(newest, r.mtimeMs, r.ctimeMs);
  const wait = newest + TICK_MS - Date.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  return { dirsRead: m.dirsRead, dirsDerived: m.dirsDerived };
}

/** Longer than a kernel timestamp tick (a jiffy: 1–10 ms) on filesystems with sub-second times. */
const TICK_MS = 25;

/** `had` with the records of the trees `rels` replaced by those of measure `m`. */
function replaced(
  had: ReadonlyMap<string, DirRecord>,
  rels: readonly string[],
  m: TreeMeasure,
): Map<string, DirRecord> {
  const within = (rel: string, dir: string) => rel === dir || rel.startsWith(dir + '/');
  const out = new Map([...had].filter(([rel]) => !rels.some((r) => within(rel, r))));
  for (const [rel, r] of m.cache.dirs) out.set(rel, r);
  return out;
}

/**
 * The records of a slot whose dependencies were just installed (or cloned from `source`), so
 * that the first `monitor status` need not walk them (the deps provider calls this). Nothing
 * else writes in the slot yet; a failure only costs that status time.
 */
export async function primeAfterInstall(
  stateDir: string,
  worktree: string,
  source?: string,
): Promise<void> {
  const mine = priming(worktree); // before any await: the clones of this slot wait for it
  try {
    await traced('disk', 'prime disk records', async () =>
      prime(stateDir, worktree, await nodeModulesDirs(worktree), source),
    );
  } catch {
    // a failure only costs the first status time
  } finally {
    mine();
  }
}
