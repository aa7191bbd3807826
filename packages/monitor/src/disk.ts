/**
 * Disk: bytes used under the pool root, counted in ONE pass that counts each (dev, inode)
 * once, so hard-linked dependency trees (the pool's hard-link clone of node_modules) are not
 * counted thirty times. Like `du -sb`: apparent sizes of files, directories and symlinks.
 */
import { promises as fs, type BigIntStats } from 'node:fs';
import path from 'node:path';

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
  /** Bytes per top-level entry under the root (slot worktrees). */
  perEntry: Record<string, number>;
}

/**
 * Walks the tree under `root` once and returns the bytes used, counting each (dev, inode) once,
 * with the bytes attributed to the top-level entry (a slot worktree) that reached the inode
 * first. A missing root counts 0. Readdir/lstat run with bounded concurrency.
 */
export async function measureTree(
  root: string,
): Promise<{ bytes: number; inodes: number; perEntry: Map<string, number> }> {
  const seen = new Set<string>();
  const perEntry = new Map<string, number>();
  let bytes = 0;
  // Each queued path carries the top-level entry it belongs to ('' for the root itself).
  const queue: Array<[string, string]> = [[root, '']];
  const visit = async ([p, top]: [string, string]): Promise<void> => {
    let st: BigIntStats;
    try {
      st = await fs.lstat(p, { bigint: true });
    } catch {
      return; // vanished while we walked, or unreadable
    }
    const key = `${st.dev}:${st.ino}`;
    if (seen.has(key)) return;
    seen.add(key);
    const size = Number(st.size);
    bytes += size;
    if (top) perEntry.set(top, (perEntry.get(top) ?? 0) + size);
    if (!st.isDirectory()) return;
    let names: string[];
    try {
      names = await fs.readdir(p);
    } catch {
      return;
    }
    for (const n of names) queue.push([path.join(p, n), top || n]);
  };
  const worker = async () => {
    while (queue.length) await visit(queue.pop()!);
  };
  while (queue.length) await Promise.all(Array.from({ length: 16 }, worker));
  return { bytes, inodes: seen.size, perEntry };
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

export async function diskUsage(root: string): Promise<DiskUsage> {
  const [m, fsInfo] = await Promise.all([measureTree(root), freeSpace(root)]);
  return {
    root,
    bytes: m.bytes,
    inodes: m.inodes,
    free: fsInfo?.free ?? null,
    total: fsInfo?.total ?? null,
    perEntry: Object.fromEntries(m.perEntry),
  };
}
