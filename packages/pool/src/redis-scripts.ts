/**
 * The Lua scripts of the Redis lease store (redis-lease-store.ts; docs/fleet.md) and how they
 * run: by SHA, loaded on NOSCRIPT. Each is one atomic check-and-write on the server.
 */
import { createHash } from 'node:crypto';
import { redact, serviceUnavailableError } from '@wtpool/core';
import { isReplyError, redisPipeline, type Reply } from './resp-lazy.js';

/** Server time in ms, inside a script (Redis 7 replicates script effects, so TIME is allowed). */
const NOW = `local t = redis.call('TIME'); local now = t[1] * 1000 + math.floor(t[2] / 1000)`;

/**
 * Lua that keeps the fleet's clock (hash at KEYS[key], field `up`: when a host last reached
 * Redis again after failing to, ARGV[flag] = '1'). Every host's silence counts from no earlier
 * than `up` (and than the Redis server's start, fleet.ts): a host is never lost for the time
 * Redis itself was away from the fleet (D376).
 */
export const CLOCK = (key: number, flag: number) =>
  `if ARGV[${flag}] == '1' then redis.call('HSET', KEYS[${key}], 'up', now) end`;

export const SCRIPTS = {
  /**
   * KEYS reg leases token epoch hosts lost clock conn; ARGV host outage → [v, doc, leases, token,
   * epoch, lost, connections the other hosts' leases take].
   */
  read: `${NOW}
${CLOCK(7, 2)}
redis.call('HSET', KEYS[5], ARGV[1], now)
local r = redis.call('HMGET', KEYS[1], 'v', 'doc')
local c = redis.call('HGETALL', KEYS[8])
local others = 0
for i = 1, #c, 2 do if c[i] ~= ARGV[1] then others = others + tonumber(c[i + 1]) end end
return {r[1], r[2], redis.call('HGETALL', KEYS[2]), redis.call('GET', KEYS[3]),
  redis.call('GET', KEYS[4]), redis.call('HGET', KEYS[6], ARGV[1]), others}`,
  /**
   * KEYS reg token epoch hosts lost clock conn; ARGV expectedV doc baseToken newToken epoch host
   * channel clearLost outage conn budget → new version, -1 (someone committed first, or the
   * connection budget no longer has room for this host's new leases), -2 (Redis lost its state
   * since the read).
   */
  commit: `${NOW}
if (redis.call('GET', KEYS[3]) or '') ~= ARGV[5] then return -2 end
${CLOCK(6, 9)}
local v = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if v ~= tonumber(ARGV[1]) then return -1 end
local mine = tonumber(ARGV[10])
if ARGV[11] ~= '' and mine > tonumber(redis.call('HGET', KEYS[7], ARGV[6]) or '0') then
  local c = redis.call('HGETALL', KEYS[7])
  local others = 0
  for i = 1, #c, 2 do if c[i] ~= ARGV[6] then others = others + tonumber(c[i + 1]) end end
  if others + mine > tonumber(ARGV[11]) then return -1 end
end
redis.call('HSET', KEYS[7], ARGV[6], mine)
if tonumber(ARGV[4]) > tonumber(ARGV[3]) then
  if tonumber(redis.call('GET', KEYS[2]) or '0') ~= tonumber(ARGV[3]) then return -1 end
  redis.call('SET', KEYS[2], ARGV[4])
end
redis.call('HSET', KEYS[1], 'v', v + 1, 'doc', ARGV[2])
redis.call('HSET', KEYS[4], ARGV[6], now)
if ARGV[8] == '1' then redis.call('HDEL', KEYS[5], ARGV[6]) end
redis.call('PUBLISH', ARGV[7], v + 1)
return v + 1`,
  /**
   * KEYS token epoch floor; ARGV seenToken newEpoch → the floor. When the counter's epoch is
   * gone (Redis lost its state, or the fleet's first start), re-seeds the counter above the
   * tokens seen and the server clock in ms, and records that seed as the floor: every token
   * below it was issued before the loss.
   */
  seed: `${NOW}
if redis.call('EXISTS', KEYS[2]) == 0 then
  local seed = math.max(tonumber(ARGV[1]) + 1, now)
  local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
  if seed > cur then redis.call('SET', KEYS[1], string.format('%d', seed)) end
  redis.call('SET', KEYS[3], redis.call('GET', KEYS[1]))
  redis.call('SET', KEYS[2], ARGV[2])
end
return redis.call('GET', KEYS[3]) or '0'`,
  /**
   * KEYS reg leases; ARGV doc version lease… → 1 when it re-registered the registry and lease
   * records (only where Redis has none), 0 when another process of the host did first.
   */
  restore: `if ARGV[1] == '' or redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'doc', ARGV[1])
for i = 3, #ARGV do
  local l = cjson.decode(ARGV[i])
  redis.call('HSETNX', KEYS[2], l.slot, ARGV[i])
end
return 1`,
  /** KEYS leases; ARGV slot token doc → 1 replaced, 0 not (absent or another token). */
  replace: `local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur or cjson.decode(cur).token ~= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1`,
  /** KEYS leases; ARGV slot token ('' = any) → 1 removed. */
  remove: `local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur then return 0 end
if ARGV[2] ~= '' and cjson.decode(cur).token ~= tonumber(ARGV[2]) then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
return 1`,
  /** KEYS leases aside; ARGV slot tag → 1 moved. */
  moveAside: `${NOW}
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur then return 0 end
redis.call('HSET', KEYS[2], ARGV[1] .. '.stale-' .. ARGV[2] .. '-' .. now, cur)
redis.call('HDEL', KEYS[1], ARGV[1])
return 1`,
} as const;

type ScriptName = keyof typeof SCRIPTS;
const SHA = Object.fromEntries(
  Object.entries(SCRIPTS).map(([k, v]) => [k, createHash('sha1').update(v).digest('hex')]),
) as Record<ScriptName, string>;

/** Replica acknowledgement a write needs (`store.replicas`, `store.replicaTimeout`). */
export interface Ack {
  replicas: number;
  timeoutMs: number;
}

/**
 * Sends `cmd` and, when `ack` asks for replicas, `WAIT` on the same connection (the client's
 * `wait`: WAIT counts the replicas that have every earlier write of this connection). Fewer
 * acknowledgements than asked throw exit 6: the caller must not report the write as done
 * (docs/fleet.md).
 */
export async function acked(url: string, cmd: (string | number)[], ack?: Ack): Promise<Reply> {
  return (await redisPipeline(url, [cmd], ack?.replicas ? { wait: ack } : {}))[0]!;
}

/** Runs a script by its SHA, loading it on NOSCRIPT (first use, or Redis restarted). */
export async function evalScript(
  url: string,
  name: ScriptName,
  keys: string[],
  args: (string | number)[],
  ack?: Ack,
): Promise<Reply> {
  const call = (cmd: 'EVALSHA' | 'EVAL', body: string) =>
    acked(url, [cmd, body, keys.length, ...keys, ...args], ack);
  let r = await call('EVALSHA', SHA[name]);
  if (isReplyError(r) && r.message.startsWith('NOSCRIPT')) {
    r = await call('EVAL', SCRIPTS[name]);
  }
  if (isReplyError(r)) {
    throw serviceUnavailableError(
      `Redis at ${redact(url)} refused the ${name} script: ${r.message}`,
      {
        hint: 'the lease store needs Redis ≥ 7 with EVAL allowed (docs/fleet.md)',
      },
    );
  }
  return r;
}
