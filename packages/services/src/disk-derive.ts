/**
 * Records of a `cp -al` copy's units derived from its source's (disk-records.ts primes a
 * clone's records with them, D397): the same files, new directories.
 */
import { lstatSync, readdirSync, type Stats } from 'node:fs';
import path from 'node:path';
import { blank, leftOut, type DirRecord, type UnitKind } from './disk-measure.js';

/**
 * A unit's record for a copy of a unit whose record is `src` (a `cp -al` clone: the same
 * files, new directories): its own directories are read (their sizes, and that they are the
 * same ones), the files are taken from `src`. Null when the directories differ from the source's.
 */
export function deriveUnit(abs: string, st: Stats, src: DirRecord, now: number): DirRecord | null {
  const kind = src.unit;
  if (!kind) return null;
  const known = innerDirs.get(src.links);
  const rec = known ? deriveKnown(abs, st, src, known, now) : null;
  if (rec) return rec;
  const found: string[] = [];
  const walked = deriveWalk(abs, st, kind, src, now, found);
  if (walked) innerDirs.set(src.links, found);
  return walked;
}

/**
 * The inner directories of the units derived in this process, by the units' list of files:
 * the next clone of the same tree (pool init derives them one after the other) lstat-s them
 * without listing any.
 */
const innerDirs = new WeakMap<number[], string[]>();

/** `deriveUnit` by listing every directory of the copy. */
function deriveWalk(
  abs: string,
  st: Stats,
  kind: UnitKind,
  src: DirRecord,
  now: number,
  found: string[],
): DirRecord | null {
  const rec = blank(st, now, true);
  rec.unit = kind;
  rec.links = src.links;
  const stack = [''];
  while (stack.length) {
    const inner = stack.pop()!;
    let entries;
    try {
      entries = readdirSync(inner ? abs + path.sep + inner : abs, { withFileTypes: true });
    } catch {
      return null;
    }
    for (const d of entries) {
      if (!d.isDirectory()) continue;
      const sub = inner ? inner + '/' + d.name : d.name;
      if (leftOut(kind, inner, d.name)) {
        rec.subdirs.push(sub);
        continue;
      }
      let e: Stats;
      try {
        e = lstatSync(abs + path.sep + sub);
      } catch {
        return null;
      }
      rec.bytes += e.size;
      rec.count++;
      found.push(sub);
      stack.push(sub);
    }
  }
  if (rec.count !== src.count || rec.subdirs.length !== src.subdirs.length) return null;
  const theirs = new Set(src.subdirs);
  return rec.subdirs.every((s) => theirs.has(s)) ? rec : null;
}

/**
 * `deriveUnit` from the inner directories of an earlier copy: each is lstat-ed (it must be a
 * directory). That there are no others is checked by their link counts where the filesystem
 * keeps them (2 + subdirectories: tmpfs, ext4, xfs); where it does not (btrfs: 1), by listing.
 */
function deriveKnown(
  abs: string,
  st: Stats,
  src: DirRecord,
  inner: readonly string[],
  now: number,
): DirRecord | null {
  if (st.nlink < 2) return null;
  const rec = blank(st, now, true);
  rec.unit = src.unit!;
  rec.links = src.links;
  rec.subdirs = src.subdirs;
  let subdirs = st.nlink - 2;
  for (const sub of inner) {
    const e = lstatSync(abs + path.sep + sub, { throwIfNoEntry: false });
    if (!e?.isDirectory() || e.nlink < 2) return null;
    rec.bytes += e.size;
    rec.count++;
    subdirs += e.nlink - 2;
  }
  for (const sub of src.subdirs)
    if (!lstatSync(abs + path.sep + sub, { throwIfNoEntry: false })?.isDirectory()) return null;
  // Every directory is some directory's subdirectory once: the inner ones and the left-out.
  return rec.count === src.count && subdirs === inner.length + src.subdirs.length ? rec : null;
}
