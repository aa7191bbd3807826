/**
 * The one way a test waits for something to happen: poll a condition, bounded by a number of
 * attempts (not by a wall clock, so a loaded machine slows a test down instead of failing it).
 * A fixed sleep is never synchronisation (an ESLint rule forbids it in tests); `jitter` is for
 * tests that want random timing on purpose, and says so by its name.
 */
const pause = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface UntilOptions {
  /** How many times fn is tried (default 1200: a minute at the default pace on a quiet machine). */
  attempts?: number;
  /** Pause between attempts, in ms (default 50). */
  everyMs?: number;
}

/** Polls fn until it returns something truthy and returns that; throws naming `what` after the last attempt. */
export async function until<T>(
  what: string,
  fn: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  opts: UntilOptions = {},
): Promise<T> {
  const attempts = opts.attempts ?? 1200;
  for (let i = 0; i < attempts; i++) {
    const v = await fn();
    if (v) return v;
    await pause(opts.everyMs ?? 50);
  }
  throw new Error(`gave up waiting for ${what} after ${attempts} attempts`);
}

/** A random pause of up to maxMs: randomised timing for race tests, never a wait for an event. */
export function jitter(maxMs: number, minMs = 0): Promise<void> {
  return pause(minMs + Math.random() * (maxMs - minMs));
}
