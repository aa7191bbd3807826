/**
 * Disk: bytes used under a root, like `du -sb` (apparent sizes of files, directories and
 * symlinks, each (dev, inode) once, so the hard-linked dependency trees of thirty slots are not
 * counted thirty times), measured incrementally (D200, D397):
 *
 * - Each directory inside a `node_modules` is summarised in a record stamped with its (dev,
 *   inode, mtime, ctime): its subdirectories, and the (dev, ino, size) of every other entry. A
 *   later measure that finds the same stamps reuses the record instead of listing the directory
 *   and lstat-ing its entries: a package manager replaces files (a new entry: the directory's
 *   mtime moves) and never rewrites an installed one in place. Elsewhere (sources an agent edits
 *   in place) every entry is lstat-ed each time.
 * - A package directory (`node_modules/<name>` or `node_modules/@scope/<name>` holding a
 *   package.json) and pnpm's virtual store (`node_modules/.pnpm`) are one record for their
 *   whole subtree, trusted on their own stamps: what is in them is written once by the package
 *   manager, which replaces the directory (or, in the store, adds one named after the
 *   package's version and peers) rather than change it. Nested `node_modules` (and the store's
 *   own) are left out of that record and measured as above.
 * - A directory elsewhere is recorded by its entries' names only: while its stamps hold, its
 *   entries are lstat-ed from those names without listing it again.
 * - A record read less than `RACY_MS` after its directory's last change is not reused (the
 *   directory may change again within the same timestamp tick; git's "racy clean" problem),
 *   unless it was read while nothing else could write there (`quiet`: a slot being provisioned,
 *   see disk-records.ts's primeDiskRecords).
 * - Shared inodes are attributed fairly: bytes reached from one top-level entry (a slot) are
 *   that entry's own; bytes reached from several are `shared`, and each entry's `perEntry` is its
 *   own bytes plus an equal share of every shared inode it reaches.
 *
 * The records persist in the state dir (disk-records.ts), one file per top-level entry, primed
 * when a slot's dependencies are installed or cloned, so a first `monitor status` reads only what
 * changed since.
 */
import { lstatSync, readdirSync, type Stats } from 'node:fs';
import path from 'node:path';
import { countLinks } from './disk-count.js';

/** A directory's summary, stamped with what proves it unchanged. */
export interface DirRecord {
  dev: number;
  ino: number;
  mtimeMs: number;
  ctimeMs: number;
  /** When the directory was read (ms since epoch). */
  readAt: number;
  /** Read while nothing else could write the tree (a slot being provisioned): no racy window. */
  quiet?: boolean;
  /** Summarises its whole subtree but `subdirs`: an installed package, pnpm's store. */
  unit?: UnitKind;
  /**
   * A directory outside node_modules: only its entries' names are recorded (`subdirs`), which
   * spares listing it again while its stamps hold; each entry is still lstat-ed every time.
   */
  listing?: boolean;
  /**
   * Subdirectories measured on their own: names; a unit's nested trees: paths relative to it;
   * a listing's every entry.
   */
  subdirs: string[];
  /** Bytes and count of entries counted here once: single-link files; a unit's inner directories. */
  bytes: number;
  count: number;
  /**
   * Entries to count once across the whole tree, flat: dev, ino, size, dev, ino, size… Outside
   * node_modules, the multi-link files; in a trusted record, every entry that is not a
   * directory (a clone made later turns a single-link file into a shared one without touching
   * its directory, so a trusted record cannot know which is which).
   */
  links: number[];
}

/** Records of the directories by path relative to the measured root ('' for the root). */
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
  /**
   * Directories listed; reused from the cache (a record: nothing lstat-ed; a listing: its
   * entries lstat-ed); derived from another tree's records.
   */
  dirsRead: number;
  dirsReused: number;
  dirsDerived: number;
  /** Top-level entries whose records differ from the cache given (new, re-read or gone). */
  changedTops: Set<string>;
  /** Whether any record differs from the cache given: worth saving. */
  cacheChanged: boolean;
}

/**
 * A record for a directory from elsewhere (a clone's source): given the directory's path
 * relative to the root, its absolute path and stats; null to read it.
 */
export type Derive = (rel: string, abs: string, st: Stats) => DirRecord | null;

export interface MeasureOptions {
  /** Records of an earlier measure of the same root. */
  cache?: DiskCache | null;
  /** Which directories' records may be reused (path relative to the root); default: inside node_modules. */
  trust?: (rel: string) => boolean;
  /** Measure only these subtrees (paths relative to the root) instead of the whole root. */
  only?: string[];
  /** Nothing else writes the tree during this measure: its records are reusable at once. */
  quiet?: boolean;
  /** Records of directories copied from elsewhere (see `Derive`), tried before reading one. */
  derive?: Derive;
  /** Only the records are wanted (priming): skip counting the shared entries (bytes are NaN). */
  count?: boolean;
  /** Clock for the records' `readAt` (tests). */
  now?: () => number;
}

/** Directories read between two turns of the event loop. */
const YIELD_EVERY = 512;

/** A directory summarised with its whole subtree (see the header). */
export type UnitKind = 'store' | 'package';

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

/**
 * What kind of unit a trusted directory is, from its path and its entries: pnpm's virtual
 * store, an installed package, or none (a directory recorded alone).
 */
export function unitKind(rel: string, names: readonly string[]): UnitKind | null {
  const parts = rel.split('/');
  const base = parts[parts.length - 1]!;
  const parent = parts[parts.length - 2];
  if (base === '.pnpm' && parent === 'node_modules') return 'store';
  if (base.startsWith('.') || base.startsWith('@')) return null;
  const inNm =
    parent === 'node_modules' ||
    (parent !== undefined && parent.startsWith('@') && parts[parts.length - 3] === 'node_modules');
  return inNm && names.includes('package.json') ? 'package' : null;
}

/** The subdirectories a unit leaves out: the store's own node_modules, a package's nested ones. */
export const leftOut = (kind: UnitKind, inner: string, name: string) =>
  name === 'node_modules' && (kind === 'package' || inner === '');

export function blank(st: Stats, now: number, quiet: boolean): DirRecord {
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
  if (quiet) rec.quiet = true;
  return rec;
}

function list(abs: string): string[] | null {
  try {
    return readdirSync(abs);
  } catch {
    return null; // unreadable: counted as its own inode only
  }
}

/** Adds a directory's entries to `rec`; its subdirectories go to `dirs` (names). */
function addEntries(
  abs: string,
  names: readonly string[],
  rec: DirRecord,
  all: boolean,
  dirs: (name: string, st: Stats) => void,
): void {
  for (const n of names) {
    let e: Stats;
    try {
      e = lstatSync(abs + path.sep + n);
    } catch {
      continue; // vanished while we read
    }
    if (e.isDirectory()) dirs(n, e);
    else if (all || e.nlink > 1) rec.links.push(e.dev, e.ino, e.size);
    else {
      rec.bytes += e.size;
      rec.count++;
    }
  }
}

/** A unit's record: its whole subtree but what `leftOut` names, entries listed as links. */
async function readUnit(
  abs: string,
  names: readonly string[],
  kind: UnitKind,
  rec: DirRecord,
): Promise<number> {
  let read = 1;
  const stack: Array<[inner: string, names: readonly string[] | null]> = [['', names]];
  let turn = Date.now();
  while (stack.length) {
    // A store is thousands of directories: let the process's other work (the next slots'
    // clones in a `pool init`, each a chain of short steps) go on every few milliseconds.
    if (Date.now() - turn >= 3) {
      await new Promise((r) => setImmediate(r));
      turn = Date.now();
    }
    const [inner, known] = stack.pop()!;
    const dir = inner ? abs + path.sep + inner : abs;
    const entries = known ?? list(dir);
    if (!entries) continue;
    if (known === null) read++;
    addEntries(dir, entries, rec, true, (n, e) => {
      const sub = inner ? inner + '/' + n : n;
      if (leftOut(kind, inner, n)) {
        rec.subdirs.push(sub);
        return;
      }
      rec.bytes += e.size;
      rec.count++;
      stack.push([sub, null]);
    });
  }
  return read;
}

export const sameStamp = (r: DirRecord, st: Stats) =>
  r.ino === st.ino && r.dev === st.dev && r.mtimeMs === st.mtimeMs && r.ctimeMs === st.ctimeMs;

/** Whether a record may stand for its directory with stats `st` (unchanged and not racy). */
export function stillValid(r: DirRecord, st: Stats): boolean {
  return (
    sameStamp(r, st) && (r.quiet === true || r.readAt - Math.max(st.mtimeMs, st.ctimeMs) >= RACY_MS)
  );
}

const topOf = (rel: string) => {
  const i = rel.indexOf('/');
  return i < 0 ? rel : rel.slice(0, i);
};

/**
 * Measures the tree under `root` (a missing root counts 0). Synchronous fs calls (D51: the
 * promise API's per-call overhead made a walk 15× `du`); it yields to the event loop every
 * 512 directories so concurrent network work is not held up.
 */
export async function measureTree(root: string, opts: MeasureOptions = {}): Promise<TreeMeasure> {
  const trust = opts.trust ?? insideNodeModules;
  const clock = opts.now ?? Date.now;
  const quiet = opts.quiet === true;
  const old = opts.cache && opts.cache.root === root ? opts.cache.dirs : null;
  const dirs = new Map<string, DirRecord>();
  const own = new Map<string, number>();
  const add = (top: string, n: number) => {
    if (top) own.set(top, (own.get(top) ?? 0) + n);
  };
  const changedTops = new Set<string>();
  let bytes = 0;
  let inodes = 0;
  let dirsRead = 0;
  let dirsReused = 0;
  let dirsDerived = 0;
  // Directories visited with the top-level entry they are under.
  const visited: Array<[top: string, rec: DirRecord]> = [];
  const stat = (p: string) => {
    try {
      return lstatSync(p, { throwIfNoEntry: false }) ?? null;
    } catch {
      return null; // unreadable: as if gone
    }
  };
  const stack: Array<[rel: string, top: string, st: Stats | null]> = [];
  if (opts.only) {
    for (const rel of opts.only) {
      const st = stat(root + path.sep + rel);
      if (st?.isDirectory()) stack.push([rel, topOf(rel), st]);
    }
  } else {
    const rootSt = stat(root);
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
        dirsDerived: 0,
        changedTops: new Set(old ? [...old.keys()].map(topOf) : []),
        cacheChanged: !!old?.size,
      };
    }
    if (rootSt) stack.push(['', '', rootSt]);
  }
  let sinceYield = 0;
  while (stack.length) {
    if (++sinceYield === YIELD_EVERY) {
      sinceYield = 0;
      await new Promise((r) => setImmediate(r));
    }
    const [rel, top, known] = stack.pop()!;
    const abs = rel ? root + path.sep + rel : root;
    const st = known ?? stat(abs);
    // Vanished, or replaced by a file since the record: read the parent again next time.
    if (!st?.isDirectory()) continue;
    inodes++;
    bytes += st.size;
    add(top, st.size);
    const trusted = rel !== '' && trust(rel);
    const prev = old?.get(rel);
    let rec: DirRecord | null = null; // what the directory adds to this measure
    let keep: DirRecord | null = null; // what is recorded of it for the next one
    let fresh = false;
    if (trusted && prev && !prev.listing && stillValid(prev, st)) {
      rec = keep = prev;
      dirsReused++;
    } else if (trusted && opts.derive && (rec = opts.derive(rel, abs, st))) {
      keep = rec;
      dirsDerived++;
    } else {
      let names: string[] | null;
      if (!trusted && prev?.listing && stillValid(prev, st)) {
        names = prev.subdirs;
        keep = prev;
        dirsReused++;
      } else {
        names = list(abs);
        dirsRead++;
      }
      if (names) {
        rec = blank(st, clock(), quiet);
        const kind = trusted ? unitKind(rel, names) : null;
        if (kind) {
          rec.unit = kind;
          dirsRead += (await readUnit(abs, names, kind, rec)) - 1;
        } else {
          // Its subdirectories' stats are those just taken: not taken again when they are visited.
          const r = rec;
          addEntries(abs, names, r, trusted, (n, e) => {
            r.subdirs.push(n);
            stack.push([rel ? rel + '/' + n : n, top || n, e]);
          });
          fresh = true;
        }
        if (trusted) keep = rec;
        else if (!keep) keep = { ...blank(st, rec.readAt, quiet), listing: true, subdirs: names };
      }
    }
    if (!rec) continue;
    if (keep) {
      dirs.set(rel, keep);
      if (keep !== prev && top) changedTops.add(top); // the root's own is not saved
    }
    visited.push([top, rec]);
    inodes += rec.count;
    bytes += rec.bytes;
    add(top, rec.bytes);
    if (!fresh) for (const n of rec.subdirs) stack.push([rel ? rel + '/' + n : n, top || n, null]);
  }
  if (old) for (const rel of old.keys()) if (rel && !dirs.has(rel)) changedTops.add(topOf(rel));
  const s =
    opts.count === false
      ? { bytes: NaN, inodes: NaN, shared: NaN, share: new Map<string, number>() }
      : countLinks(visited, add);
  bytes += s.bytes;
  inodes += s.inodes;
  const perEntry = new Map<string, number>();
  for (const t of new Set([...own.keys(), ...s.share.keys()]))
    perEntry.set(t, (own.get(t) ?? 0) + Math.round(s.share.get(t) ?? 0));
  return {
    bytes,
    inodes,
    perEntry,
    perEntryOwn: own,
    shared: s.shared,
    cache: { root, dirs },
    dirsRead,
    dirsReused,
    dirsDerived,
    changedTops,
    cacheChanged: changedTops.size > 0,
  };
}
