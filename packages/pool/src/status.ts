import { formatDuration } from '@wtpool/core';
import type { Config } from '@wtpool/config';
import { byPriority, counts, growthStopped, slotList } from './state.js';

/** A lease's public fields, as `status --json` and the fleet view (fleet-view.ts) show them. */
export function leaseSummary(l: Lease) {
  return {
    agent: l.agent,
    task: l.task,
    priority: l.priority,
    token: l.token,
    acquiredAt: l.acquiredAt,
    heartbeatAt: l.heartbeatAt,
    expiresAt: l.expiresAt,
  };
}
import type { Lease, PoolState, PoolStatus } from './types.js';

/**
 * The CLI.md `status --json` shape (extra fields allowed, none renamed). `over` tells why a
 * lease is over (expired, holder-dead, abandoned): shown, not acted on.
 */
export function toStatus(
  st: PoolState,
  config: Config,
  capacity: unknown,
  over: (lease: Lease) => string | null = () => null,
): PoolStatus {
  const c = counts(st);
  return {
    pool: {
      min: config.scale.min,
      max: config.scale.max,
      size: c.size,
      ready: c.ready,
      leased: c.leased,
      provisioning: c.provisioning,
      broken: c.broken,
      waiters: st.queue.length,
      releasing: c.releasing,
      retiring: c.retiring,
      growthStopped: growthStopped(st),
    },
    slots: slotList(st).map((s) => ({
      id: s.id,
      state: s.state,
      path: s.path,
      branch: s.branch,
      lease: s.lease
        ? {
            ...leaseSummary(s.lease),
            holderPid: s.lease.holder?.pid ?? null,
            identity: s.lease.identity,
            over: over(s.lease),
          }
        : null,
      error: s.error,
    })),
    queue: [...st.queue].sort(byPriority).map((t) => ({
      agent: t.agent,
      task: t.task,
      priority: t.priority,
      enqueuedAt: t.enqueuedAt,
      pid: t.waiter.pid,
    })),
    capacity,
  };
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows
    .map((r) =>
      r
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** Human table of a status. */
export function formatStatus(s: PoolStatus, now = Date.now()): string {
  const p = s.pool;
  const lines = [
    `pool: ${p.size} slots (min ${p.min}, max ${p.max}) · ${p.ready} ready · ${p.leased} leased · ${p.provisioning} provisioning · ${p.broken} broken · ${p.waiters} waiting`,
  ];
  if (s.slots.length) {
    const rows = [
      ['SLOT', 'STATE', 'AGENT', 'TASK', 'PRI', 'HEARTBEAT', 'EXPIRES', 'BRANCH / PATH'],
    ];
    for (const slot of s.slots) {
      const l = slot.lease;
      const left = l ? Math.round((Date.parse(l.expiresAt) - now) / 60_000) : null;
      const expires = l?.over ? `over (${l.over})` : left === null ? '-' : `${left}m`;
      rows.push([
        slot.id,
        slot.state,
        l?.agent ?? '-',
        l ? (l.task.length > 30 ? l.task.slice(0, 29) + '…' : l.task) : '-',
        l ? String(l.priority) : '-',
        l ? `${formatDuration(Math.max(0, now - Date.parse(l.heartbeatAt)))} ago` : '-',
        expires,
        slot.branch ?? (slot.error ? `error: ${slot.error}` : slot.path),
      ]);
    }
    lines.push('', table(rows));
  }
  if (p.growthStopped) {
    lines.push('', `growth stopped: ${p.growthStopped.reason}`, `  fix: ${p.growthStopped.fix}`);
  }
  if (s.queue.length) {
    const rows = [['#', 'AGENT', 'TASK', 'PRI', 'WAITING SINCE']];
    s.queue.forEach((q, i) =>
      rows.push([String(i + 1), q.agent, q.task, String(q.priority), q.enqueuedAt]),
    );
    lines.push('', 'queue:', table(rows));
  }
  for (const w of s.integration ?? []) {
    lines.push('', `integration worktree: ${w.path} (${w.branch ?? 'detached'}, protected)`);
  }
  if (s.capacity && typeof s.capacity === 'object') {
    const c = s.capacity as Record<string, number>;
    lines.push(
      '',
      `redis band: ${c.used}/${c.current} used (floor ${c.floor}, step ${c.step}, physical max ${c.physical_max})`,
    );
    const { warning } = s.capacity as { warning?: string };
    if (warning) lines.push(`warning: ${warning}`);
  }
  return lines.join('\n');
}
