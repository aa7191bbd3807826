/**
 * The samples behind the dashboard's charts: one small line per sample in
 * `<stateDir>/monitor/history.jsonl` (mode 0600), bounded: past `maxLines` the file is rewritten
 * with its newest half (atomically, by rename).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Health } from './health.js';

export interface HistorySample {
  at: string;
  size: number;
  leased: number;
  ready: number;
  waiters: number;
  /** Redis band: used and current (null without a band). */
  bandUsed: number | null;
  bandCurrent: number | null;
  pgConnections: number | null;
}

export const historyFile = (stateDir: string) => path.join(stateDir, 'monitor', 'history.jsonl');

/** Default bound: a sample every 10 s for a day fits twice over. */
export const HISTORY_MAX_LINES = 20_000;

export function toSample(h: Health): HistorySample {
  const band = h.redis?.ok ? (h.redis.band ?? null) : null;
  return {
    at: h.at,
    size: h.pool?.size ?? 0,
    leased: h.pool?.leased ?? 0,
    ready: h.pool?.ready ?? 0,
    waiters: h.pool?.waiters ?? 0,
    bandUsed: band?.used ?? null,
    bandCurrent: band?.current ?? null,
    pgConnections: h.postgres?.ok ? h.postgres.total! : null,
  };
}

export async function readHistory(file: string, sinceMs = 0): Promise<HistorySample[]> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch {
    return [];
  }
  const out: HistorySample[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    try {
      const s = JSON.parse(line) as HistorySample;
      if (Date.parse(s.at) >= sinceMs) out.push(s);
    } catch {
      // a torn last line
    }
  }
  return out;
}

export class History {
  private lines = -1;
  constructor(
    readonly file: string,
    private readonly maxLines = HISTORY_MAX_LINES,
  ) {}

  async append(s: HistorySample): Promise<void> {
    await fs.mkdir(path.dirname(this.file), { recursive: true, mode: 0o700 });
    if (this.lines < 0) this.lines = (await readHistory(this.file)).length;
    await fs.appendFile(this.file, JSON.stringify(s) + '\n', { mode: 0o600 });
    if (++this.lines <= this.maxLines) return;
    const keep = (await readHistory(this.file)).slice(-Math.floor(this.maxLines / 2));
    const tmp = `${this.file}.${process.pid}.tmp`;
    await fs.writeFile(tmp, keep.map((k) => JSON.stringify(k) + '\n').join(''), { mode: 0o600 });
    await fs.rename(tmp, this.file);
    this.lines = keep.length;
  }
}

/**
 * Start of the current run of samples with no ready slot and waiters (null when the latest
 * sample is not exhausted).
 */
export function exhaustedSince(samples: HistorySample[]): number | null {
  let since: number | null = null;
  for (const s of samples) {
    if (s.ready === 0 && s.waiters > 0) since ??= Date.parse(s.at);
    else since = null;
  }
  return since;
}
