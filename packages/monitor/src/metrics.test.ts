/** Metrics from an event log, and the exhausted run from samples: pure, no I/O. */
import { describe, expect, it } from 'vitest';
import { exhaustedSince, type HistorySample } from './history.js';
import type { Health } from './health.js';
import { computeMetrics, prometheusText, quantile } from './metrics.js';

describe('metrics from the event log', () => {
  it('quantiles are nearest-rank', () => {
    expect(quantile([], 0.5)).toBeNull();
    expect(quantile([5], 0.99)).toBe(5);
    expect(quantile([1, 2, 3, 4], 0.5)).toBe(2);
    expect(quantile([1, 2, 3, 4], 0.99)).toBe(4);
  });

  it('pairs acquires with releases and reclaims by slot and token, counts errors by kind', () => {
    const t0 = Date.parse('2026-12-01T10:00:00Z');
    const ts = (s: number) => new Date(t0 + s * 1000).toISOString();
    const m = computeMetrics(
      [
        { ts: ts(0), type: 'acquire', slot: 'wt-1', token: 1 },
        { ts: ts(1), type: 'acquire', slot: 'wt-2', token: 2 },
        { ts: ts(10), type: 'release', slot: 'wt-1', token: 1, resetMs: 300 },
        { ts: ts(11), type: 'acquire', slot: 'wt-1', token: 3 },
        { ts: ts(41), type: 'reclaim', slot: 'wt-2', token: 2, reason: 'holder-dead' },
        { ts: ts(42), type: 'error', slot: 'wt-3', code: 'ERR_GIT' },
        { ts: ts(43), type: 'error', slot: 'wt-3', code: 'ERR_GIT' },
        { ts: ts(51), type: 'release', slot: 'wt-1', token: 3, resetMs: 100 },
      ],
      { pool: null, alerts: [] },
      t0 + 60_000,
    );
    // Leases of 10 s, 40 s and 40 s.
    expect(m.leaseDuration).toEqual({ count: 3, sum: 90_000, p50: 40_000, p99: 40_000 });
    expect(m.resetDuration).toEqual({ count: 2, sum: 400, p50: 100, p99: 300 });
    expect(m.errorsByKind).toEqual({ ERR_GIT: 2, 'reclaim:holder-dead': 1 });
  });

  it('the exhausted run starts at the first sample of the latest run', () => {
    const s = (at: number, ready: number, waiters: number): HistorySample => ({
      at: new Date(at).toISOString(),
      size: 1,
      leased: 1 - ready,
      ready,
      waiters,
      bandUsed: null,
      bandCurrent: null,
      pgConnections: null,
    });
    expect(exhaustedSince([s(0, 0, 1), s(10, 1, 0), s(20, 0, 2), s(30, 0, 1)])).toBe(20);
    expect(exhaustedSince([s(0, 0, 1), s(10, 1, 0)])).toBeNull();
  });
});

describe('/metrics of a fleet', () => {
  it('labels every sample with its host: slots and queues of every host, heartbeat ages, lost hosts down', () => {
    const lease = {
      agent: 'a',
      task: 't',
      priority: 2,
      token: 7,
      acquiredAt: '',
      heartbeatAt: '',
      expiresAt: '',
    };
    const fleet = {
      me: 'host-1',
      anyHost: [{ agent: 'x', task: 't', priority: 2, host: 'host-2' }],
      now: 0,
      hostTtl: 120_000,
      hosts: [
        {
          id: 'host-1',
          state: 'live' as const,
          lastSeen: null,
          heartbeatAgeMs: 1500,
          lostAt: null,
          reclaimed: null,
          slots: [
            { id: 'wt-1', n: 1, state: 'leased' as const, branch: 'b', lease },
            { id: 'wt-2', n: 2, state: 'ready' as const, branch: null, lease: null },
          ],
          queue: [{ agent: 'w', task: 't', priority: 1, enqueuedAt: '' }],
        },
        {
          id: 'host-2',
          state: 'lost' as const,
          lastSeen: null,
          heartbeatAgeMs: 200_000,
          lostAt: null,
          reclaimed: true,
          slots: [{ id: 'wt-1', n: 1, state: 'lost' as const, branch: null, lease: null }],
          queue: [],
        },
      ],
    };
    const m = computeMetrics([], { pool: null, alerts: [] }, 0);
    const health = { redis: null, postgres: null, disk: { bytes: 42 } } as unknown as Health;
    const lines = new Set(prometheusText(m, health, fleet).split('\n'));
    for (const l of [
      'wtpool_pool_slots{host="host-1",state="leased"} 1',
      'wtpool_pool_slots{host="host-1",state="available"} 1',
      'wtpool_pool_slots{host="host-1",state="all"} 2',
      'wtpool_pool_slots{host="host-2",state="lost"} 1',
      'wtpool_pool_slots{host="host-2",state="leased"} 0',
      'wtpool_pool_waiters{host="host-1"} 1',
      'wtpool_pool_waiters{host="host-2"} 0',
      'wtpool_host_up{host="host-1"} 1',
      'wtpool_host_up{host="host-2"} 0',
      'wtpool_host_heartbeat_age_seconds{host="host-1"} 1.5',
      'wtpool_host_heartbeat_age_seconds{host="host-2"} 200',
      'wtpool_lease_duration_seconds_count{host="host-1"} 0',
      'wtpool_alerts{host="host-1",level="error"} 0',
      'wtpool_disk_bytes{host="host-1"} 42',
      'wtpool_fleet_any_host_waiters 1',
    ])
      expect(lines, l).toContain(l);
    // Without a fleet: no host label anywhere.
    expect(prometheusText(m, health)).not.toContain('host=');
  });
});
