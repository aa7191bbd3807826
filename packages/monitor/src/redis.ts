/**
 * Redis: memory, clients, the physical number of logical DBs and which of them hold keys, in
 * one pipelined round trip over the services' socket-level client.
 */
import { serviceUnavailableError } from '@wtpool/core';
import { redisPipeline, RedisReplyError, type Reply } from '@wtpool/services';

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

/** `field:value` lines of an INFO section. */
export function parseInfo(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0 && !line.startsWith('#')) m.set(line.slice(0, i), line.slice(i + 1));
  }
  return m;
}

export async function redisSnapshot(url: string): Promise<RedisSnapshot> {
  const replies = await redisPipeline(url, [
    ['INFO', 'memory'],
    ['INFO', 'clients'],
    ['INFO', 'keyspace'],
    ['CONFIG', 'GET', 'databases'],
  ]);
  const bad = replies.find((r): r is RedisReplyError => r instanceof RedisReplyError);
  if (bad) throw serviceUnavailableError(`Redis refused a monitor query: ${bad.message}`);
  const [mem, clients, keyspace, dbs] = replies as [string, string, string, Reply[]];
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
