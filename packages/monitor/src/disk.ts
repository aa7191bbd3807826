/**
 * Disk: bytes used under the pool root, like `du -sb` (apparent sizes of files, directories and
 * symlinks, each (dev, inode) once, so the hard-linked dependency trees of thirty slots are not
 * counted thirty times), measured incrementally (D200):
 *
 * - Each directory's listing is summarised in a record (its subdirectories, the bytes of its
 *   single-link entries, the (dev, inode, size) of its multi-link ones) stamped with the
 *   directory's (dev, inode, mtime, ctime). A later measure that finds the same stamps reuses
 *   the record instead of reading the directory and lstat-ing every entry, for directories the
 *   `trust` rule accepts: by default those inside a `node_modules`, whose files a package
 *   manager replaces (a new entry: the directory's mtime moves) and never rewrites in place.
 *   Elsewhere (sources an agent edits in place) every entry is lstat-ed each time.
 * - A record read less than `RACY_MS` after the directory's last change is not reused (the
 *   directory may change again within the same timestamp tick; git's "racy clean" problem).
 * - Shared inodes are attributed fairly: bytes reached from one top-level entry (a slot) are
 *   that entry's own; bytes reached from several are `shared`, and each entry's `perEntry` is its
 *   own bytes plus an equal share of every shared inode it reaches.
 *
 * The records persist in the state dir (`monitor/disk-cache.json`), so a cold `monitor status`
 * reads only the directories that changed.
 */
import { lstatSync, promises as fs, readdirSync, readFileSync, type Stats } from 'node:fs';
import path from 'node:path';
import { writePrivateFile } from '@wtpool/lock';

/** A directory's summary, stamped with what proves it unchanged. */
export interface DirRecord {
  dev: number;
  ino: number;
  mtimeMs: number;
  ctimeMs: number;
  /** When the directory was read (ms since epoch). */
  readAt: number;
  /** Names of its subdirectories. */
  subdirs: string[];
  /** Bytes and count of its non-directory entries with one link. */
  bytes: number;
  count: number;
  /** Its non-directory entries with more than one link, flat: dev, ino, size, dev, ino, size… */
  links: number[];
}

/** Records of the trusted directories by path relative to the measured root. */
export interface DiskCache {
  root: string;
  dirs: Map<string, DirRecord>;
}

export interface TreeMeasure {
  /** Bytes used (apparent size, each inode once): what `du -sb` prints. */
  bytes: number;
  /** Distinct inodes. */
  inodes: number;
  /** Per top-level entry: own bytes plus an equal share of each inode it shares (rounded). */
  perEntry: Map<string, number>;
  /** Per top-level entry: bytes no other top-level entry reaches. */
  perEntryOwn: Map<string, number>;
  /** Bytes of inodes reached from two or more top-level entries, counted once. */
  shared: number;
  /** The records of this measure, for the next one. */
  cache: DiskCache;
  /** Directories read (listed and lstat-ed entry by entry) and reused from the cache. */
  dirsRead: number;
  dirsReused: number;
  /** Whether the records differ from the cache given (new, re-read or gone): worth saving. */
  cacheChanged: boolean;
}

export interface MeasureOptions {
  /** Records of an earlier measure of the same root. */
  cache?: DiskCache | null;
  /** Which directories' records may be reused (path relative to the root); default: inside node_modules. */
  trust?: (rel: string) => boolean;
  /** Clock for the records' `readAt` (tests). */
  now?: () => number;
}

/** A record younger than this after its directory's last change is read again. */
export const RACY_MS = 2000;

/** Default trust: directories at or below a `node_modules` path segment. */
export function insideNodeModules(rel: string): boolean {
  return (
    rel === 'node_modules' ||
    rel.startsWith('node_modules/') ||
    rel.includes('/node_modules/') ||
    rel.endsWith('/node_modules')
  );
}

function readDir(abs: string, st: Stats, now: number): DirRecord | null {
  let names: string[];
  try {
    names = readdirSync(abs);
  } catch {
    return null; // unreadable: counted as its own inode only
  }
  const rec: DirRecord = {
    dev: st.dev,
    ino: st.ino,
    mtimeMs: st.mtimeMs,
    ctimeMs: st.ctimeMs,
    readAt: now,
    subdirs: [],
    bytes: 0,
    count: 0,
    links: [],
  };
  for (const n of names) {
    let e: Stats;
    try {
      e = lstatSync(abs + path.sep + n);
    } catch {
      continue; // vanished while we read
    }
    if (e.isDirectory()) rec.subdirs.push(n);
    else if (e.nlink > 1) rec.links.push(e.dev, e.ino, e.size);
    else {
      rec.bytes += e.size;
      rec.count++;
    }
  }
  return rec;
}

/**
 * Measures the tree under `root` (a missing root counts 0). Synchronous fs calls (D51: the
 * promise API's per-call overhead made a walk 15× `du`); it yields to the event loop every
 * 512 directories so concurrent network work is not held up.
 */
export async function measureTree(root: string, opts: MeasureOptions = {}): Promise<TreeMeasure> {
  const trust = opts.trust ?? insideNodeModules;
  const clock = opts.now ?? Date.now;
  const old = opts.cache && opts.cache.root === root ? opts.cache.dirs : null;
  const dirs = new Map<string, DirRecord>();
  const own = new Map<string, number>();
  const add = (top: string, n: number) => {
    if (top) own.set(top, (own.get(top) ?? 0) + n);
  };
  let bytes = 0;
  let inodes = 0;
  let dirsRead = 0;
  let dirsReused = 0;
  let recordsRead = 0;
  // Directories visited, in depth-first order (each top-level entry's subtree contiguous).
  const visited: Array<[top: string, rec: DirRecord]> = [];
  const rootSt = (() => {
    try {
      return lstatSync(root);
    } catch {
      return null;
    }
  })();
  if (rootSt && !rootSt.isDirectory()) {
    return {
      bytes: rootSt.size,
      inodes: 1,
      perEntry: new Map(),
      perEntryOwn: new Map(),
      shared: 0,
      cache: { root, dirs },
      dirsRead: 0,
      dirsReused: 0,
      cacheChanged: !!old?.size,
    };
  }
  const stack: Array<[rel: string, top: string, st: Stats | null]> = rootSt
    ? [['', '', rootSt]]
    : [];
  let sinceYield = 0;
  while (stack.length) {
    if (++sinceYield === 512) {
      sinceYield = 0;
      await new Promise((r) => setImmediate(r));
    }
    const [rel, top, known] = stack.pop()!;
    const abs = rel ? root + path.sep + rel : root;
    let st = known;
    if (!st) {
      try {
        st = lstatSync(abs);
      } catch {
        continue; // vanished
      }
      if (!st.isDirectory()) continue; // replaced by a file since the record: read the parent again next time
    }
    inodes++;
    bytes += st.size;
    add(top, st.size);
    const prev = old?.get(rel);
    let rec: DirRecord | null;
    if (
      prev &&
      prev.ino === st.ino &&
      prev.dev === st.dev &&
      prev.mtimeMs === st.mtimeMs &&
      prev.ctimeMs === st.ctimeMs &&
      prev.readAt - Math.max(st.mtimeMs, st.ctimeMs) >= RACY_MS &&
      trust(rel)
    ) {
      rec = prev;
      dirsReused++;
    } else {
      rec = readDir(abs, st, clock());
      dirsRead++;
    }
    if (!rec) continue;
    if (trust(rel)) {
      dirs.set(rel, rec);
      if (rec !== prev) recordsRead++;
    }
    visited.push([top, rec]);
    inodes += rec.count;
    bytes += rec.bytes;
    add(top, rec.bytes);
    for (const n of rec.subdirs) stack.push([rel ? rel + '/' + n : n, top || n, null]);
  }
  // Multi-link inodes: count each once; note how many distinct top-level entries reach it.
  interface Shared {
    size: number;
    tops: number;
    last: string;
    first: string;
  }
  const byDev = new Map<number, Map<number, Shared>>();
  for (const [top, rec] of visited) {
    const l = rec.links;
    for (let i = 0; i < l.length; i += 3) {
      let m = byDev.get(l[i]!);
      if (!m) byDev.set(l[i]!, (m = new Map()));
      const s = m.get(l[i + 1]!);
      if (!s) {
        m.set(l[i + 1]!, { size: l[i + 2]!, tops: 1, last: top, first: top });
        bytes += l[i + 2]!;
        inodes++;
      } else if (s.last !== top) {
        s.tops++;
        s.last = top;
      }
    }
  }
  let shared = 0;
  const share = new Map<string, number>();
  for (const m of byDev.values())
    for (const s of m.values()) {
      if (s.tops === 1) add(s.first, s.size);
      else shared += s.size;
    }
  if (shared) {
    // Second pass: each top-level entry gets size / tops of every shared inode it reaches.
    for (const m of byDev.values()) for (const s of m.values()) s.last = '\0';
    for (const [top, rec] of visited) {
      const l = rec.links;
      for (let i = 0; i < l.length; i += 3) {
        const s = byDev.get(l[i]!)!.get(l[i + 1]!)!;
        if (s.tops > 1 && s.last !== top) {
          s.last = top;
          if (top) share.set(top, (share.get(top) ?? 0) + s.size / s.tops);
        }
      }
    }
  }
  const perEntry = new Map<string, number>();
  for (const t of new Set([...own.keys(), ...share.keys()]))
    perEntry.set(t, (own.get(t) ?? 0) + Math.round(share.get(t) ?? 0));
  return {
    bytes,
    inodes,
    perEntry,
    perEntryOwn: own,
    shared,
    cache: { root, dirs },
    dirsRead,
    dirsReused,
    cacheChanged: recordsRead > 0 || dirs.size !== (old?.size ?? 0),
  };
}

// ---------------------------------------------------------------------------------------------
// Persistence: one JSON file of compact rows (a real pool has tens of thousands of directories).

type Row = [number, number, number, number, number, string[], number, number, number[]];

/** Reads a cache written by `saveDiskCache`; anything unreadable or of another root is null. */
export function loadDiskCache(file: string, root: string): DiskCache | null {
  try {
    const doc = JSON.parse(readFileSync(file, 'utf8')) as {
      v: number;
      root: string;
      dirs: Record<string, Row>;
    };
    if (doc.v !== 1 || doc.root !== root) return null;
    const dirs = new Map<string, DirRecord>();
    for (const [rel, r] of Object.entries(doc.dirs))
      dirs.set(rel, {
        dev: r[0],
        ino: r[1],
        mtimeMs: r[2],
        ctimeMs: r[3],
        readAt: r[4],
        subdirs: r[5],
        bytes: r[6],
        count: r[7],
        links: r[8],
      });
    return { root, dirs };
  } catch {
    return null;
  }
}

/** Writes the cache atomically (0600 in a 0700 dir: it lists the pool's paths). */
export async function saveDiskCache(file: string, cache: DiskCache): Promise<void> {
  const dirs: Record<string, Row> = {};
  for (const [rel, r] of cache.dirs)
    dirs[rel] = [
      r.dev,
      r.ino,
      r.mtimeMs,
      r.ctimeMs,
      r.readAt,
      r.subdirs,
      r.bytes,
      r.count,
      r.links,
    ];
  await writePrivateFile(file, JSON.stringify({ v: 1, root: cache.root, dirs }));
}

export function diskCacheFile(stateDir: string): string {
  return path.join(stateDir, 'monitor', 'disk-cache.json');
}

export interface DiskUsage {
  root: string;
  /** Bytes used (apparent size, each inode once). */
  bytes: number;
  /** Distinct inodes seen. */
  inodes: number;
  /** Free bytes on the filesystem holding the root (for unprivileged users). */
  free: number | null;
  /** Size of that filesystem. */
  total: number | null;
  /** Bytes per top-level entry under the root (slot worktrees): own bytes + a fair share of shared ones. */
  perEntry: Record<string, number>;
  /** Bytes per top-level entry that no other entry reaches. */
  perEntryOwn: Record<string, number>;
  /** Bytes of inodes hard-linked into two or more top-level entries, counted once. */
  shared: number;
  /** Directories listed vs reused from the incremental cache. */
  dirsRead: number;
  dirsReused: number;
}

/** Free and total bytes of the filesystem holding `p` (the nearest existing ancestor). */
export async function freeSpace(p: string): Promise<{ free: number; total: number } | null> {
  let dir = path.resolve(p);
  for (;;) {
    try {
      const s = await fs.statfs(dir);
      return { free: s.bavail * s.bsize, total: s.blocks * s.bsize };
    } catch {
      const parent = path.dirname(dir);
      if (parent === dir) return null;
      dir = parent;
    }
  }
}

/**
 * Disk usage of `root`; with `cacheFile`, incremental: the records of the last measure are read
 * from it and the new ones written back (a failed write only costs the next measure time).
 */
export async function diskUsage(
  root: string,
  opts: { cacheFile?: string } = {},
): Promise<DiskUsage> {
  const cache = opts.cacheFile ? loadDiskCache(opts.cacheFile, root) : null;
  const [m, fsInfo] = await Promise.all([measureTree(root, { cache }), freeSpace(root)]);
  if (opts.cacheFile && m.cacheChanged)
    await saveDiskCache(opts.cacheFile, m.cache).catch(() => {});
  return {
    root,
    bytes: m.bytes,
    inodes: m.inodes,
    free: fsInfo?.free ?? null,
    total: fsInfo?.total ?? null,
    perEntry: Object.fromEntries(m.perEntry),
    perEntryOwn: Object.fromEntries(m.perEntryOwn),
    shared: m.shared,
    dirsRead: m.dirsRead,
    dirsReused: m.dirsReused,
  };
}
