/**
 * The LeaseStore contract on the Redis backend, store against store (real redis-server of this
 * file): whole versions, compare-and-set transactions, one fencing counter across hosts,
 * create-if-absent and token-checked lease records, pub/sub wake-ups, exit 6 when unreachable.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '@wtpool/config';
import { makeTempRepo, startRedis, until, type RedisServer, type TempRepo } from '@wtpool/testkit';
import { RedisLeaseStore } from './redis-lease-store.js';
import type { LeaseFile } from './types.js';
import { promises as fs } from 'node:fs';
import path from 'node:path';

let redis: RedisServer;
const repos: TempRepo[] = [];
beforeAll(async () => {
  redis = await startRedis({ databases: 4 });
});
afterAll(async () => {
  await redis.stop();
});
afterEach(async () => {
  await Promise.all(repos.splice(0).map((r) => r.cleanup()));
});

/** A store of host `host` on a fresh repository (or on `repo`, another host's clone). */
async function storeOf(host: string, repo?: TempRepo, url = `${redis.url}/1`) {
  if (!repo) {
    repo = await makeTempRepo({ files: { 'README.md': randomBytes(8).toString('hex') } });
    repos.push(repo);
  }
  await fs.writeFile(
    path.join(repo.dir, 'pool.config.yaml'),
    `store:\n  backend: redis\n  url: ${url}\nfleet:\n  host: ${host}\n`,
  );
  return { repo, store: new RedisLeaseStore(loadConfig({ repo: repo.dir })) };
}

const lease = (slot: string, token: number, agent = 'a'): LeaseFile => ({
  slot,
  agent,
  task: 't',
  branch: `pool/${slot}/t`,
  token,
  acquiredAt: new Date(0).toISOString(),
  host: 'h',
  holderPid: null,
});

describe('RedisLeaseStore', () => {
  it('commits concurrent read-modify-writes one at a time (compare-and-set by version)', async () => {
    const { repo, store } = await storeOf('h1');
    const others = [store, new RedisLeaseStore(loadConfig({ repo: repo.dir }))];
    await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        others[i % 2]!.transact((d) => {
          d.nextTicket++;
        }),
      ),
    );
    const v = await store.readVersioned();
    expect(v.data.nextTicket).toBe(31);
    expect(v.version).toBe(30);
    // fn throws: nothing is written.
    await expect(
      store.transact(() => {
        throw new Error('no');
      }),
    ).rejects.toThrow('no');
    expect((await store.readVersioned()).version).toBe(30);
  });

  it('hands out fencing tokens from one counter across hosts: never the same token twice', async () => {
    const { repo, store: a } = await storeOf('h-a');
    // Host b: a clone of the same repository (same root commit, so the same fleet).
    const clone = path.join(repo.sandbox, 'b');
    await repo.git(['clone', '-q', repo.dir, clone], repo.sandbox);
    const { store: b } = await storeOf('h-b', { ...repo, dir: clone });
    expect(b.keys.fleet).toBe(a.keys.fleet);
    expect(b.keys.host).not.toBe(a.keys.host);
    const tokens = await Promise.all(
      Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).transact((d) => ++d.lastToken)),
    );
    expect(new Set(tokens).size).toBe(40);
    expect(Math.max(...tokens) - Math.min(...tokens)).toBe(39);
  });

  it('creates a lease record once, replaces/removes it only with its token, moves a foreign one aside', async () => {
    const { repo, store } = await storeOf('h1');
    const stores = Array.from(
      { length: 10 },
      () => new RedisLeaseStore(loadConfig({ repo: repo.dir })),
    );
    const won = await Promise.all(stores.map((s, i) => s.createLease(lease('wt-1', 100 + i))));
    expect(won.filter(Boolean)).toHaveLength(1);
    const winner = 100 + won.indexOf(true);
    expect((await store.readLease('wt-1'))?.token).toBe(winner);
    expect(await store.replaceLease(lease('wt-1', winner + 1000, 'x'))).toBe(false);
    expect(await store.replaceLease(lease('wt-1', winner, 'b'))).toBe(true);
    expect((await store.readLease('wt-1'))?.agent).toBe('b');
    await store.removeLease('wt-1', winner + 1);
    expect((await store.readLease('wt-1'))?.token).toBe(winner);
    // The local lease file mirrors the record (a restarted Redis is re-filled from it).
    const local = JSON.parse(
      await fs.readFile(path.join(repo.dir, '.git/wtpool/leases/wt-1.json'), 'utf8'),
    );
    expect(local).toMatchObject({ token: winner, agent: 'b' });
    await store.read(); // leaseToken answers from the records read with the registry
    expect(store.leaseToken('wt-1')).toBe(winner);
    await store.moveAsideLease('wt-1', 'foreign');
    expect(await store.readLease('wt-1')).toBeUndefined();
    expect(await store.createLease(lease('wt-1', 7))).toBe(true);
    await store.removeLease('wt-1', 7);
    expect(await store.readLease('wt-1')).toBeUndefined();
  });

  it('wakes a watcher on a commit by another process (pub/sub)', async () => {
    const { repo, store } = await storeOf('h1');
    const other = new RedisLeaseStore(loadConfig({ repo: repo.dir }));
    let calls = 0;
    const stop = store.watch(() => {
      calls++;
    });
    try {
      // Commit until the subscription is live (the first commits may precede SUBSCRIBE).
      await until(
        'the subscription delivered a commit',
        async () => {
          await other.transact((d) => void d.nextTicket++);
          return calls > 0;
        },
        { attempts: 200 },
      );
      expect(calls).toBeGreaterThan(0);
    } finally {
      stop();
    }
  });

  it('exits 6 when Redis is unreachable, and writes nothing', async () => {
    const { store, repo } = await storeOf('h1');
    await store.transact((d) => void (d.nextTicket = 5));
    const dead = await storeOf('h1', repo, 'redis://127.0.0.1:1/1');
    for (const call of [
      () => dead.store.read(),
      () => dead.store.transact((d) => void (d.nextTicket = 99)),
      () => dead.store.createLease(lease('wt-2', 1)),
    ]) {
      await expect(call()).rejects.toMatchObject({ exitCode: 6, code: 'ERR_SERVICE_UNAVAILABLE' });
    }
    const again = new RedisLeaseStore(loadConfig({ repo: (await storeOf('h1', repo)).repo.dir }));
    expect((await again.read()).nextTicket).toBe(5);
    expect(await again.readLease('wt-2')).toBeUndefined();
  });
});
