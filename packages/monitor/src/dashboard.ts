/**
 * The dashboard's document: `pool status --json` and `monitor status --json` side by side,
 * plus the last events, leaks, the integration queue, per-lease log tails and the metrics.
 * Disk and leaks are slow, so they are refreshed in the background and reused between ticks.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { poolRoot, type LoadedConfig } from '@wtpool/config';
import {
  leaseLogPath,
  readEvents,
  readFleetView,
  type FleetView,
  type PoolEvent,
  type PoolStatus,
} from '@wtpool/pool';
import { redact } from '@wtpool/core';
import { diskUsage } from './disk.js';
import { collectHealth, type Health } from './health.js';
import { exhaustedSince, readHistory, historyFile } from './history.js';
import { computeMetrics, type Metrics } from './metrics.js';
import { poolOf } from './pool-access.js';
import type { LeakReport } from './leaks.js';

export interface DashboardDoc {
  at: string;
  pool: PoolStatus;
  monitor: Health;
  events: PoolEvent[];
  leaks: (LeakReport & { at: string }) | null;
  integration: {
    current: { branch: string; target: string; startedAt: string } | null;
    results: Array<{ branch: string; status: string; reason: string; at: string }>;
  } | null;
  /** Last lines of each slot's `pool run` log. */
  logs: Record<string, string[]>;
  metrics: Metrics;
  /** The levels the gauges colour against (config `monitor.thresholds`). */
  thresholds: LoadedConfig['config']['monitor']['thresholds'];
  /**
   * With the Redis store: every host of the fleet (its slots, leases, queue, heartbeat age,
   * live or lost), or the error reading it; null with the file store.
   */
  fleet: FleetView | { error: string } | null;
}

/** The fleet (store.backend redis) as the dashboard shows it; null for a one-host pool. */
export async function fleetOf(loaded: LoadedConfig): Promise<DashboardDoc['fleet']> {
  if (loaded.config.store.backend !== 'redis') return null;
  try {
    return await readFleetView(loaded);
  } catch (e) {
    return { error: redact((e as Error).message) };
  }
}

/** The last `n` lines of a file, reading at most its last 8 kB. */
export async function tailLines(file: string, n: number): Promise<string[]> {
  let fh;
  try {
    fh = await fs.open(file, 'r');
  } catch {
    return [];
  }
  try {
    const { size } = await fh.stat();
    const len = Math.min(size, 8192);
    const buf = Buffer.alloc(len);
    await fh.read(buf, 0, len, size - len);
    const lines = buf.toString('utf8').split('\n');
    if (len < size) lines.shift(); // a partial first line
    if (lines.at(-1) === '') lines.pop();
    return lines.slice(-n);
  } finally {
    await fh.close();
  }
}

async function integrationState(loaded: LoadedConfig): Promise<DashboardDoc['integration']> {
  // The integrate command's own state file, read only (the monitor does not depend on gates).
  try {
    const raw = JSON.parse(
      await fs.readFile(path.join(loaded.repo.stateDir, 'integration', 'state.json'), 'utf8'),
    ) as Partial<NonNullable<DashboardDoc['integration']>> & { data?: unknown };
    // JsonStore may wrap the document with a version.
    const st = (raw.data ?? raw) as Partial<NonNullable<DashboardDoc['integration']>>;
    return { current: st.current ?? null, results: (st.results ?? []).slice(-10).reverse() };
  } catch {
    return null;
  }
}

export interface DashboardOptions {
  now?: () => number;
  /** Disk is re-measured when the last measure is older than this (default 30 s). */
  diskEveryMs?: number;
  /** Leaks are re-detected when older than this (default 60 s). */
  leaksEveryMs?: number;
}

/** Builds documents; holds the slow parts (disk, leaks) between calls. */
export class Dashboard {
  private disk: Health['disk'] | null = null;
  private diskP: Promise<void> | null = null;
  private leaks: DashboardDoc['leaks'] = null;
  private leaksP: Promise<void> | null = null;
  private readonly now: () => number;

  constructor(
    private readonly loaded: LoadedConfig,
    private readonly opts: DashboardOptions = {},
  ) {
    this.now = opts.now ?? Date.now;
  }

  private refreshDisk(): Promise<void> {
    const age = this.disk ? this.now() - Date.parse(this.disk.measuredAt) : Infinity;
    if (this.diskP || age < (this.opts.diskEveryMs ?? 30_000))
      return this.diskP ?? Promise.resolve();
    const at = new Date(this.now()).toISOString();
    this.diskP = diskUsage(poolRoot(this.loaded.config, this.loaded.repo), {
      stateDir: this.loaded.repo.stateDir,
    })
      .then((d) => {
        this.disk = { ...d, measuredAt: at, source: 'live' };
      })
      .finally(() => (this.diskP = null));
    return this.diskP;
  }

  private refreshLeaks(): void {
    const age = this.leaks ? this.now() - Date.parse(this.leaks.at) : Infinity;
    if (this.leaksP || age < (this.opts.leaksEveryMs ?? 60_000)) return;
    const at = new Date(this.now()).toISOString();
    this.leaksP = import('./leaks.js')
      .then((m) => m.detectLeaks(this.loaded))
      .then((r) => {
        this.leaks = { ...r, at };
      })
      .catch(() => undefined)
      .finally(() => (this.leaksP = null));
  }

  async build(): Promise<DashboardDoc> {
    const { loaded } = this;
    // The first document waits for a disk figure; later ones reuse the last one.
    const diskP = this.refreshDisk();
    if (!this.disk) await diskP;
    this.refreshLeaks();
    const now = this.now();
    const hist = await readHistory(historyFile(loaded.repo.stateDir), now - 3_600_000);
    const [pool, monitor, events, integration, fleet] = await Promise.all([
      poolOf(loaded).getStatus({ sweep: false }),
      collectHealth(loaded, { disk: this.disk, now, exhaustedSince: exhaustedSince(hist) }),
      readEvents(loaded.repo.stateDir),
      integrationState(loaded),
      fleetOf(loaded),
    ]);
    const logs: Record<string, string[]> = {};
    await Promise.all(
      pool.slots
        .filter((s) => s.lease)
        .map(async (s) => {
          const lines = await tailLines(leaseLogPath(loaded.repo.stateDir, s.id), 5);
          if (lines.length) logs[s.id] = lines;
        }),
    );
    return {
      at: new Date(now).toISOString(),
      pool,
      monitor,
      events: events.slice(-30).reverse(),
      leaks: this.leaks,
      integration,
      logs,
      metrics: computeMetrics(events, monitor, now),
      thresholds: loaded.config.monitor.thresholds,
      fleet,
    };
  }
}
