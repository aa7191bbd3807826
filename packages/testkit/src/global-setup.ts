/**
 * vitest globalSetup: one real redis-server and one real PostgreSQL for the whole run, on free
 * loopback ports, stopped afterwards. Tests read their URLs with `inject('redisUrl')` /
 * `inject('pgUrl')`. Tests that restart or stop a server start their own with startRedis() /
 * startPostgres().
 */
import { startPostgres, startRedis, type PostgresServer, type RedisServer } from './services.js';

interface Project {
  provide(key: string, value: unknown): void;
}

export default async function setup(project: Project): Promise<() => Promise<void>> {
  let redis: RedisServer | undefined;
  let pg: PostgresServer | undefined;
  try {
    [redis, pg] = await Promise.all([startRedis(), startPostgres()]);
  } catch (e) {
    await redis?.stop();
    await pg?.stop();
    throw e;
  }
  project.provide('redisUrl', redis.url);
  project.provide('pgUrl', pg.url);
  return async () => {
    await Promise.all([redis?.stop(), pg?.stop()]);
  };
}
