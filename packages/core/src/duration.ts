import { usageError } from './errors.js';

const UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/** Parses `90s`, `30m`, `2h`, `1d`, `250ms` or plain milliseconds (`1500`) into milliseconds. */
export function parseDuration(input: string | number, what = 'duration'): number {
  if (typeof input === 'number') {
    if (Number.isFinite(input) && input >= 0) return input;
    throw usageError(`invalid ${what}: ${input}`, {
      hint: 'use e.g. 90s, 30m, 2h or milliseconds',
    });
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/i.exec(input);
  if (!m) {
    throw usageError(`invalid ${what}: ${JSON.stringify(input)}`, {
      hint: 'use e.g. 90s, 30m, 2h or a number of milliseconds',
    });
  }
  const unit = UNITS[(m[2] ?? 'ms').toLowerCase()] ?? 1;
  return Math.round(Number(m[1]) * unit);
}

/** Formats milliseconds for humans: 850ms, 12s, 3m20s, 2h05m. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}
