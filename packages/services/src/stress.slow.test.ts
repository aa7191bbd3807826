import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { tempDir } from '@wtpool/testkit';
import { redisCapacity } from './index.js';
import { fixture, runWorker, uniquePrefix, type Fixture } from './fixtures.testutil.js';

interface Line {
  op: 'got' | 'free' | 'state';
  slot: number;
  pid: number;
  redis?: string;
  db?: string;
  port?: string;
  keys?: number;
  rows?: number;
}

describe('8 processes × 25 random lease/release cycles (Redis + PostgreSQL + ports)', () => {
  let f: Fixture;
  beforeAll(async () => {
    // A band start no other test file uses, on the shared Redis.
    f = await fixture({
      postgres: {
        url: inject('pgUrl'),
        dbPrefix: uniquePrefix(),
        migrate:
          'psql -q -v ON_ERROR_STOP=1 "$DATABASE_URL" -c "CREATE TABLE items (id serial, who text)"',
      },
      redis: { url: inject('redisUrl'), bandStart: 1, floor: 4, step: 2 },
      ports: { base: 47000, stride: 5 },
    });
  });
  afterAll(async () => {
    await f?.cleanup();
  });

  it('no two live leases share a Redis index, a database or a port block; each lease starts pristine', async () => {
    const log = path.join(tempDir(), 'log.jsonl');
    writeFileSync(log, '');
    const workers = await Promise.all(
      Array.from({ length: 8 }, () => runWorker(['stress', f.repo.dir, '10', '25', log])),
    );
    for (const w of workers) expect(w.stderr).toBe('');
    const lines = readFileSync(log, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Line);
    // Lines are appended with O_APPEND, so the file order is the real order: a resource is
    // "got" after its allocation and "freed" before its deallocation.
    const live = {
      redis: new Map<string, number>(),
      db: new Map<string, number>(),
      port: new Map<string, number>(),
    };
    let maxLive = 0;
    for (const l of lines) {
      if (l.op === 'state') {
        expect(l, 'a lease began with leftovers of the previous one').toMatchObject({
          keys: 0,
          rows: 0,
        });
        continue;
      }
      for (const kind of ['redis', 'db', 'port'] as const) {
        const key = l[kind]!;
        expect(key).toBeTruthy();
        if (l.op === 'got') {
          expect(live[kind].get(key), `${kind} ${key} leased twice`).toBeUndefined();
          live[kind].set(key, l.pid);
        } else {
          expect(live[kind].get(key)).toBe(l.pid);
          live[kind].delete(key);
        }
      }
      maxLive = Math.max(maxLive, live.redis.size);
    }
    expect(lines.filter((l) => l.op === 'got')).toHaveLength(200);
    expect(live.redis.size).toBe(0);
    expect(maxLive).toBeGreaterThan(1); // the leases really overlapped
    // The band grew past its floor of 4 under load and shrank back.
    const events = readFileSync(log.replace(/\.jsonl$/, '.events.jsonl'), 'utf8');
    expect(events).toContain('band-grow');
    expect(await redisCapacity(f.loaded)).toMatchObject({ current: 4, used: 0 });
  });
});
