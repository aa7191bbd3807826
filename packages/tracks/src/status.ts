/**
 * What a beads status means for planning. The status is an open string: beads' own statuses
 * by their meaning, a custom status by the category the export gives it (beads 1.x custom
 * statuses have one of `active`, `wip`, `done`, `frozen`), anything else is unknown — listed,
 * never assigned, and still open (it blocks what depends on it).
 */

/**
 * - `open`: free work when nothing blocks it;
 * - `in_flight`: someone is on it (never handed out again);
 * - `waiting`: open, but not to be started now (deferred, blocked by hand, frozen);
 * - `done`: closed (satisfies what depends on it);
 * - `not_work`: stays open on purpose (pinned);
 * - `unknown`: a status this tool does not know, without a category.
 */
export type StatusMeaning = 'open' | 'in_flight' | 'waiting' | 'done' | 'not_work' | 'unknown';

/** beads' built-in statuses (types.go), `review` (Gas Town), and the old `tombstone`. */
export const KNOWN_STATUSES: Readonly<Record<string, StatusMeaning>> = {
  open: 'open',
  in_progress: 'in_flight',
  hooked: 'in_flight',
  review: 'in_flight',
  blocked: 'waiting',
  deferred: 'waiting',
  closed: 'done',
  tombstone: 'done',
  pinned: 'not_work',
};

/** Custom status categories (beads 1.x `status.custom` NAME:CATEGORY). */
export const STATUS_CATEGORIES: Readonly<Record<string, StatusMeaning>> = {
  active: 'open',
  wip: 'in_flight',
  done: 'done',
  frozen: 'waiting',
};

const own = (o: object, k: string) => Object.prototype.hasOwnProperty.call(o, k);

/** The meaning of a status, with the category the export gave it (if any). */
export function statusMeaning(status: string, category?: string): StatusMeaning {
  if (own(KNOWN_STATUSES, status)) return KNOWN_STATUSES[status]!;
  const c = category?.trim().toLowerCase();
  if (c && own(STATUS_CATEGORIES, c)) return STATUS_CATEGORIES[c]!;
  return 'unknown';
}
