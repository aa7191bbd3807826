/** What a leak finding is (leaks.ts finds them locally, fleet-leaks.ts across a fleet). */
export const LEAK_KINDS = [
  'orphan-db',
  'orphan-redis-db',
  'orphan-worktree',
  'missing-worktree',
  'orphan-branch',
  'stale-lock',
  'expired-lease',
  'zombie-process',
] as const;
export type LeakKind = (typeof LEAK_KINDS)[number];

export interface Leak {
  kind: LeakKind;
  /** What leaked: a database, DB index, path, branch, lock, slot or pid. */
  id: string;
  message: string;
  evidence: Record<string, unknown>;
  /** What cleanup-leaks does with it. */
  fix: string;
}
