/**
 * Decisions taken inside the registry lock. These functions only change the draft state and
 * return a plan of slow work (git, providers) that the caller runs OUTSIDE the lock.
 */
import type { Config } from '@wtpool/config';
import { HOST, procAlive, procRef } from './proc.js';
import { worktreeExists } from './worktree.js';
import type { Lease, PoolState, ProcRef, SlotRecord, Ticket } from './types.js';

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
 * Why a lease is over, or null while it is alive: heartbeat older than the TTL, holder process
 * dead (pid + start time, this host), or the grant was never claimed and its claimer died.
 */
export function leaseOver(
  lease: Lease,
  storedToken: () => number | null,
  now: number,
): string | null {
  if (now - Date.parse(lease.heartbeatAt) > lease.ttlMs) return 'expired';
  if (lease.holder && !procAlive(lease.holder)) return 'holder-dead';
  // No lease record with this token: the claim never completed.
  if (!procAlive(lease.claimer)) return storedToken() === lease.token ? null : 'abandoned';
  return null;
}

export function ticketAlive(t: Ticket): boolean {
  return procAlive(t.waiter);
}

export interface SweepOptions {
  now: number;
  /** The token of the slot's stored lease record (LeaseStore.leaseToken). */
  leaseToken: (slot: string) => number | null;
}

const me = () => procRef();

/**
 * Housekeeping every transaction does: drop dead waiters' tickets, take over expired or
 * abandoned leases and slots whose worker died.
 */
export function sweep(draft: PoolState, o: SweepOptions, plan: Plan = emptyPlan()): Plan {
  const owner = me();
  draft.queue = draft.queue.filter((t) => {
    if (ticketAlive(t)) return true;
    plan.dropped.push(t);
    return false;
  });
  for (const slot of slotList(draft)) {
    if (slot.state === 'leased' && slot.lease) {
      const reason = leaseOver(slot.lease, () => o.leaseToken(slot.id), o.now);
      if (reason) {
        slot.state = 'releasing';
        slot.owner = owner;
        plan.reclaim.push({ slot, lease: slot.lease, reason });
      }
    } else if (slot.owner && !procAlive(slot.owner)) {
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

/** Reserves `scale.step` new slots (up to max, counting provisioning ones) while waiters outnumber them. */
export function reserveGrowth(
  draft: PoolState,
  config: Config,
  pathOf: (n: number) => string,
  now: number,
  plan: Plan,
  force = false,
): void {
  const c = counts(draft);
  if (!force && draft.queue.length <= c.provisioning) return;
  const add = Math.min(config.scale.step, config.scale.max - c.size);
  for (let i = 0; i < add; i++) {
    const slot = newSlot(draft, pathOf, now, me());
    plan.provision.push(slot);
    plan.grown.push(slot.id);
  }
}

/** Retires idle ready slots above `scale.min` (all ready ones above min when `idleMs` is 0), at most `limit`. */
export function retireIdle(
  draft: PoolState,
  config: Config,
  idleMs: number,
  now: number,
  plan: Plan,
  limit = Infinity,
): void {
  if (draft.queue.length) return;
  let excess = Math.min(counts(draft).size - config.scale.min, limit);
  const idle = slotList(draft)
    .filter((s) => s.state === 'ready' && s.readyAt && now - Date.parse(s.readyAt) >= idleMs)
    .reverse();
  for (const s of idle) {
    if (excess-- <= 0) break;
    s.state = 'retiring';
    s.owner = me();
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

/** Marks a slot broken after slow work on it failed, scheduling its next retry. */
export function markBroken(
  slot: SlotRecord,
  error: string,
  code: string | null,
  now: number,
): void {
  slot.state = 'broken';
  slot.error = error;
  slot.errorCode = code;
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
export function reviveBroken(draft: PoolState, plan: Plan, now: number, want: number): void {
  for (const s of slotList(draft)) {
    if (want <= 0) return;
    if (!retryDue(s, now)) continue;
    s.state = 'provisioning';
    s.owner = me();
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
): SlotRecord | undefined {
  const preferred = identity ? draft.slots[draft.identities[identity] ?? ''] : undefined;
  const candidates = slotList(draft).filter((s) => s.state === 'ready');
  if (preferred?.state === 'ready') candidates.unshift(preferred);
  for (const s of candidates) {
    const where = pathOf(s.id);
    if (s.path === where && worktreeExists(where)) return s;
    // Missing (deleted, pruned) or moved (pool.root changed): re-provision where it belongs.
    s.state = 'provisioning';
    s.owner = me();
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
  now: number,
): Lease {
  const token = ++draft.lastToken;
  let branch = branchFor(slot.id, req.slug);
  if (takenBranches(draft).has(branch)) branch = branchFor(slot.id, `${req.slug}-${token}`);
  const at = new Date(now).toISOString();
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
    expiresAt: new Date(now + req.ttlMs).toISOString(),
    host: HOST,
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
  now: number,
): void {
  draft.queue.sort(byPriority);
  while (draft.queue.length) {
    const head = draft.queue[0]!;
    const slot = pickReady(draft, head.identity, plan, pathOf);
    if (!slot) return;
    draft.queue.shift();
    const lease = grant(draft, slot, ticketRequest(head), branchFor, now);
    plan.granted.push({ slot: slot.id, lease });
  }
}

/** The slot granted to a ticket, if any. */
export function findGrant(s: PoolState, ticket: number, pid = process.pid): SlotRecord | undefined {
  return Object.values(s.slots).find(
    (x) => x.state === 'leased' && x.lease?.ticket === ticket && x.lease.claimer.pid === pid,
  );
}

/** Marks a slot ready (publishing the result of slow work). */
export function markReady(slot: SlotRecord, now: number): void {
  slot.state = 'ready';
  slot.lease = null;
  slot.branch = null;
  slot.owner = null;
  slot.error = null;
  slot.errorCode = null;
  slot.failures = 0;
  slot.retryAt = null;
  slot.readyAt = new Date(now).toISOString();
}
