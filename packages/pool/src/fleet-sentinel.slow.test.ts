/**
 * A fleet whose lease store and band are behind Redis Sentinel (docs/fleet.md "Redis
 * Sentinel"): real primary, replica and three sentinels (testkit), real CLI processes. The
 * primary is SIGKILLed once the replica has everything; after the sentinels promote the
 * replica, the same config reaches it: the lease taken before is still there (released with
 * its token) and a new host acquires. Build first (`pnpm -s build`).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisCli, startSentinelTopology, type SentinelTopology } from '@wtpool/testkit';
import { makeFleet, until, type Fleet, type Host } from './fleet.testutil.js';
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

describe(
  'fleet through Redis Sentinel, lease writes acknowledged by the replica',
  { timeout: 600_000 },
  () => {
    it('hosts racing acquires while the primary is SIGKILLed: 0 double grants, 0 token reuse, every refused grant a clean exit 6', async () => {
      const t = await startSentinelTopology({ conf: ['databases 16'] });
      let f: Fleet | undefined;
      let stop = false;
      let afterPromotion = false;
      let racing: Promise<void>[] = [];
      try {
        f = await makeFleet({
          hosts: 2,
          storeUrl: `${t.url}/0`,
          hostTtl: '2m',
          scale: '  min: 2\n  max: 2\n  step: 1',
          store: '  replicas: 1\n  replicaTimeout: 500ms',
        });
        for (const h of f.hosts) expect((await h.pool(['init', '--json'])).code).toBe(0);
        type Outcome = {
          host: string;
          code: number;
          error?: string;
          token?: number;
          slot?: string;
          message?: string;
          /** The acquire or release started after the sentinels named the promoted replica. */
          promoted?: boolean;
        };
        const outcomes: Outcome[] = [];
        const doubles: string[] = [];
        // Each racer: acquire; take the slot (an exclusive marker file in its worktree: a second
        // holder of the same slot at the same time cannot create it); give it back; again.
        const racer = async (h: Host, r: number) => {
          for (let i = 0; !stop; i++) {
            const promoted = afterPromotion;
            const a = await h.pool([
              'acquire',
              `${h.id}-r${r}-${i}`,
              'race',
              '--json',
              '--no-wait',
            ]);
            const out: Outcome = { host: h.id, code: a.code, promoted };
            if (a.code !== 0) {
              const e = a.json<{ error: { code: string; message: string } }>().error;
              out.error = e.code;
              out.message = e.message;
              outcomes.push(out);
              continue;
            }
            const l = a.json<AcquireResult>();
            Object.assign(out, { token: l.token, slot: l.slot });
            outcomes.push(out);
            const marker = path.join(l.path, 'holder.marker');
            try {
              await fs.writeFile(marker, `${l.token}\n`, { flag: 'wx' });
            } catch {
              doubles.push(
                `${h.id}/${l.slot} token ${l.token}: ${await fs.readFile(marker, 'utf8')}`,
              );
              continue;
            }
            // The holder releases until the store says it is done (0) or no longer its to
            // release (4: being released, 5: over): a release refused with exit 6 may have been
            // applied, in part, without the replica's acknowledgement.
            for (;;) {
              const relPromoted = afterPromotion;
              const rel = await h.pool([
                'release',
                l.slot,
                l.agent,
                '--force',
                '--token',
                String(l.token),
              ]);
              if ([0, 4, 5].includes(rel.code)) break;
              outcomes.push({
                host: h.id,
                code: rel.code,
                error: 'release',
                message: rel.stderr,
                promoted: relPromoted,
              });
              // Stopped (the test ends, or failed while no replica acknowledges): no more tries.
              if (stop) break;
            }
          }
        };
        racing = f.hosts.flatMap((h) => [0, 1].map((r) => racer(h, r)));
        await until(
          'grants before the failover',
          () => outcomes.filter((o) => o.code === 0).length >= 6,
        );
        await until('the replica caught up', () => {
          const p = offset(t.primary.port, 'master_repl_offset');
          return p !== undefined && offset(t.replica.port, 'slave_repl_offset') === p;
        });
        const before = outcomes.filter((o) => o.code === 0).length;
        await t.primary.kill('SIGKILL');
        await until('the replica promoted', () => t.masterPort() === t.replica.port, {
          attempts: 600,
          everyMs: 100,
        });
        afterPromotion = true;
        // The new primary has no replica yet: its writes cannot be acknowledged (exit 6), seen
        // by an acquire or release that started on it (not one that failed on the dead primary;
        // racers holding a slot are all releasing when the pool is full).
        await until('a write on the new primary refused for want of an acknowledgement', () =>
          outcomes.some((o) => o.promoted && o.code === 6 && /acknowledged/.test(o.message ?? '')),
        );
        // The old primary comes back as the new primary's replica. REPLICAOF is what the
        // sentinels send it, but only after 8 s of it claiming the master role (and an INFO
        // period): the test sends it itself, as an operator restarting the node would.
        await t.primary.start();
        redisCli(t.primary.port, 'REPLICAOF', '127.0.0.1', String(t.replica.port));
        await until(
          'the old primary replicating the new one',
          () => /master_link_status:up/.test(redisCli(t.primary.port, 'INFO', 'replication')),
          { attempts: 600, everyMs: 100 },
        );
        const atRejoin = outcomes.filter((o) => o.code === 0).length;
        await until(
          'grants after the failover',
          () => outcomes.filter((o) => o.code === 0).length >= atRejoin + 6,
        );
        stop = true;
        await Promise.all(racing);
        racing = [];

        expect(doubles).toEqual([]);
        const granted = outcomes.filter((o) => o.code === 0);
        expect(granted.length).toBeGreaterThan(before);
        // No token twice, on any host, across the failover.
        const tokens = granted.map((o) => o.token);
        expect(new Set(tokens).size).toBe(tokens.length);
        // Every refusal is a clean one: unavailable (6) or no free slot (75), never a crash.
        for (const o of outcomes.filter((x) => x.code !== 0)) {
          expect([6, 75], JSON.stringify(o)).toContain(o.code);
          if (o.error !== 'release')
            expect(o.error).toBe(o.code === 6 ? 'ERR_SERVICE_UNAVAILABLE' : 'ERR_POOL_FULL');
        }
        expect(outcomes.some((o) => o.code === 6)).toBe(true); // the failover was seen
      } finally {
        stop = true;
        await Promise.allSettled(racing);
        await f?.cleanup();
        await t.stop();
      }
    });
  },
);
