/**
 * Leak detection and cleanup across a fleet (store.backend redis; fleet-leaks.ts): two hosts
 * (clones with their own `fleet.host`, state dir and CLI processes) on one real redis-server
 * and one real PostgreSQL. Databases and Redis DBs whose slot no longer exists on its host are
 * found from either host and cleaned from the other; once a host is lost, everything it held
 * is found and cleaned from the live one, while the live host's own leases keep their data.
 * `pool scale --provision` on one host records the Redis ceiling in the shared fleet band.
 * Build first (`pnpm -s build`): this spawns the pool and monitor bins.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadConfig } from '@wtpool/config';
import { readFleetView, type AcquireResult } from '@wtpool/pool';
import { bandFor, redisPipeline } from '@wtpool/services';
import { PROJECT_ROOT, runCli, startRedis, until, type RedisServer } from '@wtpool/testkit';
import { makeFleet, type Fleet, type Host } from '../../pool/src/fleet.testutil.js';
import type { CleanupResult } from './cleanup.js';
import type { LeakReport } from './leaks.js';
import { withPg } from './postgres.js';

const MONITOR = path.join(PROJECT_ROOT, 'packages/monitor/bin/monitor.js');
const monitor = (h: Host, args: string[]) =>
  runCli(MONITOR, [...args, '--repo', h.dir], { cwd: h.dir });

describe('fleet leaks: found and cleaned across hosts (real Redis, PostgreSQL, processes)', () => {
  let redis: RedisServer;
  let fleet: Fleet;
  let h1: Host;
  let h2: Host;
  let l1: AcquireResult;
  let l2: AcquireResult;
  const pgUrl = inject('pgUrl');
  const databases = () =>
    withPg(pgUrl, async (c) =>
      (await c.query<{ datname: string }>('SELECT datname FROM pg_database')).rows.map(
        (r) => r.datname,
      ),
    );
  const keysIn = async (index: number) =>
    Number((await redisPipeline(`${redis.url}/${index}`, [['DBSIZE']]))[0]);
  const dbIndex = (l: AcquireResult) => Number(new URL(l.env.REDIS_URL!).pathname.slice(1));

  beforeAll(async () => {
    redis = await startRedis({ databases: 32 });
    fleet = await makeFleet({
      hosts: 2,
      storeUrl: `${redis.url}/0`,
      redisUrl: redis.url,
      pgUrl,
      hostTtl: '4s',
      scale: '  min: 1\n  max: 1\n  step: 1',
    });
    [h1, h2] = fleet.hosts as [Host, Host];
    for (const h of fleet.hosts) {
      const r = await h.pool(['init', '--json']);
      expect(r.code, r.stderr).toBe(0);
    }
    const acquire = async (h: Host) => {
      const r = await h.pool(['acquire', `agent-${h.id}`, 'work', '--json']);
      expect(r.code, r.stderr).toBe(0);
      return r.json<AcquireResult>();
    };
    [l1, l2] = [await acquire(h1), await acquire(h2)];
    // Each agent's data in its Redis DB.
    for (const l of [l1, l2]) await redisPipeline(l.env.REDIS_URL!, [['SET', 'agent-data', '1']]);
  }, 300_000);

  afterAll(async () => {
    const left = (await databases()).filter((d) => d.startsWith(`${fleet.dbPrefix}_`));
    await withPg(pgUrl, async (c) => {
      for (const d of left) {
        await c.query(`ALTER DATABASE "${d}" IS_TEMPLATE false`);
        await c.query(`DROP DATABASE IF EXISTS "${d}" WITH (FORCE)`);
      }
    });
    await fleet?.cleanup();
    await redis?.stop();
  });

  it("slots gone from their host: found from host-1, cleaned from host-2; live leases' data kept", async () => {
    const p = fleet.dbPrefix;
    // Names written out by hand (host ids' `-` becomes `_`), not by the naming function.
    const gone2 = `${p}_host_2_wt9`;
    const gone1 = `${p}_host_1_wt9`;
    const stranger = `${p}_host_9_wt1`; // a host this fleet never knew: never judged
    await withPg(pgUrl, async (c) => {
      for (const d of [gone2, gone1, stranger]) await c.query(`CREATE DATABASE "${d}"`);
    });
    // DB 15 allocated in the fleet band to a slot host-2 does not have; DB 20 unallocated.
    const loaded2 = loadConfig({ repo: h2.dir });
    await bandFor(loaded2.config, loaded2.repo).update((d) => {
      d.alloc['15'] = 'host-2/wt-7';
    });
    for (const i of [15, 20]) await redisPipeline(`${redis.url}/${i}`, [['SET', 'stray', '1']]);
    expect([dbIndex(l1), dbIndex(l2)]).not.toContain(15);

    const r = await monitor(h1, ['detect-leaks', '--json']);
    expect(r.code, r.stderr).toBe(20);
    const report = r.json<LeakReport>();
    expect(report.skipped).toEqual([]);
    const ids = (kind: string) =>
      report.leaks
        .filter((l) => l.kind === kind)
        .map((l) => l.id)
        .sort();
    expect(ids('orphan-db')).toEqual([gone1, gone2].sort());
    expect(ids('orphan-redis-db')).toEqual(['15', '20']);
    expect(report.leaks.find((l) => l.id === gone2)?.evidence).toMatchObject({
      host: 'host-2',
      hostState: 'live',
      slot: 'wt-9',
    });

    // Cleaned from the other host: fleet-wide, each one re-checked before it is removed.
    const c = await monitor(h2, ['cleanup-leaks', '--yes', '--json']);
    expect(c.code, c.stderr).toBe(0);
    const actions = c.json<CleanupResult>().actions;
    expect(actions.filter((a) => !a.ok)).toEqual([]);
    expect(
      actions
        .filter((a) => a.kind === 'orphan-db' || a.kind === 'orphan-redis-db')
        .map((a) => a.id)
        .sort(),
    ).toEqual(['15', '20', gone1, gone2].sort());
    const after = await databases();
    expect(after).not.toContain(gone1);
    expect(after).not.toContain(gone2);
    expect(after).toContain(stranger);
    for (const l of [l1, l2])
      expect(after).toContain(new URL(l.env.DATABASE_URL!).pathname.slice(1));
    expect(await keysIn(15)).toBe(0);
    expect(await keysIn(20)).toBe(0);
    expect((await bandFor(loaded2.config, loaded2.repo).read()).alloc['15']).toBeUndefined();
    // The leases' own data is untouched.
    for (const l of [l1, l2]) expect(await keysIn(dbIndex(l))).toBe(1);
    const again = await monitor(h1, ['detect-leaks', '--json']);
    expect(again.json<LeakReport>().leaks.filter((l) => l.kind.startsWith('orphan-'))).toEqual([]);
  }, 180_000);

  it('`pool scale --provision` on one host records the ceiling in the band every host reads', async () => {
    const loaded1 = loadConfig({ repo: h1.dir });
    const band = bandFor(loaded1.config, loaded1.repo);
    await band.update((d) => {
      d.physical = 7; // a stale ceiling, as if Redis had been restarted with fewer DBs
    });
    // Redis has 32 ≥ 16: nothing to raise, no restart; the ceiling read is recorded.
    const r = await h2.pool(['scale', '--provision', '--target', '16', '--yes', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json<{ restarted: boolean; after: number }>()).toMatchObject({
      restarted: false,
      after: 32,
    });
    expect((await band.read()).physical).toBe(32);
  }, 60_000);

  it("a lost host: everything it held is found and cleaned from the live host, the live host's lease kept", async () => {
    const p = fleet.dbPrefix;
    const of2 = (names: string[]) => names.filter((d) => d.startsWith(`${p}_host_2_`));
    // host-2's slot database and its template exist before it goes silent.
    expect(of2(await databases()).length).toBeGreaterThanOrEqual(2);
    // host-2 runs nothing from now on; host-1's monitor keeps host-1 alive while it looks.
    const loaded1 = loadConfig({ repo: h1.dir });
    await until(
      'host-2 silent past hostTtl',
      async () =>
        (await readFleetView(loaded1)).hosts.find((x) => x.id === 'host-2')?.state === 'lost',
      { everyMs: 250, attempts: 480 },
    );
    // A database host-2 made for a slot it no longer has (the reclaim only knows its registry).
    const extra = `${p}_host_2_wt5`;
    await withPg(pgUrl, (c) => c.query(`CREATE DATABASE "${extra}"`));
    // Silent but not marked lost yet (no pool command ran on host-1): detection leaves its
    // services alone, since an unmarked host that returns would not rebuild them.
    const silent = (await monitor(h1, ['detect-leaks', '--json'])).json<LeakReport>();
    expect(silent.leaks.filter((l) => l.evidence.host === 'host-2')).toEqual([]);
    const before = of2(await databases());
    expect(before.length).toBeGreaterThanOrEqual(2); // its slot database and its template
    const bandBefore = await bandFor(loaded1.config, loaded1.repo).read();
    expect(Object.values(bandBefore.alloc)).toContain(`host-2/${l2.slot}`);

    // cleanup-leaks runs the pool's reclaim first (marks host-2 lost, drops its slot
    // databases, flushes its Redis DBs), then removes what the reclaim leaves: its template.
    const c = await monitor(h1, ['cleanup-leaks', '--yes', '--json']);
    expect(c.code, c.stderr).toBe(0);
    const actions = c.json<CleanupResult>().actions;
    expect(actions.filter((a) => !a.ok)).toEqual([]);
    const template = before.find((d) => d.startsWith(`${p}_host_2_tpl_`))!;
    expect(actions.map((a) => a.id)).toContain(template);
    expect(actions.map((a) => a.id)).toContain(extra);
    expect(of2(await databases())).toEqual([]);
    const view = await readFleetView(loaded1);
    expect(view.hosts.map((x) => [x.id, x.state, x.lostAt !== null])).toEqual([
      ['host-1', 'live', false],
      ['host-2', 'lost', true],
    ]);
    const bandAfter = await bandFor(loaded1.config, loaded1.repo).read();
    expect(Object.values(bandAfter.alloc).filter((o) => o.startsWith('host-2/'))).toEqual([]);
    expect(await keysIn(dbIndex(l2))).toBe(0);
    const after = (await monitor(h1, ['detect-leaks', '--json'])).json<LeakReport>();
    expect(after.leaks.filter((l) => l.kind.startsWith('orphan-'))).toEqual([]);
    // host-1's lease: its database and its Redis data stay.
    expect(await databases()).toContain(new URL(l1.env.DATABASE_URL!).pathname.slice(1));
    expect(await keysIn(dbIndex(l1))).toBe(1);
    // host-2's worktree lives on host-2: no other host removes it (its own doctor rescues it).
    expect(existsSync(path.join(l2.path, '.git'))).toBe(true);
  }, 180_000);
});
