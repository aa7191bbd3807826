/**
 * The fleet's PostgreSQL connection budget (docs/fleet.md): held across hosts at acquire, with
 * real processes on two hosts sharing the suite's redis-server and PostgreSQL. Build first
 * (`pnpm -s build`): these spawn packages/pool/bin/pool.js.
 */
import { afterEach, describe, expect, inject, it } from 'vitest';
import { dropDatabase, withAdmin } from '@wtpool/services';
import { makeFleet, until, type Fleet, type Host } from './fleet.testutil.js';
import type { FleetStatus } from './fleet.js';
import type { AcquireResult } from './types.js';

const fleets: Fleet[] = [];
afterEach(async () => {
  for (const f of fleets.splice(0)) {
    await withAdmin(inject('pgUrl'), async (c) => {
      const r = await c.query<{ datname: string }>(
        'SELECT datname FROM pg_database WHERE datname LIKE $1',
        [`${f.dbPrefix}%`],
      );
      for (const { datname } of r.rows) await dropDatabase(c, datname);
    });
    await f.cleanup();
  }
});

describe('fleet: one PostgreSQL connection budget', { timeout: 600_000 }, () => {
  it('two hosts, a budget of 2 leases: the third acquire waits (the reason given) and is granted when a lease on the other host ends', async () => {
    const fleet = await makeFleet({
      hosts: 2,
      storeUrl: `${inject('redisUrl')}/0`,
      pgUrl: inject('pgUrl'),
      hostTtl: '2m',
      scale: '  min: 2\n  max: 2\n  step: 1',
      postgres: '  connectionLimit: 3\n  connectionBudget: 7',
    });
    fleets.push(fleet);
    const [a, b] = fleet.hosts as [Host, Host];
    for (const h of fleet.hosts) expect((await h.pool(['init'])).code).toBe(0);
    // 7 connections at 3 per lease: room for 2 leases in the whole fleet, 4 slots ready.
    const first = await a.pool(['acquire', 'a1', 'x', '--json']);
    expect(first.code, first.stderr).toBe(0);
    const held = first.json<AcquireResult>();
    const second = await b.pool(['acquire', 'b1', 'x', '--json']);
    expect(second.code, second.stderr).toBe(0);
    const st = (await a.pool(['status', '--fleet', '--json'])).json<FleetStatus>();
    expect(st.capacity.ready).toBe(2);
    expect(st.capacity.connectionBudget).toEqual({ used: 6, budget: 7 });
    // No room on either host, though each has a ready slot.
    for (const h of [a, b]) {
      const r = await h.pool(['acquire', `${h.id}-now`, 'x', '--json', '--no-wait']);
      expect(r.code).toBe(75);
      expect(r.stdout).toMatch(/connection budget is in use \(6 of 7 connections/);
    }
    const waiter = b.pool(['acquire', 'b2', 'y', '--json', '--timeout', '5m']);
    let done = false;
    void waiter.then(() => (done = true));
    await until('b2 queued on host b', async () => {
      const s = (await b.pool(['status', '--json'])).json<{ queue: { agent: string }[] }>();
      return s.queue.some((t) => t.agent === 'b2');
    });
    // Still waiting after a look of each host (an acquire and a status run a transaction).
    expect((await a.pool(['acquire', 'a-probe', 'x', '--no-wait'])).code).toBe(75);
    expect(done).toBe(false);
    // A lease on host a ends: its connections go back to the budget; b's waiter gets one.
    expect((await a.pool(['release', held.slot, 'a1'])).code).toBe(0);
    const got = await waiter;
    expect(got.code, got.stderr).toBe(0);
    expect(got.json<AcquireResult & { host: string }>()).toMatchObject({ agent: 'b2', host: b.id });
    const after = (await a.pool(['status', '--fleet', '--json'])).json<FleetStatus>();
    expect(after.capacity.leased).toBe(2);
    expect(after.capacity.connectionBudget).toEqual({ used: 6, budget: 7 });
  });

  it('2 hosts × 4 racing acquires, room for 3 leases in the budget: exactly 3 granted, none over it', async () => {
    const fleet = await makeFleet({
      hosts: 2,
      storeUrl: `${inject('redisUrl')}/0`,
      pgUrl: inject('pgUrl'),
      hostTtl: '2m',
      scale: '  min: 4\n  max: 4\n  step: 1',
      postgres: '  connectionLimit: 2\n  connectionBudget: 7',
    });
    fleets.push(fleet);
    for (const h of fleet.hosts) expect((await h.pool(['init'])).code).toBe(0);
    const racers = fleet.hosts.flatMap((h) =>
      [0, 1, 2, 3].map((i) => h.pool(['acquire', `${h.id}-r${i}`, 'x', '--json', '--no-wait'])),
    );
    const codes = (await Promise.all(racers)).map((r) => r.code);
    expect(codes.filter((c) => c === 0)).toHaveLength(3);
    expect(codes.filter((c) => c === 75)).toHaveLength(5);
    const st = (await fleet.hosts[0]!.pool(['status', '--fleet', '--json'])).json<FleetStatus>();
    expect(st.capacity.leased).toBe(3);
    expect(st.capacity.connectionBudget).toEqual({ used: 6, budget: 7 });
  });
});
