/**
 * The second half of a disk measure (disk-measure.ts): the entries that are counted once
 * across the whole tree (hard links, and every file inside node_modules), each inode once, and
 * their bytes attributed to the top-level entries (slots) that reach them.
 */
/**
 * The link entries of the visited records, each inode once. A list reached from several
 * top-level entries (the clones of one dependency tree share their records' lists) is walked
 * once with the set of entries reaching it; an inode reached by lists of different sets gets
 * their union. Bytes are then summed per set: one entry's own, or shared and split equally.
 */
export function countLinks(
  visited: Array<[top: string, rec: { links: number[] }]>,
  add: (top: string, n: number) => void,
): { bytes: number; inodes: number; shared: number; share: Map<string, number> } {
  const reach = new Map<number[], Set<string>>();
  for (const [top, rec] of visited) {
    if (!rec.links.length) continue;
    const r = reach.get(rec.links);
    if (r) r.add(top);
    else reach.set(rec.links, new Set([top]));
  }
  const unions = new Map<Set<string>, Map<Set<string>, Set<string>>>();
  const union = (a: Set<string>, b: Set<string>): Set<string> => {
    if (a === b) return a;
    let m = unions.get(a);
    if (!m) unions.set(a, (m = new Map()));
    let u = m.get(b);
    if (!u) {
      u = new Set([...a, ...b]);
      if (u.size === a.size) u = a;
      else if (u.size === b.size) u = b;
      m.set(b, u);
    }
    return u;
  };
  interface Inode {
    size: number;
    tops: Set<string>;
  }
  const byDev = new Map<number, Map<number, Inode>>();
  let bytes = 0;
  let inodes = 0;
  for (const [l, tops] of reach) {
    let dev = NaN;
    let m: Map<number, Inode> | undefined;
    for (let i = 0; i < l.length; i += 3) {
      if (l[i] !== dev) {
        dev = l[i]!;
        m = byDev.get(dev);
        if (!m) byDev.set(dev, (m = new Map()));
      }
      const seen = m!.get(l[i + 1]!);
      if (!seen) {
        m!.set(l[i + 1]!, { size: l[i + 2]!, tops });
        bytes += l[i + 2]!;
        inodes++;
      } else seen.tops = union(seen.tops, tops);
    }
  }
  const bySet = new Map<Set<string>, number>();
  for (const m of byDev.values())
    for (const n of m.values()) bySet.set(n.tops, (bySet.get(n.tops) ?? 0) + n.size);
  let shared = 0;
  const share = new Map<string, number>();
  for (const [tops, size] of bySet) {
    if (tops.size === 1) {
      add(tops.values().next().value!, size);
      continue;
    }
    shared += size;
    for (const t of tops) if (t) share.set(t, (share.get(t) ?? 0) + size / tops.size);
  }
  return { bytes, inodes, shared, share };
}
