/**
 * One health sweep: PostgreSQL connections, file descriptors, disk, Redis and the pool's
 * leases, measured concurrently, then judged against the thresholds. `monitor status`,
 * `monitor report` and every daemon sample are one of these.
 */
import os from 'node:os';
import { formatDuration } from '@wtpool/core';
import { poolRoot, slotNames, type LoadedConfig } from '@wtpool/config';
import { portSquatters, redisCapacity, squatterProblems, type Capacity } from '@wtpool/services';
import { diskUsage, type DiskUsage } from './disk.js';
import { processFds, systemFds, type ProcessFds, type SystemFds } from './fd.js';
import { pgSnapshot, withPg } from './postgres.js';
import { readPoolView, type PoolView } from './pool-view.js';
import { redisSnapshot, type RedisSnapshot } from './redis.js';
import { FD_ERROR_PCT, levelAlert, worst, type Alert, type Level } from './thresholds.js';

export interface PostgresHealth {
  ok: boolean;
  error?: string;
  max?: number;
  reserved?: number;
  total?: number;
  byDatabase?: Record<string, number>;
  /** Connections per slot database (slot id → { database, connections }). */
  slots?: Record<string, { database: string; connections: number }>;
}

export interface RedisHealth {
  ok: boolean;
  error?: string;
  usedMemory?: number;
  maxMemory?: number;
  clients?: number;
  physical_max?: number;
  /** The elastic band as the services report it (null when they keep no band state). */
  band?: Capacity | null;
  /** Non-empty logical DBs (index → keys). */
  keys?: Record<number, number>;
}

export interface HolderFds extends ProcessFds {
  slot: string;
  agent: string;
}

export interface LeaseAlertView {
  slot: string;
  agent: string;
  task: string;
  ageMs: number;
  expiresInMs: number;
  heartbeatAgeMs: number;
}

/** The pool exhausted (no ready slot) with waiters for this long is a warning. */
export const EXHAUSTED_ALERT_AFTER_MS = 5 * 60_000;

export interface PoolHealth {
  size: number;
  max: number;
  ready: number;
  leased: number;
  broken: string[];
  waiters: number;
  nearExpiry: LeaseAlertView[];
  old: LeaseAlertView[];
  expired: LeaseAlertView[];
  /** Leases whose last heartbeat is older than half their ttl (two missed `pool run` beats). */
  stale: LeaseAlertView[];
  /** How long the pool has had no ready slot while acquires wait (null when it has not). */
  exhaustedForMs: number | null;
  /** Ports of a slot's block bound by a process that is not the slot's (ports.base set). */
  squatted?: string[];
}

export interface Health {
  at: string;
  level: Level;
  /** How long the sweep took. */
  durationMs: number;
  postgres: PostgresHealth | null;
  fds: { system: SystemFds | null; holders: HolderFds[] };
  /** `source`: measured by this sweep (`live`) or taken from the daemon's latest sample. */
  disk: DiskUsage & { measuredAt: string; source: 'live' | 'daemon' };
  redis: RedisHealth | null;
  pool: PoolHealth | null;
  alerts: Alert[];
}

const fmtBytes = (n: number) =>
  n >= 1e9
    ? `${(n / 1e9).toFixed(2)} GB`
    : n >= 1e6
      ? `${(n / 1e6).toFixed(1)} MB`
      : `${Math.round(n / 1e3)} kB`;

async function postgresHealth(
  loaded: LoadedConfig,
  pool: PoolView | null,
): Promise<PostgresHealth | null> {
  const url = loaded.config.postgres.url;
  if (!url) return null;
  try {
    const snap = await withPg(url, pgSnapshot);
    const slots: PostgresHealth['slots'] = {};
    for (const s of pool?.slots ?? []) {
      const database = slotNames(loaded.config, loaded.repo, s.id).database;
      slots[s.id] = { database, connections: snap.byDatabase[database] ?? 0 };
    }
    return {
      ok: true,
      max: snap.max,
      reserved: snap.reserved,
      total: snap.total,
      byDatabase: snap.byDatabase,
      slots,
    };
  } catch (e) {
    return { ok: false, error: (e as Error).message };
  }
}

async function redisHealth(loaded: LoadedConfig): Promise<RedisHealth | null> {
  const url = loaded.config.redis.url;
  if (!url) return null;
  try {
    const [snap, band]: [RedisSnapshot, Capacity | null] = await Promise.all([
      redisSnapshot(url),
      redisCapacity(loaded).catch(() => null),
    ]);
    return {
      ok: true,
      usedMemory: snap.usedMemory,
      maxMemory: snap.maxMemory,
      clients: snap.clients,
      physical_max: snap.databases,
      band,
      keys: snap.keys,
    };
  } catch (e) {
    return { ok: false, error: (e as Error).message };
  }
}

function poolHealth(
  loaded: LoadedConfig,
  pool: PoolView | null,
  now: number,
  exhaustedSince: number | null | undefined,
): PoolHealth | null {
  if (!pool) return null;
  const { leaseAlertAfter } = loaded.config.monitor;
  // "Near expiry": within a tenth of the lease ttl (12 min of the default 2 h), at least a minute.
  const nearWindow = Math.max(60_000, loaded.config.pool.leaseTtl / 10);
  const h: PoolHealth = {
    size: pool.slots.length,
    max: pool.max,
    ready: pool.slots.filter((s) => s.state === 'ready').length,
    leased: pool.slots.filter((s) => s.lease).length,
    broken: pool.slots.filter((s) => s.state === 'broken').map((s) => s.id),
    waiters: pool.queue.length,
    nearExpiry: [],
    old: [],
    expired: [],
    stale: [],
    exhaustedForMs: null,
  };
  if (h.ready === 0 && h.waiters > 0) {
    // Since when: the caller's samples say, else the oldest waiter has waited that long.
    const oldest = Math.min(...pool.queue.map((q) => Date.parse(q.enqueuedAt)));
    h.exhaustedForMs = Math.max(0, now - (exhaustedSince ?? oldest));
  }
  for (const s of pool.slots) {
    const l = s.lease;
    if (!l) continue;
    const v: LeaseAlertView = {
      slot: s.id,
      agent: l.agent,
      task: l.task,
      ageMs: now - Date.parse(l.acquiredAt),
      expiresInMs: Date.parse(l.expiresAt) - now,
      heartbeatAgeMs: now - Date.parse(l.heartbeatAt),
    };
    const ttl = Date.parse(l.expiresAt) - Date.parse(l.heartbeatAt);
    if (v.expiresInMs > 0 && v.heartbeatAgeMs > ttl / 2) h.stale.push(v);
    if (v.expiresInMs <= 0) h.expired.push(v);
    else if (v.expiresInMs <= nearWindow) h.nearExpiry.push(v);
    if (v.ageMs >= leaseAlertAfter) h.old.push(v);
  }
  return h;
}

/** Ports of each slot's block held by another process (/proc; processes scanned only for a bound port). */
async function squattedPorts(loaded: LoadedConfig, pool: PoolView | null): Promise<string[]> {
  if (!pool || loaded.config.ports.base === null) return [];
  const out: string[] = [];
  for (const s of pool.slots) {
    const n = slotNames(loaded.config, loaded.repo, s.id);
    const block = n.ports!;
    const found = await portSquatters(block.start, block.end, n.path).catch(() => []);
    out.push(...squatterProblems(s.id, block, found, loaded.config.ports.names));
  }
  return out;
}

async function holderFds(pool: PoolView | null): Promise<HolderFds[]> {
  const host = os.hostname();
  const holders = (pool?.slots ?? []).filter(
    (s) => s.lease?.pid && (!s.lease.host || s.lease.host === host),
  );
  const out = await Promise.all(
    holders.map(async (s) => {
      const fds = await processFds(s.lease!.pid!);
      return fds ? { slot: s.id, agent: s.lease!.agent, ...fds } : null;
    }),
  );
  return out.filter((x): x is HolderFds => x !== null);
}

export function judge(h: Omit<Health, 'alerts' | 'level'>, loaded: LoadedConfig): Alert[] {
  const t = loaded.config.monitor.thresholds;
  const alerts: Alert[] = [];
  const push = (a: Alert | null) => a && alerts.push(a);
  const pg = h.postgres;
  if (pg && !pg.ok) push({ level: 'error', check: 'postgres', message: pg.error! });
  if (pg?.ok) {
    push(
      levelAlert('postgres', 'PostgreSQL connections', pg.total!, t.DB_CONN_WARN, t.DB_CONN_ERROR),
    );
    const usable = pg.max! - pg.reserved!;
    if (pg.total! >= usable)
      push({
        level: 'error',
        check: 'postgres',
        message: `PostgreSQL connections ${pg.total} reach max_connections ${pg.max} (minus ${pg.reserved} reserved)`,
        value: pg.total!,
        threshold: usable,
      });
  }
  const fdWarn = t.FD_WARN_PCT;
  const fdError = Math.max(FD_ERROR_PCT, fdWarn);
  if (h.fds.system)
    push(
      levelAlert(
        'fds',
        'system file handles (% of fs.file-max)',
        h.fds.system.pct,
        fdWarn,
        fdError,
        (n) => `${n}%`,
      ),
    );
  for (const p of h.fds.holders) {
    if (p.pct !== null)
      push(
        levelAlert(
          'fds',
          `${p.slot} holder pid ${p.pid} descriptors (% of its limit ${p.limit})`,
          p.pct,
          fdWarn,
          fdError,
          (n) => `${n}%`,
        ),
      );
  }
  push(
    levelAlert(
      'disk',
      "bytes used by the pool's worktrees",
      h.disk.bytes,
      t.DISK_WARN,
      t.DISK_ERROR,
      fmtBytes,
    ),
  );
  const r = h.redis;
  if (r && !r.ok) push({ level: 'error', check: 'redis', message: r.error! });
  if (r?.ok) {
    if (r.maxMemory! > 0)
      push(
        levelAlert(
          'redis',
          'Redis memory (% of maxmemory)',
          Math.round((r.usedMemory! / r.maxMemory!) * 100),
          80,
          95,
          (n) => `${n}%`,
        ),
      );
    if (r.band && r.band.used >= r.band.physical_max - loaded.config.redis.bandStart)
      push({
        level: 'warning',
        check: 'redis',
        message: `the Redis band uses every physical DB (${r.band.used}); raise it with \`pool scale --provision\``,
        value: r.band.used,
        threshold: r.band.physical_max,
      });
  }
  const p = h.pool;
  if (p) {
    if (p.broken.length)
      push({
        level: 'warning',
        check: 'pool',
        message: `broken slots: ${p.broken.join(', ')} (run \`pool doctor --fix\`)`,
        value: p.broken.length,
      });
    for (const l of p.expired)
      push({
        level: 'warning',
        check: 'pool',
        message: `${l.slot}: lease of ${l.agent} expired ${formatDuration(-l.expiresInMs)} ago (\`monitor cleanup-leaks\` reclaims it)`,
      });
    for (const l of p.old)
      push({
        level: 'warning',
        check: 'pool',
        message: `${l.slot}: lease of ${l.agent} on ${JSON.stringify(l.task)} is ${formatDuration(l.ageMs)} old`,
        value: l.ageMs,
        threshold: loaded.config.monitor.leaseAlertAfter,
      });
    for (const l of p.stale)
      push({
        level: 'warning',
        check: 'pool',
        message: `${l.slot}: no heartbeat from ${l.agent} for ${formatDuration(l.heartbeatAgeMs)} (lease expires in ${formatDuration(l.expiresInMs)})`,
        value: l.heartbeatAgeMs,
      });
    if (p.exhaustedForMs !== null && p.exhaustedForMs >= EXHAUSTED_ALERT_AFTER_MS)
      push({
        level: 'warning',
        check: 'pool',
        message: `the pool has had no free slot for ${formatDuration(p.exhaustedForMs)} with ${p.waiters} waiting (\`pool scale out\`, or raise scale.max)`,
        value: p.exhaustedForMs,
        threshold: EXHAUSTED_ALERT_AFTER_MS,
      });
    for (const message of p.squatted ?? []) push({ level: 'warning', check: 'ports', message });
    if (p.waiters && p.size >= p.max)
      push({
        level: 'warning',
        check: 'pool',
        message: `${p.waiters} waiting with the pool at its max of ${p.max} slots`,
        value: p.waiters,
      });
  }
  return alerts;
}

/** Measures everything once. Services that are down become error alerts, not exceptions. */
export async function collectHealth(
  loaded: LoadedConfig,
  opts: {
    disk?: Health['disk'] | null;
    /** Injected clock (tests). */
    now?: number;
    /** Start of the current exhausted-with-waiters run, from samples (serve's history). */
    exhaustedSince?: number | null;
  } = {},
): Promise<Health> {
  const started = performance.now();
  const now = opts.now ?? Date.now();
  const pool = await readPoolView(loaded);
  const [postgres, redis, system, holders, disk, squatted] = await Promise.all([
    postgresHealth(loaded, pool),
    redisHealth(loaded),
    systemFds(),
    holderFds(pool),
    opts.disk ??
      diskUsage(poolRoot(loaded.config, loaded.repo), {
        stateDir: loaded.repo.stateDir,
      }).then((d) => ({
        ...d,
        measuredAt: new Date(now).toISOString(),
        source: 'live' as const,
      })),
    squattedPorts(loaded, pool),
  ]);
  const partial = {
    at: new Date(now).toISOString(),
    durationMs: 0,
    postgres,
    fds: { system, holders },
    disk,
    redis,
    pool: (() => {
      const p = poolHealth(loaded, pool, now, opts.exhaustedSince);
      return p && squatted.length ? { ...p, squatted } : p;
    })(),
  };
  const alerts = judge(partial, loaded);
  return {
    ...partial,
    level: worst(alerts),
    alerts,
    durationMs: Math.round(performance.now() - started),
  };
}
