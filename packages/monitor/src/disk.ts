/**
 * Disk usage of the pool root for `monitor status`: the hard-link-aware incremental measure and
 * its records live in @wtpool/services (disk-measure.ts, disk-records.ts: the deps provider
 * primes the records when a slot's dependencies arrive, D397); this adds the filesystem's free
 * space and the report's shape.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { loadDiskRecords, measureTree, saveDiskRecords } from '@wtpool/services';

export {
  insideNodeModules,
  loadDiskRecords,
  measureTree,
  primeDiskRecords,
  RACY_MS,
  saveDiskRecords,
} from '@wtpool/services';
export type { DirRecord, DiskCache, MeasureOptions, TreeMeasure } from '@wtpool/services';

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
  /** Directories listed vs reused from the incremental records. */
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
 * Disk usage of `root`; with `stateDir`, incremental: the records of the last measure (or of
 * the slots' provisioning) are read from it and the changed ones written back (a failed write
 * only costs the next measure time).
 */
export async function diskUsage(
  root: string,
  opts: { stateDir?: string } = {},
): Promise<DiskUsage> {
  const cache = opts.stateDir ? loadDiskRecords(opts.stateDir, root) : null;
  const [m, fsInfo] = await Promise.all([measureTree(root, { cache }), freeSpace(root)]);
  if (opts.stateDir) await saveDiskRecords(opts.stateDir, m).catch(() => {});
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
