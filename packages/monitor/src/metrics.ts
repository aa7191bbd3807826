/**
 * Metrics computed from the pool's event log and the latest health sample, and their
 * Prometheus text rendering (`/metrics`). Pure: events, health and `now` come in as arguments.
 */
import type { FleetView } from '@wtpool/pool';
import type { Health } from './health.js';

export interface EventLike {
  ts: string;
  type: string;
  slot?: string;
  token?: unknown;
  code?: unknown;
  reason?: unknown;
  resetMs?: unknown;
  [key: string]: unknown;
}

export interface Summary {
  count: number;
  sum: number;
  p50: number | null;
  p99: number | null;
}

export interface Metrics {
  pool: { size: number; available: number; leased: number; waiters: number; broken: number };
  /** Durations of leases that ended (release or reclaim) within the window, in ms. */
  leaseDuration: Summary;
  /** Reset (cleanup) durations the pool logged with its release/reclaim events (`resetMs`). */
  resetDuration: Summary;
  /** `error` events by code, plus reclaims by reason (`reclaim:<reason>`). */
  errorsByKind: Record<string, number>;
  alerts: { warning: number; error: number };
}

/** The q-quantile (nearest rank) of sorted values, null when empty. */
export function quantile(sorted: number[], q: number): number | null {
  if (!sorted.length) return null;
  const rank = Math.max(1, Math.ceil(q * sorted.length));
  return sorted[rank - 1]!;
}

const summary = (values: number[]) => {
  const s = [...values].sort((a, b) => a - b);
  return {
    count: s.length,
    sum: s.reduce((a, b) => a + b, 0),
    p50: quantile(s, 0.5),
    p99: quantile(s, 0.99),
  };
};

/**
 * Pairs each acquire with the release or reclaim of the same slot and token. `windowMs` keeps
 * only the leases that ended within it (default: everything in the log).
 */
export function computeMetrics(
  events: EventLike[],
  health: Pick<Health, 'pool' | 'alerts'>,
  now: number,
  windowMs = Infinity,
): Metrics {
  const started = new Map<string, number>();
  const durations: number[] = [];
  const resets: number[] = [];
  const errors: Record<string, number> = {};
  for (const e of events) {
    const at = Date.parse(e.ts);
    const key = `${e.slot}#${String(e.token)}`;
    if (e.type === 'acquire') started.set(key, at);
    else if (e.type === 'release' || e.type === 'reclaim') {
      const from = started.get(key);
      started.delete(key);
      if (now - at > windowMs) continue;
      if (from !== undefined) durations.push(at - from);
      if (typeof e.resetMs === 'number') resets.push(e.resetMs);
      if (e.type === 'reclaim') {
        const k = `reclaim:${typeof e.reason === 'string' ? e.reason : 'unknown'}`;
        errors[k] = (errors[k] ?? 0) + 1;
      }
    } else if (e.type === 'error' && now - at <= windowMs) {
      const k = typeof e.code === 'string' && e.code ? e.code : 'unknown';
      errors[k] = (errors[k] ?? 0) + 1;
    }
  }
  const p = health.pool;
  return {
    pool: {
      size: p?.size ?? 0,
      available: p?.ready ?? 0,
      leased: p?.leased ?? 0,
      waiters: p?.waiters ?? 0,
      broken: p?.broken.length ?? 0,
    },
    leaseDuration: summary(durations),
    resetDuration: summary(resets),
    errorsByKind: errors,
    alerts: {
      warning: health.alerts.filter((a) => a.level === 'warning').length,
      error: health.alerts.filter((a) => a.level === 'error').length,
    },
  };
}

/** Label values are escaped as the exposition format says (backslash, quote, newline). */
const label = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

/**
 * Prometheus text exposition format 0.0.4 of the metrics and of the health sample's gauges.
 * With a fleet view (store.backend redis) every sample carries `host="…"`: the slot and queue
 * gauges for every host of the fleet, plus `wtpool_host_up` and
 * `wtpool_host_heartbeat_age_seconds`; the figures only this host knows (its event log, its
 * alerts, Redis band, PostgreSQL, disk) are labelled with this host.
 */
export function prometheusText(m: Metrics, h: Health, fleet?: FleetView | null): string {
  const out: string[] = [];
  const me = fleet ? `host="${label(fleet.me)}"` : '';
  /** Adds this host's label (fleet only) to a label set like `{state="x"}` or ``. */
  const mine = (labels: string) =>
    !me ? labels : labels ? `{${me},${labels.slice(1)}` : `{${me}}`;
  const family = (
    name: string,
    type: string,
    help: string,
    samples: Array<[string, number]>,
    own = true,
  ) => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, v] of samples)
      out.push(`${name}${own ? mine(labels) : labels} ${Number.isFinite(v) ? v : 0}`);
  };
  const sec = (ms: number | null) => (ms === null ? [] : [ms / 1000]);
  if (fleet) {
    const hl = (id: string) => `host="${label(id)}"`;
    const count = (host: FleetView['hosts'][number], state: string) =>
      host.slots.filter((s) => s.state === state).length;
    family(
      'wtpool_pool_slots',
      'gauge',
      'Worktree slots by host and state.',
      fleet.hosts.flatMap((x): Array<[string, number]> => [
        [`{${hl(x.id)},state="available"}`, count(x, 'ready')],
        [`{${hl(x.id)},state="leased"}`, count(x, 'leased')],
        [`{${hl(x.id)},state="broken"}`, count(x, 'broken')],
        [`{${hl(x.id)},state="lost"}`, count(x, 'lost')],
        [`{${hl(x.id)},state="all"}`, x.slots.length],
      ]),
      false,
    );
    family(
      'wtpool_pool_waiters',
      'gauge',
      'Acquires waiting in the queue, by host.',
      fleet.hosts.map((x): [string, number] => [`{${hl(x.id)}}`, x.queue.length]),
      false,
    );
    family(
      'wtpool_fleet_any_host_waiters',
      'gauge',
      'acquire --any-host waiters in the fleet queue (any host may serve them).',
      [['', fleet.anyHost.length]],
      false,
    );
    family(
      'wtpool_host_up',
      'gauge',
      'Fleet hosts: 1 live, 0 lost.',
      fleet.hosts.map((x): [string, number] => [`{${hl(x.id)}}`, x.state === 'live' ? 1 : 0]),
      false,
    );
    family(
      'wtpool_host_heartbeat_age_seconds',
      'gauge',
      "Age of each fleet host's last heartbeat (Redis server clock).",
      fleet.hosts
        .filter((x) => x.heartbeatAgeMs !== null)
        .map((x): [string, number] => [`{${hl(x.id)}}`, x.heartbeatAgeMs! / 1000]),
      false,
    );
  } else {
    family('wtpool_pool_slots', 'gauge', 'Worktree slots by state.', [
      ['{state="available"}', m.pool.available],
      ['{state="leased"}', m.pool.leased],
      ['{state="broken"}', m.pool.broken],
      ['{state="all"}', m.pool.size],
    ]);
    family('wtpool_pool_waiters', 'gauge', 'Acquires waiting in the queue.', [
      ['', m.pool.waiters],
    ]);
  }
  for (const [name, s, help] of [
    ['wtpool_lease_duration_seconds', m.leaseDuration, 'Duration of ended leases.'],
    ['wtpool_reset_duration_seconds', m.resetDuration, 'Duration of slot resets.'],
  ] as const) {
    family(name, 'summary', help, [
      ...sec(s.p50).map((v): [string, number] => ['{quantile="0.5"}', v]),
      ...sec(s.p99).map((v): [string, number] => ['{quantile="0.99"}', v]),
    ]);
    out.push(`${name}_sum${mine('')} ${s.sum / 1000}`, `${name}_count${mine('')} ${s.count}`);
  }
  family(
    'wtpool_errors_total',
    'counter',
    'Pool errors (error events by code, reclaims by reason) in the event log.',
    Object.entries(m.errorsByKind).map(([k, v]) => [`{kind="${label(k)}"}`, v]),
  );
  family('wtpool_alerts', 'gauge', 'Active monitor alerts by level.', [
    ['{level="warning"}', m.alerts.warning],
    ['{level="error"}', m.alerts.error],
  ]);
  const band = h.redis?.ok ? h.redis.band : null;
  if (band)
    family('wtpool_redis_band', 'gauge', 'The Redis DB band.', [
      ['{kind="floor"}', band.floor],
      ['{kind="current"}', band.current],
      ['{kind="used"}', band.used],
      ['{kind="physical_max"}', band.physical_max],
    ]);
  if (h.postgres?.ok)
    family('wtpool_postgres_connections', 'gauge', 'PostgreSQL client connections.', [
      ['', h.postgres.total!],
    ]);
  family('wtpool_disk_bytes', 'gauge', "Bytes used by the pool's worktrees.", [['', h.disk.bytes]]);
  return out.join('\n') + '\n';
}
