/**
 * Runs the suite that imports this on the Redis lease store: a real redis-server of the file,
 * `store.backend: redis` appended to each test repository's config (WTPOOL_TEST_STORE_YAML, read
 * by pool.test.ts and cli.slow.test.ts), an empty Redis before each test (the temp repos of one
 * second can share a root commit, hence the key prefix they would share).
 */
import { afterAll, beforeAll, beforeEach } from 'vitest';
import { startRedis, type RedisServer } from '@wtpool/testkit';
import { redisCommand } from '@wtpool/services';

export function onRedisStore(): void {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedis({ databases: 16 });
    process.env.WTPOOL_TEST_STORE_YAML = `store:\n  backend: redis\n  url: ${redis.url}/0\n`;
  });
  afterAll(async () => {
    delete process.env.WTPOOL_TEST_STORE_YAML;
    await redis.stop();
  });
  beforeEach(async () => {
    await redisCommand(redis.url, 'FLUSHALL');
  });
}
