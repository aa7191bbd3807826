/**
 * Value kinds shared by the config file, environment overrides and command-line flags: durations,
 * integers, numbers, booleans and lists, each coerced and bounded in one place (D320). A coercer
 * returns the value or what was expected (a phrase after "must be"); the caller turns that into
 * its own error: a config error (exit 3) naming the key, or a usage error (exit 2) naming the flag.
 */
import { usageError } from './errors.js';

const UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/** A value, or the phrase it failed: `{ expected: 'a duration of at least 10s, got "0"' }`. */
export type Coerced<T> = { value: T; expected?: undefined } | { expected: string };

/** A duration bound: milliseconds or duration text (`'10s'`, `'7d'`). */
export type DurationBound = number | string;

export interface Bounds<B = number> {
  min?: B | undefined;
  max?: B | undefined;
}

/**
 * Every duration's ceiling unless its key says less: Node's timers hold at most 2^31-1 ms
 * (24.8 days; a longer setTimeout/setInterval fires at once), and a duration feeds timers
 * (heartbeats every ttl/3, waits, samples).
 */
export const DURATION_MAX = '24d';
/** Every duration's floor unless its key says `min: 0`: a zero or negative duration is refused. */
export const DURATION_MIN = 1;

const DURATION_TEXT = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/i;

/** The milliseconds of duration text or a number, or undefined when it is not a duration. */
function durationMs(input: unknown): number | undefined {
  if (typeof input === 'number') return Number.isFinite(input) ? Math.round(input) : undefined;
  if (typeof input !== 'string') return undefined;
  const m = DURATION_TEXT.exec(input.trim());
  if (!m) return undefined;
  const ms = Math.round(Number(m[1]) * (UNITS[(m[2] ?? 'ms').toLowerCase()] ?? 1));
  return Number.isFinite(ms) ? ms : undefined;
}

const boundMs = (b: DurationBound): number => {
  const ms = durationMs(b);
  if (ms === undefined) throw usageError(`invalid duration bound ${JSON.stringify(b)}`);
  return ms;
};

const boundText = (b: DurationBound) => (typeof b === 'number' ? formatDuration(b) : b);

const show = (v: unknown): string => {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return `${typeof v} ${typeof v === 'string' ? JSON.stringify(v) : String(v)}`;
};

/** The bounds of a duration, as written in the schema: `from 10s to 7d`. */
export function durationRange(b: Bounds<DurationBound> = {}): string {
  const min = b.min ?? DURATION_MIN;
  return `from ${boundText(min)} to ${boundText(b.max ?? DURATION_MAX)}`;
}

/**
 * A duration: `90s`, `30m`, `2h`, `1d`, `250ms`, plain milliseconds (`1500`, text or a number),
 * within `bounds` (default: 1ms to 24d). `0`, `00`, `-1s`, `1e99` and `99999999999999999999d`
 * are refused.
 */
export function coerceDuration(
  input: unknown,
  bounds: Bounds<DurationBound> = {},
): Coerced<number> {
  const expected = `a duration (90s, 30m, 2h, 1d or milliseconds) ${durationRange(bounds)}, got ${show(input)}`;
  const ms = durationMs(input);
  if (ms === undefined) return { expected };
  if (ms < boundMs(bounds.min ?? DURATION_MIN) || ms > boundMs(bounds.max ?? DURATION_MAX)) {
    return { expected };
  }
  return { value: ms };
}

const range = (b: Bounds) =>
  b.min === undefined && b.max === undefined ? '' : ` from ${b.min ?? '…'} to ${b.max ?? '…'}`;

// Text forms (flags, environment): canonical decimals only, no `0x`, `0o`, `1e3`, `+1`, `01`.
const INT_TEXT = /^-?(?:0|[1-9]\d*)$/;
const NUMBER_TEXT = /^-?(?:0|[1-9]\d*)(?:\.\d+)?$/;

/** An integer within bounds: a number, or (`text`) its canonical decimal form. */
export function coerceInt(input: unknown, bounds: Bounds = {}, text = false): Coerced<number> {
  return coerceNumeric(input, bounds, text, true);
}

/** A finite number within bounds: a number, or (`text`) its decimal form. */
export function coerceNumber(input: unknown, bounds: Bounds = {}, text = false): Coerced<number> {
  return coerceNumeric(input, bounds, text, false);
}

function coerceNumeric(input: unknown, b: Bounds, text: boolean, int: boolean): Coerced<number> {
  const expected = `${int ? 'an integer' : 'a number'}${range(b)}, got ${show(input)}`;
  let n: number;
  if (typeof input === 'number') n = input;
  else if (text && typeof input === 'string' && (int ? INT_TEXT : NUMBER_TEXT).test(input.trim())) {
    n = Number(input.trim());
  } else return { expected };
  if (!Number.isFinite(n) || (int && !Number.isSafeInteger(n))) return { expected };
  if ((b.min !== undefined && n < b.min) || (b.max !== undefined && n > b.max)) return { expected };
  return { value: n };
}

/** A boolean, or (`text`) 1/true/yes/on and 0/false/no/off. */
export function coerceBoolean(input: unknown, text = false): Coerced<boolean> {
  if (typeof input === 'boolean') return { value: input };
  if (text && typeof input === 'string') {
    if (/^(1|true|yes|on)$/i.test(input.trim())) return { value: true };
    if (/^(0|false|no|off)$/i.test(input.trim())) return { value: false };
  }
  return { expected: `true or false, got ${show(input)}` };
}

/** A list of strings, or (`text`) comma-separated text: `a, b,,c` is `['a', 'b', 'c']`. */
export function coerceList(input: unknown, text = false): Coerced<string[]> {
  if (Array.isArray(input) && input.every((s) => typeof s === 'string')) return { value: input };
  if (text && typeof input === 'string') {
    return {
      value: input
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    };
  }
  return { expected: `a list of strings, got ${show(input)}` };
}

/**
 * Parses a duration (see coerceDuration) or throws a usage error (exit 2) naming `what`.
 * Bounds default to 0 … 24d.
 */
export function parseDuration(
  input: string | number,
  what = 'duration',
  bounds: Bounds<DurationBound> = { min: 0 },
): number {
  const r = coerceDuration(input, bounds);
  if (r.expected !== undefined) {
    throw usageError(`invalid ${what}: must be ${r.expected}`, {
      hint: 'use e.g. 90s, 30m, 2h or milliseconds',
    });
  }
  return r.value;
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
