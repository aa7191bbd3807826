import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startRedis, tempDir, type RedisServer } from '@wtpool/testkit';
import { loadConfig } from '@wtpool/config';
import { createProviders, leaseSlot, provisionRedis, redisCapacity, releaseSlot } from './index.js';
import { redisCommand, redisInfo, redisPipeline } from './resp.js';
import { fixture, runWorker, type Fixture } from './fixtures.testutil.js';

describe('Redis elastic band (own redis-server, databases 64)', () => {
  let redis: RedisServer;
  let f: Fixture;
  beforeAll(async () => {
    redis = await startRedis({ databases: 64 });
    f = await fixture({
      redis: {
        url: redis.url,
        confFile: redis.confFile,
        restartCommand: redis.restartCommand,
      },
    });
  });
  afterAll(async () => {
    await f?.cleanup();
    await redis?.stop();
  });

  it('21 concurrent leases (real processes) grow 20 → 30 without a restart; releases shrink back to 20', async () => {
    const runId = await redisInfo(redis.url, 'run_id');
    const events = path.join(tempDir(), 'events.jsonl');
    writeFileSync(events, '');
    const slots = Array.from({ length: 21 }, (_, i) => i + 1);
    const leased = await Promise.all(
      slots.map((n) => runWorker(['lease', f.repo.dir, String(n), events])),
    );
    for (const r of leased) expect(r.stderr).toBe('');
    const indexes = leased.map((r) => Number(JSON.parse(r.stdout).REDIS_DB));
    // Lowest free first: exactly 1…21, no index twice.
    expect([...indexes].sort((a, b) => a - b)).toEqual(slots);
    const log = readFileSync(events, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(log.filter((e) => e.type === 'band-grow')).toEqual([
      expect.objectContaining({ from: 20, to: 30 }),
    ]);
    expect(await redisCapacity(f.loaded)).toEqual({
      floor: 20,
      step: 10,
      current: 30,
      used: 21,
      free: 9,
      physical_max: 64,
    });
    expect(await redisInfo(redis.url, 'run_id')).toBe(runId);

    // Keys written during the lease are gone after release.
    const env1 = JSON.parse(leased[0]!.stdout) as Record<string, string>;
    await redisPipeline(env1.REDIS_URL!, [['SET', 'k', 'v']]);
    const [, before] = await redisPipeline(redis.url, [['SELECT', env1.REDIS_DB!], ['DBSIZE']]);
    expect(before).toBe(1);
    const released = await Promise.all(
      slots.map((n) => runWorker(['release', f.repo.dir, String(n), events])),
    );
    for (const r of released) expect(r.code).toBe(0);
    const [, size] = await redisPipeline(redis.url, [['SELECT', env1.REDIS_DB!], ['DBSIZE']]);
    expect(size).toBe(0);
    const after = readFileSync(events, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(after.filter((e) => e.type === 'band-shrink')).toEqual([
      expect.objectContaining({ from: 30, to: 20 }),
    ]);
    expect(await redisCapacity(f.loaded)).toMatchObject({ current: 20, used: 0, free: 20 });
    expect(await redisInfo(redis.url, 'run_id')).toBe(runId);
  });

  it('a lease past the physical ceiling fails with exit 7 and guidance; nothing half-allocated', async () => {
    const providers = await createProviders(f.loaded);
    // bandStart 1 and databases 64: 63 allocatable DBs.
    for (let n = 1; n <= 63; n++) await leaseSlot(providers, f.ctx(n), lease);
    expect(await redisCapacity(f.loaded)).toMatchObject({ current: 63, used: 63, free: 0 });
    const err = await leaseSlot(providers, f.ctx(64), lease).catch((e: unknown) => e);
    expect(err).toMatchObject({ exitCode: 7, code: 'ERR_CAPACITY' });
    expect((err as { hint: string }).hint).toMatch(/pool scale --provision/);
    expect((err as { hint: string }).hint).toMatch(/monitor cleanup-leaks/);
    for (let n = 1; n <= 63; n++) await releaseSlot(providers, f.ctx(n));
    expect(await redisCapacity(f.loaded)).toMatchObject({ current: 20, used: 0 });
  });

  it('provision --target 128 restarts exactly once; running it again does not restart', async () => {
    const run0 = await redisInfo(redis.url, 'run_id');
    const refused = await provisionRedis(f.loaded, { target: 128, interactive: false }).catch(
      (e: unknown) => e,
    );
    expect(refused).toMatchObject({ exitCode: 2 });
    const questions: string[] = [];
    const declined = await provisionRedis(f.loaded, {
      target: 128,
      interactive: true,
      confirm: async (q) => (questions.push(q), false),
    }).catch((e: unknown) => e);
    expect(declined).toMatchObject({ code: 'ERR_ABORTED' });
    expect(questions[0]).toMatch(/restarts Redis .* once .*64 → 128/);
    expect(readFileSync(redis.confFile, 'utf8')).toMatch(/^databases 64$/m);
    expect(await redisInfo(redis.url, 'run_id')).toBe(run0);

    const first = await provisionRedis(f.loaded, { target: 128, yes: true });
    expect(first).toMatchObject({ before: 64, after: 128, restarted: true });
    const run1 = await redisInfo(redis.url, 'run_id');
    expect(run1).not.toBe(run0);
    expect(await redisCommand(redis.url, 'CONFIG', 'GET', 'databases')).toEqual([
      'databases',
      '128',
    ]);
    expect(readFileSync(redis.confFile, 'utf8')).toMatch(/^databases 128$/m);

    const again = await provisionRedis(f.loaded, { target: 128, yes: true });
    expect(again).toMatchObject({ before: 128, after: 128, restarted: false });
    expect(await redisInfo(redis.url, 'run_id')).toBe(run1);
    expect(await redisCapacity(f.loaded)).toMatchObject({ physical_max: 128 });
  });

  it('Redis down: lease fails with exit 6 and allocates nothing', async () => {
    const dead = await fixture({ redis: { url: 'redis://127.0.0.1:1' } });
    try {
      const providers = await createProviders(dead.loaded);
      const err = await leaseSlot(providers, dead.ctx(1), lease).catch((e: unknown) => e);
      expect(err).toMatchObject({ exitCode: 6 });
      const capacity = await redisCapacity(loadConfig({ repo: dead.repo.dir }));
      expect(capacity).toMatchObject({ used: 0 });
    } finally {
      await dead.cleanup();
    }
  });
});

const lease = { agent: 'a', task: 't', token: 1 };

describe('Redis with a password', () => {
  it('redacts the password in the exit-6 message', async () => {
    const url = inject('redisUrl')
      .replace('redis://', 'redis://user:s3cret@')
      .replace(/:\d+$/, ':1');
    const err = await redisPipeline(url, [['PING']]).catch((e: unknown) => e);
    expect(err).toMatchObject({ exitCode: 6 });
    expect(String((err as Error).message)).not.toContain('s3cret');
  });
});
