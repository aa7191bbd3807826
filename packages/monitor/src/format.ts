/** Human renderings of health, the report and leaks (JSON callers get the objects as they are). */
import { formatDuration } from '@wtpool/core';
import type { DaemonStatus } from './daemon.js';
import type { Health } from './health.js';
import type { LeakReport } from './leaks.js';
import type { CleanupResult } from './cleanup.js';

export const fmtBytes = (n: number): string =>
  n >= 1e9
    ? `${(n / 1e9).toFixed(2)} GB`
    : n >= 1e6
      ? `${(n / 1e6).toFixed(1)} MB`
      : n >= 1e3
        ? `${(n / 1e3).toFixed(0)} kB`
        : `${n} B`;

const row = (name: string, text: string) => `${name.padEnd(10)} ${text}`;

export function daemonLine(d: DaemonStatus): string {
  const age =
    d.lastSampleAgeMs === null
      ? 'no sample yet'
      : `last sample ${formatDuration(d.lastSampleAgeMs)} ago (${d.lastLevel})`;
  return d.running
    ? `running, pid ${d.pid}, every ${formatDuration(d.intervalMs!)}; ${age}`
    : `not running; ${age}`;
}

export function formatStatus(h: Health, daemon: DaemonStatus | null): string {
  const lines = [`monitor status: ${h.level.toUpperCase()}  (sweep ${h.durationMs} ms, ${h.at})`];
  const pg = h.postgres;
  lines.push(
    row(
      'postgres',
      !pg
        ? 'disabled'
        : !pg.ok
          ? `DOWN: ${pg.error}`
          : `${pg.total} connections of max_connections ${pg.max}` +
            (pg.slots && Object.keys(pg.slots).length
              ? `; slot databases: ${Object.entries(pg.slots)
                  .map(([id, s]) => `${id} ${s.connections}`)
                  .join(', ')}`
              : ''),
    ),
  );
  const sys = h.fds.system;
  lines.push(
    row(
      'fds',
      (sys ? `system ${sys.used} of ${sys.max} (${sys.pct}%)` : 'system: unknown') +
        (h.fds.holders.length
          ? `; holders: ${h.fds.holders.map((p) => `${p.slot} pid ${p.pid} ${p.open}/${p.limit ?? '∞'}`).join(', ')}`
          : '; no live holder processes'),
    ),
  );
  lines.push(
    row(
      'disk',
      `${fmtBytes(h.disk.bytes)} under ${h.disk.root}` +
        (h.disk.shared ? `, ${fmtBytes(h.disk.shared)} of it hard-linked between slots` : '') +
        (h.disk.source === 'daemon' ? ` (daemon sample of ${h.disk.measuredAt})` : '') +
        (h.disk.free !== null ? ` (${fmtBytes(h.disk.free)} free)` : ''),
    ),
  );
  const r = h.redis;
  lines.push(
    row(
      'redis',
      !r
        ? 'disabled'
        : !r.ok
          ? `DOWN: ${r.error}`
          : `memory ${fmtBytes(r.usedMemory!)}, ${r.clients} clients, ${Object.keys(r.keys!).length} non-empty DBs of ${r.physical_max}` +
            (r.band
              ? `; band ${r.band.used}/${r.band.current} used (floor ${r.band.floor}, physical ${r.band.physical_max})`
              : ''),
    ),
  );
  const p = h.pool;
  lines.push(
    row(
      'pool',
      !p
        ? 'no pool state yet (`pool init`)'
        : `${p.size} slots (${p.leased} leased, ${p.ready} ready, ${p.broken.length} broken), ${p.waiters} waiting; ` +
            `${p.nearExpiry.length} near expiry, ${p.expired.length} expired, ${p.old.length} old leases, ${p.stale.length} stale heartbeats`,
    ),
  );
  if (daemon) lines.push(row('daemon', daemonLine(daemon)));
  if (h.alerts.length) {
    lines.push('', 'alerts:');
    for (const a of h.alerts) lines.push(`  ${a.level.padEnd(8)} ${a.check}: ${a.message}`);
  }
  return lines.join('\n');
}

export function formatLeaks(r: LeakReport): string {
  if (!r.leaks.length) return 'no leaks found';
  const lines = [`${r.leaks.length} leak(s):`];
  for (const l of r.leaks) {
    lines.push(`  ${l.kind.padEnd(17)} ${l.message}`, `  ${''.padEnd(17)} fix: ${l.fix}`);
  }
  lines.push('', 'fix them with `monitor cleanup-leaks` (see --dry-run first)');
  return lines.join('\n');
}

export function formatCleanup(r: CleanupResult): string {
  if (!r.actions.length) return 'nothing to clean up';
  return r.actions
    .map(
      (a) =>
        `  ${a.ok ? (r.dryRun ? 'plan' : 'done') : 'FAIL'}  ${a.kind.padEnd(17)} ${a.ok ? a.action : a.error}`,
    )
    .join('\n');
}
