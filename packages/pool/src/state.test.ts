/**
 * The pool's state machine (state.ts) as pure functions: random histories of requests,
 * releases, crashes, failures, growth and shrinking, driven with an injected clock and an
 * injected liveness (no processes, no files, no sleeps), checked against the invariants the
 * pool promises (issue #11).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  brokenRetryDelay,
  byPriority,
  counts,
  dispatch,
  emptyPlan,
  growthStopped,
  initialState,
  leaseOver,
  markBroken,
  markReady,
  newSlot,
  reserveGrowth,
  retireIdle,
  reviveBroken,
  slotList,
  sweep,
  type Facts,
  type Plan,
} from './state.js';
import type { Lease, PoolState, ProcRef, Ticket } from './types.js';

const HOST = 'test-host';

function ok(cond: boolean, message: string): void {
  if (!cond) throw new Error(message);
}
const proc = (pid: number): ProcRef => ({ pid, start: pid * 10, host: HOST });
const ME = proc(1);

/** A world the state machine can only see through Facts: a clock, live pids, lease records. */
class World {
  now = Date.parse('2026-01-01T00:00:00Z');
  live = new Set<number>([ME.pid]);
  leaseRecords = new Map<string, number>();
  missingWorktrees = new Set<string>();
  facts(): Facts {
    return {
      now: this.now,
      alive: (p) => this.live.has(p.pid),
      leaseToken: (s) => this.leaseRecords.get(s) ?? null,
      worktreeExists: (p) => !this.missingWorktrees.has(p),
      me: ME,
      host: HOST,
    };
  }
}

const pathOf = (n: number) => `/pool/wt-${n}`;
const pathOfId = (id: string) => `/pool/${id}`;
const branchFor = (slot: string, slug: string) => `pool/${slot}/${slug}`;

function ticket(s: PoolState, w: World, pid: number, priority: number, ttlMs: number): Ticket {
  return {
    id: s.nextTicket++,
    agent: `a${pid}`,
    task: `t${pid}`,
    slug: `t${pid}`,
    priority,
    enqueuedAt: new Date(w.now).toISOString(),
    waiter: proc(pid),
    holder: proc(pid),
    ttlMs,
    identity: null,
  };
}

type Op =
  | { k: 'request'; priority: number; ttl: number }
  | { k: 'release'; i: number }
  | { k: 'claim'; i: number }
  | { k: 'kill'; i: number }
  | { k: 'tick'; ms: number }
  | { k: 'fail'; i: number; exit: number }
  | { k: 'provisioned'; i: number }
  | { k: 'heartbeat'; i: number }
  | { k: 'shrink'; idle: number }
  | { k: 'lose-worktree'; i: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      k: fc.constant('request' as const),
      priority: fc.integer({ min: 0, max: 4 }),
      ttl: fc.integer({ min: 1_000, max: 120_000 }),
    }),
  },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('release' as const), i: fc.nat(20) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('claim' as const), i: fc.nat(20) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('kill' as const), i: fc.nat(40) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant('tick' as const),
      ms: fc.integer({ min: 0, max: 30_000 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant('fail' as const),
      i: fc.nat(20),
      exit: fc.constantFrom(1, 1, 3, 6),
    }),
  },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('provisioned' as const), i: fc.nat(20) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('heartbeat' as const), i: fc.nat(20) }) },
  {
    weight: 1,
    arbitrary: fc.record({ k: fc.constant('shrink' as const), idle: fc.constantFrom(0, 60_000) }),
  },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('lose-worktree' as const), i: fc.nat(20) }) },
);

const scaleArb = fc
  .record({ min: fc.integer({ min: 0, max: 4 }), extra: fc.integer({ min: 1, max: 5 }) })
  .chain(({ min, extra }) =>
    fc.record({
      min: fc.constant(min),
      max: fc.constant(min + extra),
      step: fc.integer({ min: 1, max: 3 }),
      idleShrinkAfter: fc.constant(60_000),
    }),
  );

interface History {
  /** Every grant, in order: the ticket it served and the tickets still waiting then. */
  grants: { lease: Lease; waiting: Ticket[] }[];
  /** Broken-slot delays seen, per slot, while it stayed broken. */
  backoff: Map<string, number[]>;
}

/**
 * Runs a history of operations the way context.ts `tx` composes the functions: sweep, the
 * operation, growth, dispatch; slow work (provisioning, reclaims, retirements) completes when
 * a later operation says so, like the plan runner outside the lock.
 */
function run(
  scale: { min: number; max: number; step: number; idleShrinkAfter: number },
  ops: Op[],
) {
  const w = new World();
  const s = initialState();
  const config = { scale };
  const h: History = { grants: [], backoff: new Map() };
  let nextPid = 100;
  const pids: number[] = [];
  for (let n = 0; n < scale.min; n++) markReady(newSlot(s, pathOf, w.now, ME), w.now);
  const check = (plan: Plan) => {
    // Invariants after every transaction (plain checks: this runs thousands of times).
    const c = counts(s);
    ok(c.size <= scale.max, `size ${c.size} above max ${scale.max}`);
    const tokens = slotList(s).flatMap((x) => (x.lease ? [x.lease.token] : []));
    ok(new Set(tokens).size === tokens.length, 'one token on two slots');
    for (const x of slotList(s)) {
      if (x.state === 'leased') ok(x.lease !== null, `${x.id} leased without a lease`);
      if (x.state === 'ready') ok(x.lease === null, `${x.id} ready with a lease`);
    }
    const ids = new Set(s.queue.map((t) => t.id));
    for (const x of slotList(s))
      if (x.lease?.ticket != null) ok(!ids.has(x.lease.ticket), 'a granted ticket still queued');
    // A dead waiter never holds a ticket, and never gets a grant.
    for (const t of s.queue) ok(w.live.has(t.waiter.pid), `dead waiter ${t.waiter.pid} queued`);
    for (const g of plan.granted) ok(w.live.has(g.lease.claimer.pid), 'granted to a dead waiter');
  };
  const tx = (fn: (plan: Plan, f: Facts) => void, grow = true) => {
    const f = w.facts();
    const plan = sweep(s, f);
    // Reclaims complete (the slot is reset) and dead workers' provisioning restarts at once here.
    fn(plan, f);
    if (grow) reserveGrowth(s, config, pathOf, f, plan);
    let waiting = [...s.queue];
    dispatch(s, plan, branchFor, pathOfId, f);
    // In grant order: when a ticket is served, the ones served after it are still waiting.
    for (const g of plan.granted) {
      waiting = waiting.filter((t) => t.id !== g.lease.ticket);
      h.grants.push({ lease: g.lease, waiting });
    }
    for (const r of plan.reclaim) {
      w.leaseRecords.delete(r.slot.id);
      if (s.slots[r.slot.id]?.state === 'releasing') markReady(s.slots[r.slot.id]!, f.now);
    }
    check(plan);
    return plan;
  };
  const leased = () => slotList(s).filter((x) => x.state === 'leased');
  const pick = <T>(xs: T[], i: number) => (xs.length ? xs[i % xs.length] : undefined);

  for (const op of ops) {
    switch (op.k) {
      case 'request': {
        const pid = nextPid++;
        w.live.add(pid);
        pids.push(pid);
        tx(() => s.queue.push(ticket(s, w, pid, op.priority, op.ttl)));
        break;
      }
      case 'claim': {
        const x = pick(leased(), op.i);
        if (x?.lease) w.leaseRecords.set(x.id, x.lease.token);
        break;
      }
      case 'release': {
        const x = pick(leased(), op.i);
        if (x) {
          w.leaseRecords.delete(x.id);
          tx((_p, f) => markReady(s.slots[x.id]!, f.now));
        }
        break;
      }
      case 'heartbeat': {
        const x = pick(leased(), op.i);
        if (x?.lease)
          tx((_p, f) => {
            const l = s.slots[x.id]!.lease!;
            l.heartbeatAt = new Date(f.now).toISOString();
          });
        break;
      }
      case 'kill': {
        const pid = pick(pids, op.i);
        if (pid !== undefined) w.live.delete(pid);
        tx(() => {});
        break;
      }
      case 'tick':
        w.now += op.ms;
        tx(() => {});
        break;
      case 'fail': {
        const x = pick(
          slotList(s).filter((y) => y.state === 'provisioning' || y.state === 'broken'),
          op.i,
        );
        if (!x) break;
        tx((_p, f) => {
          const y = s.slots[x.id]!;
          markBroken(y, 'setup failed', 'ERR_DEPS', f.now, op.exit);
          const list = h.backoff.get(y.id) ?? [];
          list.push(Date.parse(y.retryAt!) - f.now);
          h.backoff.set(y.id, list);
        }, false);
        // Waiters then retry broken slots that are due (as an unmet acquire would).
        tx((p, f) => reviveBroken(s, p, f, s.queue.length - counts(s).ready));
        break;
      }
      case 'provisioned': {
        const x = pick(
          slotList(s).filter((y) => y.state === 'provisioning'),
          op.i,
        );
        if (x) {
          h.backoff.delete(x.id);
          tx((_p, f) => markReady(s.slots[x.id]!, f.now));
        }
        break;
      }
      case 'shrink': {
        const before = counts(s).size;
        const plan = tx((p, f) => retireIdle(s, config, op.idle, f, p), false);
        const after = before - plan.retire.length;
        // Never below min through a shrink (when it started at or above min).
        ok(before < scale.min || after >= scale.min, `shrunk to ${after}, below min ${scale.min}`);
        for (const r of plan.retire) delete s.slots[r.id];
        break;
      }
      case 'lose-worktree': {
        const x = pick(
          slotList(s).filter((y) => y.state === 'ready'),
          op.i,
        );
        if (x) w.missingWorktrees.add(x.path);
        break;
      }
    }
  }
  return { s, w, h };
}

describe('state machine (fast-check, injected clock and liveness)', () => {
  it('never grants a slot twice, a ticket twice, or a token twice', () => {
    fc.assert(
      fc.property(scaleArb, fc.array(opArb, { minLength: 30, maxLength: 100 }), (scale, ops) => {
        const { h } = run(scale, ops);
        const tickets = h.grants.map((g) => g.lease.ticket);
        expect(new Set(tickets).size).toBe(tickets.length);
        const tokens = h.grants.map((g) => g.lease.token);
        expect(new Set(tokens).size).toBe(tokens.length);
      }),
      { numRuns: 150 },
    );
  });

  it('grants in priority order, then first come first served', () => {
    fc.assert(
      fc.property(scaleArb, fc.array(opArb, { minLength: 30, maxLength: 100 }), (scale, ops) => {
        const { h } = run(scale, ops);
        for (const g of h.grants) {
          const mine = { priority: g.lease.priority, id: g.lease.ticket! } as Ticket;
          // Nobody left waiting had a better place in the queue than the ticket served.
          for (const t of g.waiting) expect(byPriority(mine, t)).toBeLessThan(0);
        }
      }),
      { numRuns: 150 },
    );
  });

  it('keeps the size within max, and a shrink never goes below min', () => {
    // The size and shrink invariants are asserted inside run() after every transaction.
    fc.assert(
      fc.property(scaleArb, fc.array(opArb, { minLength: 30, maxLength: 100 }), (scale, ops) => {
        const { s } = run(scale, ops);
        expect(counts(s).size).toBeLessThanOrEqual(scale.max);
      }),
      { numRuns: 150 },
    );
  });

  it("a broken slot's backoff never shrinks while it stays broken", () => {
    fc.assert(
      fc.property(scaleArb, fc.array(opArb, { minLength: 30, maxLength: 100 }), (scale, ops) => {
        const { h } = run(scale, ops);
        for (const delays of h.backoff.values())
          for (let i = 1; i < delays.length; i++)
            expect(delays[i]!).toBeGreaterThanOrEqual(delays[i - 1]!);
      }),
      { numRuns: 150 },
    );
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 60 }), (n) => {
        expect(brokenRetryDelay(n + 1)).toBeGreaterThanOrEqual(brokenRetryDelay(n));
        expect(brokenRetryDelay(n)).toBeLessThanOrEqual(5 * 60_000);
      }),
    );
  });

  it('drops the ticket of a dead waiter and never grants to it', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ priority: fc.integer({ min: 0, max: 4 }), dead: fc.boolean() }), {
          minLength: 1,
          maxLength: 12,
        }),
        fc.integer({ min: 0, max: 6 }),
        (waiters, ready) => {
          const w = new World();
          const s = initialState();
          for (let n = 0; n < ready; n++) markReady(newSlot(s, pathOf, w.now, ME), w.now);
          waiters.forEach((x, i) => {
            const pid = 100 + i;
            if (!x.dead) w.live.add(pid);
            s.queue.push(ticket(s, w, pid, x.priority, 60_000));
          });
          const f = w.facts();
          const plan = sweep(s, f);
          dispatch(s, plan, branchFor, pathOfId, f);
          const dead = new Set(waiters.flatMap((x, i) => (x.dead ? [100 + i] : [])));
          expect(plan.dropped.map((t) => t.waiter.pid).sort()).toEqual([...dead].sort());
          for (const t of s.queue) expect(dead.has(t.waiter.pid)).toBe(false);
          for (const g of plan.granted) expect(dead.has(g.lease.claimer.pid)).toBe(false);
          const live = waiters.length - dead.size;
          expect(plan.granted).toHaveLength(Math.min(live, ready));
        },
      ),
      { numRuns: 150 },
    );
  });
});

describe('leases and the injected clock (no sleeps)', () => {
  const lease = (w: World, ttlMs: number): Lease => ({
    slot: 'wt-1',
    agent: 'a',
    task: 't',
    slug: 't',
    branch: 'pool/wt-1/t',
    priority: 2,
    token: 7,
    acquiredAt: new Date(w.now).toISOString(),
    heartbeatAt: new Date(w.now).toISOString(),
    ttlMs,
    expiresAt: new Date(w.now + ttlMs).toISOString(),
    host: HOST,
    holder: proc(50),
    claimer: proc(50),
    identity: null,
    ticket: null,
    requestedAt: new Date(w.now).toISOString(),
  });

  it('expires exactly when the heartbeat is older than the TTL', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1000, max: 3_600_000 }),
        fc.integer({ min: 0, max: 7_200_000 }),
        (ttl, age) => {
          const w = new World();
          w.live.add(50);
          w.leaseRecords.set('wt-1', 7);
          const l = lease(w, ttl);
          w.now += age;
          expect(leaseOver(l, w.facts())).toBe(age > ttl ? 'expired' : null);
        },
      ),
    );
  });

  it('a dead holder ends the lease at once; a grant never claimed by a dead claimer is abandoned', () => {
    const w = new World();
    w.live.add(50);
    const l = lease(w, 60_000);
    expect(leaseOver(l, w.facts())).toBeNull(); // claimer alive, record not written yet
    w.live.delete(50);
    expect(leaseOver({ ...l, holder: null }, w.facts())).toBe('abandoned');
    w.leaseRecords.set('wt-1', 7);
    expect(leaseOver({ ...l, holder: null }, w.facts())).toBeNull(); // claimed: TTL decides
    expect(leaseOver(l, w.facts())).toBe('holder-dead');
  });

  it('a sweep takes back an expired lease, then the next waiter gets the slot', () => {
    const w = new World();
    const s = initialState();
    const slot = newSlot(s, pathOf, w.now, ME);
    markReady(slot, w.now);
    w.live.add(50).add(51);
    s.queue.push(ticket(s, w, 50, 2, 30_000));
    let plan = emptyPlan();
    dispatch(s, plan, branchFor, pathOfId, w.facts());
    expect(plan.granted).toHaveLength(1);
    w.leaseRecords.set(slot.id, plan.granted[0]!.lease.token);
    s.queue.push(ticket(s, w, 51, 2, 30_000));
    w.now += 30_000; // exactly the TTL: still alive
    expect(sweep(s, w.facts()).reclaim).toEqual([]);
    w.now += 1;
    plan = sweep(s, w.facts());
    expect(plan.reclaim.map((r) => [r.slot.id, r.reason])).toEqual([[slot.id, 'expired']]);
    expect(s.slots[slot.id]!.state).toBe('releasing');
    markReady(s.slots[slot.id]!, w.now);
    dispatch(s, plan, branchFor, pathOfId, w.facts());
    expect(plan.granted.map((g) => g.lease.claimer.pid)).toEqual([51]);
  });
});

describe('growth and broken slots', () => {
  const scale = { min: 0, max: 8, step: 2, idleShrinkAfter: 60_000 };
  function poolWith(states: ('ready' | 'broken' | 'leased')[], exit = 1) {
    const w = new World();
    const s = initialState();
    for (const st of states) {
      const x = newSlot(s, pathOf, w.now, ME);
      markReady(x, w.now);
      if (st === 'broken') markBroken(x, 'setup command failed (exit 1)', 'ERR_DEPS', w.now, exit);
      if (st === 'leased') x.state = 'leased';
    }
    w.live.add(60);
    s.queue.push(ticket(s, w, 60, 2, 60_000));
    return { s, w };
  }

  it('grows for waiters while at most half of the slots are broken', () => {
    const { s, w } = poolWith(['leased', 'leased', 'broken', 'leased']);
    expect(growthStopped(s)).toBeNull();
    const plan = emptyPlan();
    reserveGrowth(s, { scale }, pathOf, w.facts(), plan);
    expect(plan.grown).toEqual(['wt-5', 'wt-6']);
  });

  it('stops growing when more than half are broken, and says why and what to run', () => {
    const { s, w } = poolWith(['leased', 'broken', 'broken', 'broken']);
    const stopped = growthStopped(s);
    expect(stopped?.reason).toMatch(
      /^3 of 4 slots are broken \(wt-2, wt-3, wt-4; wt-2: setup command failed/,
    );
    expect(stopped?.fix).toMatch(/pool doctor --fix/);
    const plan = emptyPlan();
    reserveGrowth(s, { scale }, pathOf, w.facts(), plan);
    expect(plan.grown).toEqual([]);
    expect(counts(s).size).toBe(4);
    // An explicit scale out / init still may (force).
    reserveGrowth(s, { scale }, pathOf, w.facts(), plan, true);
    expect(plan.grown).toEqual(['wt-5', 'wt-6']);
  });

  it('never grows because of a slot broken by a configuration error (exit 3)', () => {
    const { s, w } = poolWith(['leased', 'leased', 'leased', 'broken'], 3);
    expect(growthStopped(s)?.reason).toMatch(/^wt-4 is broken by a configuration error/);
    const plan = emptyPlan();
    reserveGrowth(s, { scale }, pathOf, w.facts(), plan);
    expect(plan.grown).toEqual([]);
  });

  it('a ready slot whose worktree vanished is re-provisioned, not granted', () => {
    const w = new World();
    const s = initialState();
    markReady(newSlot(s, pathOf, w.now, ME), w.now);
    markReady(newSlot(s, pathOf, w.now, ME), w.now);
    w.missingWorktrees.add('/pool/wt-1');
    w.live.add(70);
    s.queue.push(ticket(s, w, 70, 2, 60_000));
    const plan = emptyPlan();
    dispatch(s, plan, branchFor, pathOfId, w.facts());
    expect(plan.provision.map((x) => x.id)).toEqual(['wt-1']);
    expect(plan.granted.map((g) => g.slot)).toEqual(['wt-2']);
  });
});
