/**
 * The CLI races of cli.slow.test.ts (real processes), run again with `store.backend: redis` on a real
 * redis-server of this file (the LeaseStore contract on its second backend). Each test starts
 * from an empty Redis (the temp repos of one second can share a root commit, hence a key prefix).
 */
import { afterAll, beforeAll, beforeEach } from 'vitest';
import { startRedis, type RedisServer } from '@wtpool/testkit';
import { redisCommand } from '@wtpool/services';

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

await import('./cli.slow.test.js');
