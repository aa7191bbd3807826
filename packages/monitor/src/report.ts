/** `monitor report`: the health sweep broken down per slot, per database and per worktree. */
import { formatDuration } from '@wtpool/core';
import { slotNames, type LoadedConfig } from '@wtpool/config';
import { fmtBytes, formatStatus } from './format.js';
import { collectHealth, type Health } from './health.js';
import { readPoolView } from './pool-view.js';

export interface SlotReport {
  id: string;
  state: string;
  path: string;
  agent: string | null;
  task: string | null;
  leaseAgeMs: number | null;
  expiresInMs: number | null;
  /** The slot database, when PostgreSQL is enabled. */
  database: string | null;
  connections: number | null;
  diskBytes: number;
  holderPid: number | null;
  holderFds: number | null;
}

export interface Report {
  health: Health;
  slots: SlotReport[];
  databases: Array<{ name: string; connections: number; slot: string | null }>;
  /** `bytes`: own bytes plus an equal share of the hard-linked bytes it shares with others. */
  worktrees: Array<{ name: string; bytes: number; own: number; slot: string | null }>;
  /** Bytes hard-linked into two or more worktrees, counted once. */
  sharedBytes: number;
}

export async function buildReport(loaded: LoadedConfig): Promise<Report> {
  const [health, pool] = await Promise.all([collectHealth(loaded), readPoolView(loaded)]);
  const now = Date.parse(health.at);
  const dbToSlot = new Map<string, string>();
  const dirToSlot = new Map<string, string>();
  const slots: SlotReport[] = (pool?.slots ?? []).map((s) => {
    const names = slotNames(loaded.config, loaded.repo, s.id);
    dbToSlot.set(names.database, s.id);
    dirToSlot.set(names.id, s.id);
    const holder = health.fds.holders.find((h) => h.slot === s.id);
    return {
      id: s.id,
      state: s.state,
      path: s.path,
      agent: s.lease?.agent ?? null,
      task: s.lease?.task ?? null,
      leaseAgeMs: s.lease ? now - Date.parse(s.lease.acquiredAt) : null,
      expiresInMs: s.lease ? Date.parse(s.lease.expiresAt) - now : null,
      database: loaded.config.postgres.url ? names.database : null,
      connections: health.postgres?.ok ? (health.postgres.byDatabase?.[names.database] ?? 0) : null,
      diskBytes: health.disk.perEntry[names.id] ?? 0,
      holderPid: s.lease?.pid ?? null,
      holderFds: holder?.open ?? null,
    };
  });
  const byDb = health.postgres?.byDatabase ?? {};
  const databases = Object.entries(byDb)
    .map(([name, connections]) => ({ name, connections, slot: dbToSlot.get(name) ?? null }))
    .sort((a, b) => b.connections - a.connections || a.name.localeCompare(b.name));
  const worktrees = Object.entries(health.disk.perEntry)
    .map(([name, bytes]) => ({
      name,
      bytes,
      own: health.disk.perEntryOwn?.[name] ?? bytes,
      slot: dirToSlot.get(name) ?? null,
    }))
    .sort((a, b) => b.bytes - a.bytes);
  return { health, slots, databases, worktrees, sharedBytes: health.disk.shared ?? 0 };
}

const dur = (ms: number | null) =>
  ms === null ? '-' : ms < 0 ? `-${formatDuration(-ms)}` : formatDuration(ms);

export function formatReport(r: Report): string {
  const lines = [formatStatus(r.health, null), '', 'slots:'];
  if (!r.slots.length) lines.push('  (none)');
  for (const s of r.slots) {
    lines.push(
      `  ${s.id.padEnd(7)} ${s.state.padEnd(12)} ${(s.agent ?? '-').padEnd(14)} age ${dur(s.leaseAgeMs).padEnd(7)} expires ${dur(s.expiresInMs).padEnd(7)} ` +
        (s.database ? `db ${s.database} (${s.connections ?? '-'} conn)  ` : '') +
        `disk ${fmtBytes(s.diskBytes)}` +
        (s.holderPid ? `  pid ${s.holderPid} (${s.holderFds ?? '?'} fds)` : ''),
    );
  }
  lines.push('', 'databases (connections):');
  const pg = r.health.postgres;
  if (!pg) lines.push('  (PostgreSQL disabled)');
  else if (!pg.ok) lines.push(`  (PostgreSQL unreachable: ${pg.error})`);
  else if (!r.databases.length) lines.push('  (PostgreSQL up, no client connections)');
  for (const d of r.databases)
    lines.push(`  ${d.name.padEnd(32)} ${String(d.connections).padStart(4)}  ${d.slot ?? ''}`);
  lines.push(
    '',
    r.sharedBytes
      ? `worktrees under the pool root (own bytes + an equal share of the ${fmtBytes(r.sharedBytes)} hard-linked between worktrees):`
      : 'worktrees under the pool root (bytes, hard links counted once):',
  );
  if (!r.worktrees.length) lines.push('  (none)');
  for (const w of r.worktrees)
    lines.push(
      `  ${w.name.padEnd(32)} ${fmtBytes(w.bytes).padStart(9)}` +
        (r.sharedBytes ? `  (own ${fmtBytes(w.own)})` : '') +
        (w.slot ? '' : '  (not a slot)'),
    );
  if (r.sharedBytes)
    lines.push(`  ${'shared (counted once)'.padEnd(32)} ${fmtBytes(r.sharedBytes).padStart(9)}`);
  return lines.join('\n');
}
