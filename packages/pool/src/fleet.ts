/**
 * The fleet (store.backend redis, docs/fleet.md): choosing the lease store, the hosts sharing
 * one pool through it, telling the lost ones and reclaiming their services.
 *
 * A host beats (`<fleet>:hosts`, server ms) on every read and commit of its registry: any
 * command, every waiter (also on its watch timer), the `monitor daemon` on each sample. A host
 * none of whose processes reached Redis for `store.hostTtl` is lost. Any live host that looks
 * (each of its processes at most every hostTtl/3) claims it in `<fleet>:lost` with one script,
 * expires its leases (their records are moved aside), flushes the Redis DBs it held and drops
 * its slot databases. Its worktrees stay on it: when it comes back, its first transaction
 * marks all its slots broken (redis-lease-store.ts returnFromLost), so they are re-provisioned
 * with fresh services, and its own `doctor` rescues the work in them.
 */
import { fleetKeys, slotNames, type LoadedConfig } from '@wtpool/config';
import { redact, serviceUnavailableError } from '@wtpool/core';
import {
  bandFor,
  dropDatabase,
  flushIndex,
  RedisBandStore,
  redisPipeline,
  RedisReplyError,
  withAdmin,
  type Reply,
} from '@wtpool/services';
import { asFleetHost, readFleetView, uptimeMs } from './fleet-view.js';
import { servicesGone, type RedisLeaseStore } from './redis-lease-store.js';
import { CLOCK } from './redis-scripts.js';
import type { PoolState, SlotState } from './types.js';

/** How long a claimed but unfinished reclaim (its reclaimer died) waits before another host retries it. */
export const RECLAIM_RETRY_MS = 60_000;

/**
 * KEYS hosts lost clock; ARGV me ttlMs retryMs outage uptimeMs → the hosts this caller now
 * reclaims: stale ones not yet lost, or lost ones whose reclaim was left unfinished for retryMs.
 * A host's last beat counts from no earlier than the server's start (uptime) and the last time a
 * host reached Redis again after failing to (CLOCK, D376).
 */
const MARK_LOST = `local t = redis.call('TIME'); local now = t[1] * 1000 + math.floor(t[2] / 1000)
${CLOCK(3, 4)}
local up = math.max(tonumber(redis.call('HGET', KEYS[3], 'up') or '0'), now - tonumber(ARGV[5]))
local h = redis.call('HGETALL', KEYS[1])
local out = {}
for i = 1, #h, 2 do
  local host, seen = h[i], math.max(tonumber(h[i + 1]), up)
  if host ~= ARGV[1] and now - seen > tonumber(ARGV[2]) then
    local cur = redis.call('HGET', KEYS[2], host)
    local d = cur and cjson.decode(cur)
    if not d or (not d.done and now - d.at > tonumber(ARGV[3])) then
      redis.call('HSET', KEYS[2], host, cjson.encode({at = now, by = ARGV[1], done = false, seen = seen}))
      table.insert(out, host)
    end
  end
end
return out`;

/** KEYS lost; ARGV host me → marks the reclaim of host done (if we still own it). */
const RECLAIMED = `local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur then return 0 end
local d = cjson.decode(cur)
if d.by ~= ARGV[2] then return 0 end
d.done = true
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(d))
return 1`;

async function cmd(url: string, ...args: (string | number)[]): Promise<Reply> {
  const [r] = await redisPipeline(url, [args]);
  if (r instanceof RedisReplyError) {
    throw serviceUnavailableError(`Redis at ${redact(url)} refused ${args[0]}: ${r.message}`);
  }
  return r!;
}

export interface Reclaimed {
  host: string;
  redisDbs: number[];
  databases: string[];
  leases: number;
}

/**
 * Marks the hosts past their TTL lost and reclaims their services: lease records moved aside
 * (their leases expire), their Redis DBs flushed and freed, their slot databases dropped.
 */
export async function reclaimLostHosts(
  loaded: LoadedConfig,
  store: RedisLeaseStore,
): Promise<Reclaimed[]> {
  const { config, repo } = loaded;
  const url = config.store.url!;
  const k = store.keys;
  const claimed = (await cmd(
    url,
    'EVAL',
    MARK_LOST,
    3,
    `${k.fleet}:hosts`,
    `${k.fleet}:lost`,
    `${k.fleet}:clock`,
    k.hostId,
    config.store.hostTtl,
    RECLAIM_RETRY_MS,
    store.takeOutage() ? '1' : '0',
    uptimeMs(await cmd(url, 'INFO', 'server')),
  )) as string[];
  const out: Reclaimed[] = [];
  for (const host of claimed) {
    const hk = `${k.fleet}:h:${host}`;
    // Its leases expire: no token of it can be checked valid any more.
    const leases = Number(await cmd(url, 'HLEN', `${hk}:leases`));
    if (leases) await cmd(url, 'RENAME', `${hk}:leases`, `${hk}:leases-lost`);
    // Its leases no longer take connections of the budget.
    await cmd(url, 'HDEL', `${k.fleet}:conn`, host);
    const r: Reclaimed = { host, redisDbs: [], databases: [], leases };
    if (config.redis.url) {
      const band = bandFor(config, repo);
      const prefix = `${host}/`;
      const held = Object.entries((await band.read()).alloc)
        .filter(([, owner]) => owner.startsWith(prefix))
        .map(([i]) => Number(i));
      // Flush before freeing: an index is never handed out again dirty.
      for (const i of held) await flushIndex(config.redis.url, i);
      await band.update((d) => {
        for (const [i, owner] of Object.entries(d.alloc)) {
          if (owner.startsWith(prefix)) delete d.alloc[i];
        }
      });
      r.redisDbs = held.sort((a, b) => a - b);
    }
    if (config.postgres.url) {
      const doc = (await cmd(url, 'HGET', `${hk}:reg`, 'doc')) as string | null;
      const st = doc ? (JSON.parse(doc) as PoolState) : undefined;
      const other = asFleetHost(config, host);
      const names = Object.values(st?.slots ?? {}).map((s) => slotNames(other, repo, s.n).database);
      await withAdmin(config.postgres.url, async (c) => {
        for (const db of names) await dropDatabase(c, db);
      });
      r.databases = names.sort();
    }
    await cmd(url, 'EVAL', RECLAIMED, 1, `${k.fleet}:lost`, host, k.hostId);
    await cmd(url, 'PUBLISH', `${k.fleet}:changed`, `lost ${host}`);
    out.push(r);
  }
  return out;
}

/** Connections of the server kept out of the fleet's default budget (admin, the pool, monitor). */
export const BUDGET_RESERVE = 5;

/**
 * The default `postgres.connectionBudget`: the server's max_connections minus its superuser
 * reserve minus BUDGET_RESERVE, asked once per 10 minutes for the whole fleet (cached in Redis).
 */
export async function serverConnectionBudget(loaded: LoadedConfig): Promise<number> {
  const { config, repo } = loaded;
  const url = config.store.url!;
  const key = `${fleetKeys(config, repo).fleet}:pg-budget`;
  const cached = await cmd(url, 'GET', key);
  if (typeof cached === 'string' && Number(cached) > 0) return Number(cached);
  const n = await withAdmin(config.postgres.url!, async (c) => {
    const r = await c.query<{ n: number }>(
      "SELECT current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int AS n",
    );
    return Math.max(1, Number(r.rows[0]!.n) - BUDGET_RESERVE);
  });
  await cmd(url, 'SET', key, n, 'EX', 600);
  return n;
}

/**
 * After Redis lost its state: registers this host's Redis DBs in the fleet band again, and marks
 * broken the slots whose DB another host registered first (they get fresh services; their work
 * is rescued before, docs/fleet.md).
 */
export async function registerBand(loaded: LoadedConfig, store: RedisLeaseStore): Promise<void> {
  const { config, repo } = loaded;
  if (!config.redis.url) return;
  const band = new RedisBandStore(config.store.url!, config, repo);
  const taken = await band.register();
  if (!taken.length) return;
  const prefix = `${store.hostId}/`;
  const slots = new Map(taken.map((t) => [t.owner.slice(prefix.length), t.index]));
  await store.transact((draft) => {
    for (const s of Object.values(draft.slots)) {
      const i = slots.get(s.id);
      if (i !== undefined)
        servicesGone(s, `its Redis DB ${i} went to another host while the fleet's Redis was away`);
    }
  });
}

export interface FleetSlot {
  id: string;
  state: SlotState | 'lost';
  lease: { agent: string; task: string; priority: number; token: number; expiresAt: string } | null;
}

export interface FleetHost {
  id: string;
  lastSeen: string | null;
  state: 'live' | 'lost';
  slots: FleetSlot[];
}

export interface FleetStatus {
  hosts: FleetHost[];
  capacity: {
    hosts: number;
    live: number;
    slots: number;
    ready: number;
    leased: number;
    waiters: number;
    /** Every live slot database's CONNECTION LIMIT, summed (what the slots could take at most). */
    dbConnections: number | null;
    /**
     * The enforced budget (`postgres.connectionBudget`, docs/fleet.md): what the leases of all
     * hosts take of it now (connectionLimit per lease) and its size (null until a host asked).
     */
    connectionBudget: { used: number; budget: number | null } | null;
  };
}

/** Every host of the fleet, its slots and leases (a lost host's slots show `lost`). */
export async function fleetStatus(loaded: LoadedConfig): Promise<FleetStatus> {
  const { config } = loaded;
  const url = config.store.url!;
  const k = fleetKeys(config, loaded.repo);
  const [view, [connR, budgetR]] = await Promise.all([
    readFleetView(loaded),
    redisPipeline(url, [
      ['HGETALL', `${k.fleet}:conn`],
      ['GET', `${k.fleet}:pg-budget`],
    ]),
  ]);
  if (connR instanceof RedisReplyError) throw serviceUnavailableError(connR.message);
  const hosts: FleetHost[] = view.hosts.map((h) => ({
    id: h.id,
    lastSeen: h.lastSeen,
    state: h.state,
    slots: h.slots.map((s) => ({
      id: s.id,
      state: s.state,
      lease: s.lease && {
        agent: s.lease.agent,
        task: s.lease.task,
        priority: s.lease.priority,
        token: s.lease.token,
        expiresAt: s.lease.expiresAt,
      },
    })),
  }));
  const live = view.hosts.filter((h) => h.state === 'live');
  const all = live.flatMap((h) => h.slots);
  const flat = Array.isArray(connR) ? (connR as string[]) : [];
  const capacity = {
    hosts: hosts.length,
    live: live.length,
    slots: all.length,
    ready: all.filter((s) => s.state === 'ready').length,
    leased: all.filter((s) => s.state === 'leased').length,
    waiters: live.reduce((n, h) => n + h.queue.length, 0),
    dbConnections: config.postgres.url ? all.length * config.postgres.connectionLimit : null,
    connectionBudget: config.postgres.url
      ? {
          used: flat.filter((_, i) => i % 2 === 1).reduce((n, v) => n + Number(v), 0),
          budget:
            config.postgres.connectionBudget ??
            (typeof budgetR === 'string' ? Number(budgetR) : null),
        }
      : null,
  };
  return { hosts, capacity };
}

/** The human view of `status --fleet`. */
export function formatFleet(f: FleetStatus, me: string): string {
  const c = f.capacity;
  const lines = [
    `fleet: ${c.live}/${c.hosts} hosts live · ${c.slots} slots (${c.ready} ready, ${c.leased} leased) · ${c.waiters} waiting` +
      (c.connectionBudget === null
        ? ''
        : ` · database connections: ${c.connectionBudget.used} of ${c.connectionBudget.budget ?? '?'} in use by leases`),
  ];
  for (const h of f.hosts) {
    lines.push(
      '',
      `${h.id}${h.id === me ? ' (this host)' : ''}  ${h.state}  last seen ${h.lastSeen ?? 'never'}`,
    );
    if (!h.slots.length) lines.push('  (no slots)');
    for (const s of h.slots) {
      const l = s.lease;
      lines.push(
        `  ${s.id.padEnd(7)} ${s.state.padEnd(12)} ${l ? `${l.agent}  ${l.task}  p${l.priority}  token ${l.token}` : ''}`.trimEnd(),
      );
    }
  }
  return lines.join('\n');
}
