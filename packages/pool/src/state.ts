/**
 * The pool's state machine: the decisions taken inside a registry transaction (dispatch, grant,
 * sweep, growth, retirement, broken-slot backoff). Pure functions of (state, facts): they
 * change only the draft they are given and return a plan of slow work (git, providers) that
 * the caller runs OUTSIDE the lock. They never read the clock, /proc, the lease files or the
 * worktrees themselves: everything they need to know about the world comes in as `Facts`
 * (context.ts builds the live ones; state.test.ts injects a clock and liveness).
 */
import type { Config } from '@wtpool/config';
import type { Lease, PoolState, ProcRef, SlotRecord, Ticket } from './types.js';

/** What the state machine knows about the world at one instant (injected; see context.ts liveFacts). */
export interface Facts {
  /** The time of the decision (ms since the epoch). */
  now: number;
  /** Is the process recorded in `p` still that process (pid + start time, this host)? */
  alive: (p: ProcRef) => boolean;
  /** The token of a slot's stored lease record, or null (LeaseStore.leaseToken). */
  leaseToken: (slot: string) => number | null;
  /** Does a worktree exist at `path`? */
  worktreeExists: (path: string) => boolean;
  /** The process taking the decision (it owns the slow work it plans). */
  me: ProcRef;
  /** This host's name (recorded in leases). */
  host: string;
  /**
   * How many leases this host may hold now (the fleet's PostgreSQL connection budget,
   * LeaseStore.maxLeases); no limit when absent.
   */
  maxLeases?: number;
}

/** May one more lease be granted now (the connection budget, Facts.maxLeases)? */
export const roomForLease = (s: PoolState, f: Pick<Facts, 'maxLeases'>): boolean =>
  f.maxLeases === undefined || counts(s).leased < f.maxLeases;

export const initialState = (): PoolState => ({
  slots: {},
  queue: [],
  nextTicket: 1,
  lastToken: 0,
  identities: {},
  kept: [],
});

/** What a grant needs besides the slot (a ticket, or an immediate request). */
export interface GrantRequest {
  agent: string;
  task: string;
  slug: string;
  priority: number;
  ttlMs: number;
  holder: ProcRef | null;
  identity: string | null;
  claimer: ProcRef;
  ticket: number | null;
  requestedAt: string;
}

export interface Reclaim {
  slot: SlotRecord;
  lease: Lease;
  reason: string;
}

/** Slow work decided under the lock. */
export interface Plan {
  reclaim: Reclaim[];
  provision: SlotRecord[];
  retire: SlotRecord[];
  dropped: Ticket[];
  grown: string[];
  granted: { slot: string; lease: Lease }[];
}

export const emptyPlan = (): Plan => ({
  reclaim: [],
  provision: [],
  retire: [],
  dropped: [],
  grown: [],
  granted: [],
});

export const planIsEmpty = (p: Plan) =>
  !p.reclaim.length && !p.provision.length && !p.retire.length && !p.dropped.length;

export const slotList = (s: PoolState) => Object.values(s.slots).sort((a, b) => a.n - b.n);

export function counts(s: PoolState) {
  const c = { size: 0, ready: 0, leased: 0, provisioning: 0, broken: 0, releasing: 0, retiring: 0 };
  for (const slot of Object.values(s.slots)) {
    c.size++;
    c[slot.state]++;
  }
  return c;
}

/** Queue order: priority (0 first), then first come first served. */
export const byPriority = (a: Ticket, b: Ticket) => a.priority - b.priority || a.id - b.id;

/**
 * Why a lease is over, or null while it is alive: ended (its record outlived the store's state,
 * Lease.ended), heartbeat older than the TTL, holder process
 * dead (pid + start time, this host), or the grant was never claimed and its claimer died.
 */
export function leaseOver(
  lease: Lease,
  f: Pick<Facts, 'now' | 'alive' | 'leaseToken'>,
): string | null {
  if (lease.ended) return 'ended';
  if (f.now - Date.parse(lease.heartbeatAt) > lease.ttlMs) return 'expired';
  if (lease.holder && !f.alive(lease.holder)) return 'holder-dead';
  // No lease record with this token: the claim never completed.
  if (!f.alive(lease.claimer)) return f.leaseToken(lease.slot) === lease.token ? null : 'abandoned';
  return null;
}

/**
 * Housekeeping every transaction does: drop dead waiters' tickets, take over expired or
 * abandoned leases and slots whose worker died.
 */
export function sweep(draft: PoolState, f: Facts, plan: Plan = emptyPlan()): Plan {
  const owner = f.me;
  draft.queue = draft.queue.filter((t) => {
    if (f.alive(t.waiter)) return true;
    plan.dropped.push(t);
    return false;
  });
  for (const slot of slotList(draft)) {
    if (slot.state === 'leased' && slot.lease) {
      const reason = leaseOver(slot.lease, f);
      if (reason) {
        slot.state = 'releasing';
        slot.owner = owner;
        plan.reclaim.push({ slot, lease: slot.lease, reason });
      }
    } else if (slot.owner && !f.alive(slot.owner)) {
      // The process doing slow work on this slot died: take the work over.
      slot.owner = owner;
      if (slot.state === 'provisioning') plan.provision.push(slot);
      else if (slot.state === 'retiring') plan.retire.push(slot);
      else if (slot.state === 'releasing' && slot.lease)
        plan.reclaim.push({ slot, lease: slot.lease, reason: 'releaser-dead' });
      else if (slot.state === 'releasing') plan.provision.push(slot);
    }
  }
  return plan;
}

/** Exit codes of failures that waiting does not heal (bad configuration, a wrong command line). */
const PERMANENT_EXITS = new Set([2, 3]);

/** Is a broken slot's failure one that will not heal by waiting or retrying (bad config)? */
export const brokenForGood = (s: SlotRecord) =>
  s.state === 'broken' && s.errorExit != null && PERMANENT_EXITS.has(s.errorExit);

/**
 * Why the pool must not create slots now, or null when it may grow:
 * - a slot broke for a reason waiting does not heal (a config error, exit 3): a new slot would
 *   break the same way;
 * - the circuit breaker: more than half of the slots are broken, so whatever breaks them is
 *   likely to break new ones too (a failing setup command, a service down).
 * Broken slots are still retried on their backoff; the breaker closes as soon as enough of them
 * are ready again, or after `pool doctor --fix`.
 */
export function growthStopped(s: PoolState): { reason: string; fix: string } | null {
  const permanent = slotList(s).find(brokenForGood);
  if (permanent) {
    return {
      reason: `${permanent.id} is broken by a configuration error: ${permanent.error ?? 'unknown'}`,
      fix: 'fix pool.config.yaml, then run `pool doctor --fix`',
    };
  }
  // A broken slot being retried (provisioning again, failures kept) still counts as broken:
  // the breaker must not close for the length of a retry.
  const failing = slotList(s).filter(
    (x) => x.state === 'broken' || (x.state === 'provisioning' && (x.failures ?? 0) > 0),
  );
  const size = counts(s).size;
  if (size > 0 && failing.length * 2 > size) {
    const first = failing.find((x) => x.error) ?? failing[0]!;
    return {
      reason: `${failing.length} of ${size} slots are broken (${failing.length > 1 ? `${failing.map((x) => x.id).join(', ')}; ` : ''}${first.id}: ${first.error ?? 'unknown'}); the pool stops growing until they are repaired`,
      fix: 'fix the cause, then run `pool doctor --fix` (it retries the broken slots now)',
    };
  }
  return null;
}

/**
 * Reserves `scale.step` new slots (up to max, counting provisioning ones) while waiters
 * outnumber them. Never while growth is stopped (growthStopped) unless `force` (an explicit
 * `pool init` / `scale out`).
 */
export function reserveGrowth(
  draft: PoolState,
  config: Pick<Config, 'scale'>,
  pathOf: (n: number) => string,
  f: Facts,
  plan: Plan,
  force = false,
): void {
  const c = counts(draft);
  if (!force && draft.queue.length <= c.provisioning) return;
  if (!force && growthStopped(draft)) return;
  const add = Math.min(config.scale.step, config.scale.max - c.size);
  for (let i = 0; i < add; i++) {
    const slot = newSlot(draft, pathOf, f.now, f.me);
    plan.provision.push(slot);
    plan.grown.push(slot.id);
  }
}

/** Retires idle ready slots above `scale.min` (all ready ones above min when `idleMs` is 0), at most `limit`. */
export function retireIdle(
  draft: PoolState,
  config: Pick<Config, 'scale'>,
  idleMs: number,
  f: Pick<Facts, 'now' | 'me'>,
  plan: Plan,
  limit = Infinity,
): void {
  if (draft.queue.length) return;
  let excess = Math.min(counts(draft).size - config.scale.min, limit);
  const idle = slotList(draft)
    .filter((s) => s.state === 'ready' && s.readyAt && f.now - Date.parse(s.readyAt) >= idleMs)
    .reverse();
  for (const s of idle) {
    if (excess-- <= 0) break;
    s.state = 'retiring';
    s.owner = f.me;
    plan.retire.push(s);
  }
}

/**
 * How long a broken slot rests before an acquire retries it, after `failures` consecutive
 * failures: the first retry at once (a service that was down for one acquire is usually back),
 * then 2 s, 4 s, 8 s … capped at 5 minutes, so a slot that stays broken costs an acquire one
 * quick failed attempt per interval, not one per acquire.
 */
export function brokenRetryDelay(failures: number): number {
  return failures <= 1 ? 0 : Math.min(1000 * 2 ** (failures - 1), 5 * 60_000);
}

/**
 * Marks a slot broken after slow work on it failed, scheduling its next retry. `exit` is the
 * failure's exit code when known (3: a configuration error, which waiting does not heal).
 */
export function markBroken(
  slot: SlotRecord,
  error: string,
  code: string | null,
  now: number,
  exit: number | null = null,
): void {
  slot.state = 'broken';
  slot.error = error;
  slot.errorCode = code;
  slot.errorExit = exit;
  slot.owner = null;
  slot.lease = null;
  slot.branch = null;
  slot.failures = (slot.failures ?? 0) + 1;
  slot.retryAt = new Date(now + brokenRetryDelay(slot.failures)).toISOString();
}

const retryDue = (s: SlotRecord, now: number) =>
  s.state === 'broken' && (!s.retryAt || Date.parse(s.retryAt) <= now);

/** Is a broken slot due for a retry? (Lock-free check of a waiter.) */
export const anyRetryDue = (s: PoolState, now: number) =>
  Object.values(s.slots).some((x) => retryDue(x, now));

/**
 * Takes up to `want` broken slots whose retry is due for re-provisioning (self-healing after a
 * service outage). Their `failures` stay until they are ready, so provisioning resets services first.
 */
export function reviveBroken(
  draft: PoolState,
  plan: Plan,
  f: Pick<Facts, 'now' | 'me'>,
  want: number,
): void {
  for (const s of slotList(draft)) {
    if (want <= 0) return;
    if (!retryDue(s, f.now)) continue;
    s.state = 'provisioning';
    s.owner = f.me;
    plan.provision.push(s);
    want--;
  }
}

/** The smallest free slot number. */
export function nextSlotNumber(s: PoolState): number {
  const used = new Set(Object.values(s.slots).map((x) => x.n));
  let n = 1;
  while (used.has(n)) n++;
  return n;
}

/** Adds a `provisioning` slot owned by `owner`. */
export function newSlot(
  draft: PoolState,
  pathOf: (n: number) => string,
  now: number,
  owner: ProcRef,
): SlotRecord {
  const n = nextSlotNumber(draft);
  const slot: SlotRecord = {
    id: `wt-${n}`,
    n,
    state: 'provisioning',
    path: pathOf(n),
    branch: null,
    lease: null,
    createdAt: new Date(now).toISOString(),
    readyAt: null,
    owner,
    error: null,
  };
  draft.slots[slot.id] = slot;
  return slot;
}

/**
 * A ready slot for a request: the one its identity used last if ready, else the lowest. A ready
 * slot whose worktree disappeared is taken for re-provisioning instead (self-healing).
 */
export function pickReady(
  draft: PoolState,
  identity: string | null,
  plan: Plan,
  pathOf: (id: string) => string,
  f: Pick<Facts, 'worktreeExists' | 'me'>,
): SlotRecord | undefined {
  const preferred = identity ? draft.slots[draft.identities[identity] ?? ''] : undefined;
  const candidates = slotList(draft).filter((s) => s.state === 'ready');
  if (preferred?.state === 'ready') candidates.unshift(preferred);
  for (const s of candidates) {
    if (s.state !== 'ready') continue; // the preferred one, listed twice, already taken
    const where = pathOf(s.id);
    if (s.path === where && f.worktreeExists(where)) return s;
    // Missing (deleted, pruned) or moved (pool.root changed): re-provision where it belongs.
    s.state = 'provisioning';
    s.owner = f.me;
    s.error = s.path === where ? 'worktree directory missing; recreating' : `moving from ${s.path}`;
    plan.provision.push(s);
  }
  return undefined;
}

/** Branch names in use or kept: a new lease never reuses one. */
function takenBranches(draft: PoolState): Set<string> {
  const taken = new Set(draft.kept.map((k) => k.branch));
  for (const s of Object.values(draft.slots)) if (s.branch) taken.add(s.branch);
  return taken;
}

export function grant(
  draft: PoolState,
  slot: SlotRecord,
  req: GrantRequest,
  branchFor: (slot: string, slug: string) => string,
  f: Pick<Facts, 'now' | 'host'>,
): Lease {
  const token = ++draft.lastToken;
  let branch = branchFor(slot.id, req.slug);
  if (takenBranches(draft).has(branch)) branch = branchFor(slot.id, `${req.slug}-${token}`);
  const at = new Date(f.now).toISOString();
  const lease: Lease = {
    slot: slot.id,
    agent: req.agent,
    task: req.task,
    slug: req.slug,
    branch,
    priority: req.priority,
    token,
    acquiredAt: at,
    heartbeatAt: at,
    ttlMs: req.ttlMs,
    expiresAt: new Date(f.now + req.ttlMs).toISOString(),
    host: f.host,
    holder: req.holder,
    claimer: req.claimer,
    identity: req.identity,
    ticket: req.ticket,
    requestedAt: req.requestedAt,
  };
  slot.state = 'leased';
  slot.lease = lease;
  slot.branch = branch;
  slot.readyAt = null;
  slot.owner = null;
  slot.error = null;
  if (req.identity) draft.identities[req.identity] = slot.id;
  return lease;
}

export function ticketRequest(t: Ticket): GrantRequest {
  return {
    agent: t.agent,
    task: t.task,
    slug: t.slug,
    priority: t.priority,
    ttlMs: t.ttlMs,
    holder: t.holder,
    identity: t.identity,
    claimer: t.waiter,
    ticket: t.id,
    requestedAt: t.enqueuedAt,
  };
}

/**
 * Hands ready slots to queued waiters, best ticket first, so fairness does not depend on
 * which waiter polls first. The waiter finds its grant (lease.ticket) and claims it.
 */
export function dispatch(
  draft: PoolState,
  plan: Plan,
  branchFor: (slot: string, slug: string) => string,
  pathOf: (id: string) => string,
  f: Facts,
): void {
  draft.queue.sort(byPriority);
  while (draft.queue.length && roomForLease(draft, f)) {
    const head = draft.queue[0]!;
    const slot = pickReady(draft, head.identity, plan, pathOf, f);
    if (!slot) return;
    draft.queue.shift();
    const lease = grant(draft, slot, ticketRequest(head), branchFor, f);
    plan.granted.push({ slot: slot.id, lease });
  }
}

/** The slot granted to a ticket, if any. */
export function findGrant(s: PoolState, ticket: number, pid = process.pid): SlotRecord | undefined {
  return Object.values(s.slots).find(
    (x) => x.state === 'leased' && x.lease?.ticket === ticket && x.lease.claimer.pid === pid,
  );
}

/** Where a ticket stands in the queue (1 = next), and how many wait; null when not queued. */
export function queuePosition(
  s: PoolState,
  ticket: number,
): { position: number; waiting: number } | null {
  const i = [...s.queue].sort(byPriority).findIndex((t) => t.id === ticket);
  return i < 0 ? null : { position: i + 1, waiting: s.queue.length };
}

/** Marks a slot ready (publishing the result of slow work). */
export function markReady(slot: SlotRecord, now: number): void {
  slot.state = 'ready';
  slot.lease = null;
  slot.branch = null;
  slot.owner = null;
  slot.error = null;
  slot.errorCode = null;
  slot.errorExit = null;
  slot.failures = 0;
  slot.retryAt = null;
  slot.readyAt = new Date(now).toISOString();
}
