/**
 * Redis: memory, clients, the physical number of logical DBs and which of them hold keys.
 * ioredis is imported lazily.
 */
import { redact } from '@wtpool/core';

export interface RedisSnapshot {
  usedMemory: number;
  /** maxmemory, 0 = no limit. */
  maxMemory: number;
  clients: number;
  /** Physical number of logical DBs (`CONFIG GET databases`). */
  databases: number;
  /** Keys per non-empty DB index. */
  keys: Record<number, number>;
}

type RedisClient = import('ioredis').Redis;

export async function redisConnect(url: string): Promise<RedisClient> {
  const { Redis } = await import('ioredis');
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: 3000,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (e) {
    client.disconnect();
    throw new Error(`Redis at ${redact(url)} is unreachable: ${(e as Error).message}`);
  }
  return client;
}

/** `field:value` lines of an INFO section. */
export function parseInfo(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0 && !line.startsWith('#')) m.set(line.slice(0, i), line.slice(i + 1));
  }
  return m;
}

export async function redisSnapshot(client: RedisClient): Promise<RedisSnapshot> {
  const [mem, clients, keyspace, dbs] = await Promise.all([
    client.info('memory'),
    client.info('clients'),
    client.info('keyspace'),
    client.config('GET', 'databases') as Promise<string[]>,
  ]);
  const m = parseInfo(mem);
  const keys: Record<number, number> = {};
  for (const [k, v] of parseInfo(keyspace)) {
    const db = /^db(\d+)$/.exec(k);
    const n = /keys=(\d+)/.exec(v);
    if (db && n && Number(n[1]) > 0) keys[Number(db[1])] = Number(n[1]);
  }
  return {
    usedMemory: Number(m.get('used_memory') ?? 0),
    maxMemory: Number(m.get('maxmemory') ?? 0),
    clients: Number(parseInfo(clients).get('connected_clients') ?? 0),
    databases: Number(dbs[1] ?? 16),
    keys,
  };
}

export async function withRedis<T>(url: string, fn: (c: RedisClient) => Promise<T>): Promise<T> {
  const client = await redisConnect(url);
  try {
    return await fn(client);
  } finally {
    client.disconnect();
  }
}
