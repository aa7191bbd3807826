/**
 * Turning measurements into alerts. Levels: ok < warning < error; `monitor status` exits
 * 0, 20 or 21 for the worst level found.
 */
import type { Config } from '@wtpool/config';

export type Level = 'ok' | 'warning' | 'error';

export interface Alert {
  level: Exclude<Level, 'ok'>;
  /** postgres | fds | disk | redis | pool */
  check: string;
  message: string;
  value?: number;
  threshold?: number;
}

export const EXIT_WARNING = 20;
export const EXIT_ERROR = 21;

const RANK: Record<Level, number> = { ok: 0, warning: 1, error: 2 };

export function worst(alerts: Alert[]): Level {
  let level: Level = 'ok';
  for (const a of alerts) if (RANK[a.level] > RANK[level]) level = a.level;
  return level;
}

export function exitCodeFor(level: Level): number {
  return level === 'error' ? EXIT_ERROR : level === 'warning' ? EXIT_WARNING : 0;
}

export type Thresholds = Config['monitor']['thresholds'];

/** A holder at this share of its descriptor limit (or more) is an error, not a warning. */
export const FD_ERROR_PCT = 95;

/** Compares `value` with a warning and an error level (inclusive: reaching a level trips it). */
export function levelAlert(
  check: string,
  what: string,
  value: number,
  warn: number,
  error: number,
  fmt: (n: number) => string = String,
): Alert | null {
  for (const [level, threshold] of [
    ['error', error],
    ['warning', warn],
  ] as const) {
    if (value >= threshold) {
      const message = `${what} ${fmt(value)} ≥ ${level} level ${fmt(threshold)}`;
      return { level, check, message, value, threshold };
    }
  }
  return null;
}
