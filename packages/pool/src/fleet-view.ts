/**
 * A read-only view of the whole fleet (store.backend redis, docs/fleet.md) for the monitor:
 * every host's heartbeat, lost state, registry (slots, leases, queue), read straight from the
 * fleet's Redis with plain reads (HGETALL, HGET, TIME). Unlike the lease store's `read` it
 * beats for nobody and restores nothing, so the dashboard of one host, or a leak scan, never
 * keeps another host alive nor touches its keys.
 */
import { fleetHost, fleetKeys, type Config, type LoadedConfig } from '@wtpool/config';
import { redact, serviceUnavailableError } from '@wtpool/core';
import { isReplyError, redisPipeline, type Reply } from './resp-lazy.js';
import { leaseSummary } from './status.js';
import type { Lease, PoolState, SlotState, Ticket } from './types.js';

export interface FleetViewSlot {
  id: string;
  n: number;
  /** The slot's state on its host; `lost` when the host is lost. */
  state: SlotState | 'lost';
  branch: string | null;
  lease: Pick<
    Lease,
    'agent' | 'task' | 'priority' | 'token' | 'acquiredAt' | 'heartbeatAt' | 'expiresAt'
  > | null;
}

export interface FleetViewHost {
  id: string;
  state: 'live' | 'lost';
  /** Server time of the host's last heartbeat, or null when it never beat since Redis started. */
  lastSeen: string | null;
  /** How long ago that was (by the Redis server's clock), or null. */
  heartbeatAgeMs: number | null;
  /** The lost record (`<fleet>:lost`): when it was marked and whether its reclaim finished. */
  lostAt: string | null;
  reclaimed: boolean | null;
  slots: FleetViewSlot[];
  queue: Array<Pick<Ticket, 'agent' | 'task' | 'priority' | 'enqueuedAt'>>;
}

export interface FleetView {
  /** This host's id. */
  me: string;
  /**
   * `acquire --any-host` waiters (the fleet queue `<fleet>:fq`, best first): served by whichever
   * host frees a slot first; `host` is where the waiter runs.
   */
  anyHost: Array<{ agent: string; task: string; priority: number; host: string }>;
  /** The Redis server's clock when read (ms). */
  now: number;
  hostTtl: number;
  hosts: FleetViewHost[];
}

/** At most this many `--any-host` tickets are read. */
const MAX_TICKETS = 100;

const pairs = (r: Reply | undefined): Map<string, string> => {
  const flat = Array.isArray(r) ? (r as string[]) : [];
  const m = new Map<string, string>();
  for (let i = 0; i + 1 < flat.length; i += 2) m.set(flat[i]!, flat[i + 1]!);
  return m;
};

/** How long the Redis server has been up, in ms, from an `INFO server` reply (0 when unknown). */
export function uptimeMs(info: Reply | undefined): number {
  const s = Number(/uptime_in_seconds:(\d+)/.exec(String(info))?.[1]);
  return Number.isFinite(s) ? s * 1000 : 0;
}

/** The config of another host of the fleet: names (databases, band owners) as that host makes them. */
export const asFleetHost = (config: Config, host: string): Config => ({
  ...config,
  fleet: { host },
});

/**
 * Every host of the fleet: heartbeats, lost marks and registries (slots with their leases, the
 * queue). A host is lost when marked in `<fleet>:lost`, or (another host) silent past hostTtl.
 */
export async function readFleetView(loaded: LoadedConfig): Promise<FleetView> {
  const { config, repo } = loaded;
  const url = config.store.url;
  if (config.store.backend !== 'redis' || !url) {
    throw serviceUnavailableError('the fleet view needs store.backend: redis with store.url');
  }
  const me = fleetHost(config);
  const k = fleetKeys(config, repo, me);
  const [hostsR, lostR, timeR, fqR, upR, infoR] = await redisPipeline(url, [
    ['HGETALL', `${k.fleet}:hosts`],
    ['HGETALL', `${k.fleet}:lost`],
    ['TIME'],
    ['ZRANGE', `${k.fleet}:fq`, 0, MAX_TICKETS - 1],
    ['HGET', `${k.fleet}:clock`, 'up'],
    ['INFO', 'server'],
  ]);
  for (const r of [hostsR, lostR, timeR, fqR]) {
    if (isReplyError(r)) {
      throw serviceUnavailableError(`Redis at ${redact(url)} refused a read: ${r.message}`);
    }
  }
  const seen = pairs(hostsR);
  const lost = pairs(lostR);
  const t = timeR as string[];
  const now = Number(t[0]) * 1000 + Math.floor(Number(t[1]) / 1000);
  const ids = [...new Set([...seen.keys(), ...lost.keys(), me])].sort();
  const tickets = Array.isArray(fqR) ? (fqR as string[]) : [];
  const replies = await redisPipeline(url, [
    ...ids.map((h) => ['HGET', `${k.fleet}:h:${h}:reg`, 'doc']),
    ...tickets.map((t) => ['GET', `${k.fleet}:fq:t:${t}`]),
  ]);
  const docs = replies.slice(0, ids.length);
  // A ticket whose request expired (its waiter gave up or died) is skipped, as POP skips it.
  const anyHost = replies.slice(ids.length).flatMap((r) => {
    if (typeof r !== 'string') return [];
    const t = JSON.parse(r) as { agent: string; task: string; priority: number; host: string };
    return [{ agent: t.agent, task: t.task, priority: t.priority, host: t.host }];
  });
  const ttl = config.store.hostTtl;
  const hosts = ids.map((id, i): FleetViewHost => {
    const last = seen.has(id) ? Number(seen.get(id)) : null;
    const mark = lost.has(id)
      ? (JSON.parse(lost.get(id)!) as { at?: number; done?: boolean })
      : null;
    // Silence counts only while Redis could be reached (the fleet clock, D376).
    const counted = last === null ? null : Math.max(last, Number(upR ?? 0), now - uptimeMs(infoR));
    const gone = mark !== null || (id !== me && counted !== null && now - counted > ttl);
    const doc = typeof docs[i] === 'string' ? (JSON.parse(docs[i] as string) as PoolState) : null;
    return {
      id,
      state: gone ? 'lost' : 'live',
      lastSeen: last === null ? null : new Date(last).toISOString(),
      heartbeatAgeMs: last === null ? null : Math.max(0, now - last),
      lostAt: mark?.at ? new Date(mark.at).toISOString() : null,
      reclaimed: mark ? mark.done === true : null,
      slots: Object.values(doc?.slots ?? {})
        .sort((a, b) => a.n - b.n)
        .map((s) => ({
          id: s.id,
          n: s.n,
          state: gone ? 'lost' : s.state,
          branch: gone ? null : s.branch,
          lease: !gone && s.lease ? leaseSummary(s.lease) : null,
        })),
      queue: gone
        ? []
        : (doc?.queue ?? []).map((q) => ({
            agent: q.agent,
            task: q.task,
            priority: q.priority,
            enqueuedAt: q.enqueuedAt,
          })),
    };
  });
  return { me, anyHost, now, hostTtl: ttl, hosts };
}
