/**
 * A fleet whose lease store and band are behind Redis Sentinel (docs/fleet.md "Redis
 * Sentinel"): real primary, replica and three sentinels (testkit), real CLI processes. The
 * primary is SIGKILLed once the replica has everything; after the sentinels promote the
 * replica, the same config reaches it: the lease taken before is still there (released with
 * its token) and a new host acquires. Build first (`pnpm -s build`).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisCli, startSentinelTopology, type SentinelTopology } from '@wtpool/testkit';
import { makeFleet, until, type Fleet } from './fleet.testutil.js';
import type { AcquireResult } from './types.js';

let topo: SentinelTopology;
let fleet: Fleet | undefined;
beforeAll(async () => {
  topo = await startSentinelTopology({ conf: ['databases 16'] });
}, 120_000);
afterAll(async () => {
  await fleet?.cleanup();
  await topo?.stop();
});

const offset = (port: number, field: string): number | undefined => {
  const m = new RegExp(`^${field}:(\\d+)`, 'm').exec(redisCli(port, 'INFO', 'replication'));
  return m ? Number(m[1]) : undefined;
};

describe('fleet through Redis Sentinel', { timeout: 300_000 }, () => {
  it('keeps its leases across a failover and goes on granting on the promoted replica', async () => {
    fleet = await makeFleet({
      hosts: 2,
      storeUrl: `${topo.url}/0`,
      redisUrl: topo.url,
      hostTtl: '2m',
      scale: '  min: 1\n  max: 2\n  step: 1',
    });
    const [a, b] = fleet.hosts as [(typeof fleet.hosts)[0], (typeof fleet.hosts)[0]];
    expect((await a.pool(['init', '--json'])).code).toBe(0);
    const first = await a.pool(['acquire', 'a-hold', 'before', '--json']);
    expect(first.code, first.stderr).toBe(0);
    const lease = first.json<AcquireResult>();
    expect(lease.env.REDIS_URL).toMatch(new RegExp(`^redis\\+sentinel://.*/${topo.master}/\\d+$`));

    // Everything the primary acknowledged has reached the replica (asynchronous replication:
    // without this a failover may lose the last writes, docs/fleet.md).
    await until('the replica caught up', () => {
      const p = offset(topo.primary.port, 'master_repl_offset');
      return p !== undefined && offset(topo.replica.port, 'slave_repl_offset') === p;
    });
    await topo.primary.kill('SIGKILL');
    await until('the replica promoted', () => topo.masterPort() === topo.replica.port, {
      attempts: 600,
      everyMs: 100,
    });

    const init = await until('host b reaching the new primary', async () => {
      const r = await b.pool(['init', '--json']);
      return r.code === 0 ? r : undefined;
    });
    expect(init.code).toBe(0);
    const second = await b.pool(['acquire', 'b-hold', 'after', '--json']);
    expect(second.code, second.stderr).toBe(0);
    expect(second.json<{ host: string }>().host).toBe(b.id);
    // The lease of before the failover is on the new primary, with its token.
    const rel = await a.pool(['release', lease.slot, 'a-hold']);
    expect(rel.code, rel.stderr).toBe(0);
    expect(redisCli(topo.replica.port, 'ROLE').split('\n')[0]).toBe('master');
  });
});
