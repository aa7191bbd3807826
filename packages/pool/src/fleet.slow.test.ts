/**
 * One pool over several machines (docs/fleet.md), with real processes: hosts are clones of one
 * origin with distinct `fleet.host` ids, sharing one real redis-server (lease store and band)
 * and one real PostgreSQL. Build first (`pnpm -s build`): these spawn packages/pool/bin/pool.js.
 */
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { dropDatabase, redisCommand, withAdmin } from '@wtpool/services';
import { startRedis, type RedisServer } from '@wtpool/testkit';
import { BIN, makeFleet, until, type Fleet, type Host } from './fleet.testutil.js';
import type { FleetStatus } from './fleet.js';
import type { AcquireResult } from './types.js';
import { readEnvFile } from './envfile.js';

let redis: RedisServer;
const fleets: Fleet[] = [];
beforeAll(async () => {
  redis = await startRedis({ databases: 64 });
});
afterAll(async () => {
  await redis.stop();
});
afterEach(async () => {
  await Promise.all(fleets.splice(0).map((f) => f.cleanup()));
});

/** The fleet key prefix of a host's repository (its root commit, as fleetKeys names it). */
async function fleetKeysOf(h: Host): Promise<string> {
  const { fleetRepoId } = await import('@wtpool/config');
  return `wtpool:${fleetRepoId({ worktree: h.dir, commonDir: `${h.dir}/.git`, mainRoot: h.dir, stateDir: `${h.dir}/.git/wtpool` })}`;
}

const dbOf = (env: Record<string, string>) => new URL(env.DATABASE_URL!).pathname.slice(1);

describe(
  'fleet: one pool over several hosts (real Redis, PostgreSQL, processes)',
  { timeout: 900_000 },
  () => {
    it('3 hosts × 8 racing acquirers: no double grant, no shared Redis DB, no shared database', async () => {
      const pgUrl = inject('pgUrl');
      const fleet = await makeFleet({
        hosts: 3,
        storeUrl: `${redis.url}/0`,
        redisUrl: redis.url,
        pgUrl,
        // No host is idle past this here (an idle host with no pool process is lost: docs/fleet.md).
        hostTtl: '2m',
        scale: '  min: 1\n  max: 2\n  step: 1',
      });
      fleets.push(fleet);
      for (const h of fleet.hosts) {
        const r = await h.pool(['init', '--json']);
        expect(r.code, r.stderr).toBe(0);
      }
      // Each racer holds its Redis DB for a moment and counts the holders in it: a DB index
      // handed to two leases at once (on any host) shows a count above 1.
      const log = path.join(fleet.origin.sandbox, 'holders.log');
      const job = [
        `n=$(redis-cli -u "$REDIS_URL" INCR holders)`,
        `echo "$n $REDIS_DB $DATABASE_NAME $WORKTREE_ID" >> ${log}`,
        'sleep 0.15',
        `redis-cli -u "$REDIS_URL" DECR holders >/dev/null`,
      ].join('; ');
      const runs = await Promise.all(
        fleet.hosts.flatMap((h) =>
          Array.from({ length: 8 }, (_, i) =>
            h.pool([
              'run',
              `${h.id}-a${i}`,
              `job ${i}`,
              '--json',
              '--timeout',
              '5m',
              '--',
              'sh',
              '-c',
              job,
            ]),
          ),
        ),
      );
      for (const r of runs) expect(r.code, r.stderr).toBe(0);
      const lines = (await fs.readFile(log, 'utf8')).trim().split('\n');
      expect(lines).toHaveLength(24);
      for (const l of lines) expect(l.split(' ')[0], l).toBe('1');
      // Database names carry the host: never the same name on two hosts.
      const byHost = new Map<string, Set<string>>();
      for (const l of lines) {
        const [, , db] = l.split(' ');
        const host = fleet.hosts.find((h) =>
          db!.startsWith(`${fleet.dbPrefix}_${h.id.replace('-', '_')}_`),
        );
        expect(host, db).toBeDefined();
        byHost.set(host!.id, (byHost.get(host!.id) ?? new Set()).add(db!));
      }
      expect(byHost.size).toBe(3);

      // Every slot of the fleet leased at once: 6 leases, 6 Redis DBs, 6 databases, all distinct.
      const leases: (AcquireResult & { host: string })[] = [];
      for (const h of fleet.hosts) {
        for (let i = 0; i < 2; i++) {
          const r = await h.pool(['acquire', `${h.id}-hold${i}`, 'hold', '--json']);
          expect(r.code, r.stderr).toBe(0);
          leases.push(r.json());
        }
      }
      expect(leases.map((l) => l.host).sort()).toEqual(
        fleet.hosts.flatMap((h) => [h.id, h.id]).sort(),
      );
      // From each host's env files.
      const envs = await Promise.all(leases.map((l) => readEnvFile(l.envFile)));
      const redisDbs = envs.map((e) => e.REDIS_DB);
      const dbs = envs.map(dbOf);
      expect(new Set(redisDbs).size).toBe(6);
      expect(new Set(dbs).size).toBe(6);
      // From the servers: the fleet band in Redis names 6 distinct owners on those indexes…
      const keys = (await redisCommand(`${redis.url}/0`, 'KEYS', 'wtpool:*:band')) as string[];
      expect(keys).toHaveLength(1);
      const band = JSON.parse(
        (await redisCommand(`${redis.url}/0`, 'HGET', keys[0]!, 'doc')) as string,
      ) as { alloc: Record<string, string> };
      expect(Object.keys(band.alloc).sort()).toEqual([...redisDbs].sort());
      const owners = leases.map((l) => `${l.host}/${l.slot}`).sort();
      expect(Object.values(band.alloc).sort()).toEqual(owners);
      // …and PostgreSQL holds each slot database once, named for its host.
      const pgNames = await withAdmin(pgUrl, async (c) =>
        (
          await c.query<{ datname: string }>(
            `SELECT datname FROM pg_database WHERE datname LIKE $1 AND datname NOT LIKE '%\\_tpl\\_%'`,
            [`${fleet.dbPrefix}\\_%`],
          )
        ).rows.map((r) => r.datname),
      );
      for (const db of dbs) expect(pgNames.filter((n) => n === db)).toHaveLength(1);
      // Tokens come from one fleet counter: unique across hosts.
      expect(new Set(leases.map((l) => l.token)).size).toBe(6);

      const fs1 = await fleet.hosts[0]!.pool(['status', '--fleet', '--json']);
      expect(fs1.code, fs1.stderr).toBe(0);
      const st = fs1.json<FleetStatus>();
      expect(st.hosts.map((h) => [h.id, h.state, h.slots.length])).toEqual(
        fleet.hosts.map((h) => [h.id, 'live', 2]),
      );
      expect(st.capacity).toMatchObject({ hosts: 3, live: 3, slots: 6, leased: 6, ready: 0 });
      for (const h of fleet.hosts) {
        for (let i = 0; i < 2; i++) {
          const l = leases.find((x) => x.host === h.id && x.agent === `${h.id}-hold${i}`)!;
          expect((await h.pool(['release', l.slot, l.agent])).code).toBe(0);
        }
      }
      await withAdmin(pgUrl, async (c) => {
        const r = await c.query<{ datname: string }>(
          'SELECT datname FROM pg_database WHERE datname LIKE $1',
          [`${fleet.dbPrefix}%`],
        );
        for (const { datname } of r.rows) await dropDatabase(c, datname);
      });
    });

    it('a host whose processes are all SIGKILLed is marked lost within hostTtl + hostTtl/3 + 3 s; another host reclaims its Redis DBs and databases', async () => {
      const pgUrl = inject('pgUrl');
      const fleet = await makeFleet({
        hosts: 2,
        storeUrl: `${redis.url}/0`,
        redisUrl: redis.url,
        pgUrl,
        hostTtl: '6s',
        scale: '  min: 1\n  max: 2\n  step: 1',
      });
      fleets.push(fleet);
      const [a, b] = fleet.hosts as [Host, Host];
      for (const h of fleet.hosts) expect((await h.pool(['init'])).code).toBe(0);
      // Host b: two agents working through `pool run` (each in its own process group), each
      // leaving a key in its Redis DB; --ttl 10s makes them heartbeat every 3.3 s.
      const marks = path.join(fleet.origin.sandbox, 'b-leases.log');
      const runners = [0, 1].map((i) =>
        spawn(
          process.execPath,
          [
            BIN,
            'run',
            `b-agent${i}`,
            `work ${i}`,
            '--ttl',
            '10s',
            '--repo',
            b.dir,
            '--',
            'sh',
            '-c',
            `redis-cli -u "$REDIS_URL" SET mark ${i} >/dev/null; echo "$REDIS_DB $DATABASE_NAME" >> ${marks}; sleep 600`,
          ],
          { cwd: b.dir, detached: true, stdio: 'ignore' },
        ),
      );
      const lines = await until('both b agents working', async () => {
        const t = await fs.readFile(marks, 'utf8').catch(() => '');
        const l = t.trim().split('\n').filter(Boolean);
        return l.length === 2 && l;
      });
      const bDbs = lines.map((l) => Number(l.split(' ')[0]));
      const bNames = lines.map((l) => l.split(' ')[1]!);
      // Host a: full, with one agent waiting (a live process of host a that keeps looking).
      expect((await a.pool(['acquire', 'a-hold', 'x', '--json'])).code).toBe(0);
      expect((await a.pool(['acquire', 'a-hold2', 'y', '--json'])).code).toBe(0);
      const waiter = a.pool(['acquire', 'a-wait', 'z', '--json', '--timeout', '5m']);
      // Every process of host b dies at once.
      for (const r of runners) process.kill(-r.pid!, 'SIGKILL');
      const k = await fleetKeysOf(a);
      const lost = await until(
        'host b marked lost and reclaimed',
        async () => {
          const v = (await redisCommand(`${redis.url}/0`, 'HGET', `${k}:lost`, b.id)) as
            string | null;
          const d = v
            ? (JSON.parse(v) as { at: number; seen: number; by: string; done: boolean })
            : null;
          return d?.done && d;
        },
        { attempts: 2400 },
      );
      expect(lost.by).toBe(a.id);
      // The bound (server times): hostTtl 6 s, plus a waiter's look every hostTtl/3 = 2 s, plus 3 s.
      expect(lost.at - lost.seen).toBeGreaterThan(6000);
      expect(lost.at - lost.seen).toBeLessThanOrEqual(6000 + 2000 + 3000);
      // Its Redis DBs were flushed and freed, its databases dropped, its leases expired.
      for (const db of bDbs) expect(await redisCommand(`${redis.url}/${db}`, 'DBSIZE')).toBe(0);
      const band = JSON.parse(
        (await redisCommand(`${redis.url}/0`, 'HGET', `${k}:band`, 'doc')) as string,
      ) as { alloc: Record<string, string> };
      expect(Object.values(band.alloc).filter((o) => o.startsWith(`${b.id}/`))).toEqual([]);
      expect(Object.values(band.alloc).filter((o) => o.startsWith(`${a.id}/`))).toHaveLength(2);
      const left = await withAdmin(pgUrl, async (c) =>
        (await c.query<{ datname: string }>('SELECT datname FROM pg_database')).rows.map(
          (r) => r.datname,
        ),
      );
      for (const n of bNames) expect(left).not.toContain(n);
      expect(await redisCommand(`${redis.url}/0`, 'HLEN', `${k}:h:${b.id}:leases`)).toBe(0);
      const st = (await a.pool(['status', '--fleet', '--json'])).json<FleetStatus>();
      const hb = st.hosts.find((h) => h.id === b.id)!;
      expect(hb.state).toBe('lost');
      expect(hb.slots.length).toBeGreaterThan(0);
      expect(hb.slots.every((s) => s.state === 'lost' && s.lease === null)).toBe(true);
      expect(st.hosts.find((h) => h.id === a.id)!.state).toBe('live');
      const human = await a.pool(['status', '--fleet']);
      expect(human.stdout).toMatch(new RegExp(`${b.id}\\s+lost`));
      // Host b comes back: its slots are re-provisioned with fresh services; its worktrees stayed.
      const back = await b.pool(['acquire', 'b-again', 'again', '--json']);
      expect(back.code, back.stderr).toBe(0);
      expect(back.json<{ host: string }>().host).toBe(b.id);
      const st2 = (await a.pool(['status', '--fleet', '--json'])).json<FleetStatus>();
      expect(st2.hosts.find((h) => h.id === b.id)!.state).toBe('live');
      expect((await a.pool(['release', 'wt-1', 'a-hold'])).code).toBe(0);
      expect((await waiter).code).toBe(0);
      await withAdmin(pgUrl, async (c) => {
        const r = await c.query<{ datname: string }>(
          'SELECT datname FROM pg_database WHERE datname LIKE $1',
          [`${fleet.dbPrefix}%`],
        );
        for (const { datname } of r.rows) await dropDatabase(c, datname);
      });
    });

    it('--any-host waiters with priorities 3, 0, 2, slots freed on three hosts: grants in order 0, 2, 3, each naming its host', async () => {
      const fleet = await makeFleet({
        hosts: 3,
        storeUrl: `${redis.url}/0`,
        hostTtl: '2m',
        scale: '  min: 1\n  max: 1\n  step: 1',
      });
      fleets.push(fleet);
      const [h1, h2, h3] = fleet.hosts as [Host, Host, Host];
      const holders = new Map<string, AcquireResult>();
      for (const h of fleet.hosts) {
        expect((await h.pool(['init'])).code).toBe(0);
        const r = await h.pool(['acquire', `${h.id}-holder`, 'busy', '--json']);
        expect(r.code, r.stderr).toBe(0);
        holders.set(h.id, r.json());
      }
      const k = await fleetKeysOf(h1);
      const queued = () => redisCommand(`${redis.url}/0`, 'ZCARD', `${k}:fq`);
      const served: string[] = [];
      const waiters = new Map<string, Promise<AcquireResult & { host: string }>>();
      for (const [i, p] of ['3', '0', '2'].entries()) {
        const agent = `p${p}`;
        waiters.set(
          agent,
          h1
            .pool([
              'acquire',
              agent,
              `task ${p}`,
              '--any-host',
              '--priority',
              p,
              '--json',
              '--timeout',
              '5m',
            ])
            .then((r) => {
              expect(r.code, r.stderr).toBe(0);
              served.push(agent);
              return r.json();
            }),
        );
        await until(`waiter ${agent} queued`, async () => (await queued()) === i + 1);
      }
      // Slots freed one at a time on host 2, host 3, then host 1.
      const order: [Host, string][] = [
        [h2, 'p0'],
        [h3, 'p2'],
        [h1, 'p3'],
      ];
      for (const [n, [h, next]] of order.entries()) {
        const held = holders.get(h.id)!;
        expect((await h.pool(['release', held.slot, held.agent])).code).toBe(0);
        const got = await waiters.get(next)!;
        expect(got).toMatchObject({ agent: next, host: h.id, slot: held.slot });
        expect(served).toEqual(order.slice(0, n + 1).map(([, a]) => a));
        expect(await queued()).toBe(2 - n);
        // The lease is on that host's pool, with a fleet-unique token.
        const st = (await h.pool(['status', '--json'])).json<{
          slots: { id: string; lease: { agent: string; token: number } | null }[];
        }>();
        expect(st.slots.find((s) => s.id === got.slot)!.lease).toMatchObject({
          agent: next,
          token: got.token,
        });
      }
      const human = await h2.pool(['acquire', 'late', 'x', '--any-host', '--no-wait']);
      expect(human.code).toBe(75);
    });
  },
);
