/**
 * A per-phase trace of one command (issue 26): with `WTPOOL_TRACE=1`, every child process the
 * runner starts, every lock wait and hold, and every state write is timed, and on exit one table
 * goes to stderr: Node's own start, module loading up to the first traced step, each step (with
 * its offset from the process's start) and the total. Off by default: then a span costs one
 * boolean test.
 */
import { movedExtraCaCerts } from './extra-ca.js';

// `performance` is Node's global: its module loads on first use, i.e. only when tracing.

export const TRACING = process.env.WTPOOL_TRACE === '1';

interface Span {
  kind: string;
  what: string;
  at: number;
  ms: number;
}

const spans: Span[] = [];
let installed = false;

/** Records a finished step that began at `startedAt` (performance.now() time). */
export function traceSpan(kind: string, what: string, startedAt: number): void {
  if (!TRACING) return;
  spans.push({ kind, what, at: startedAt, ms: performance.now() - startedAt });
  if (!installed) {
    installed = true;
    process.once('exit', printTrace);
  }
}

/** Times fn as one step of the trace. */
export async function traced<T>(kind: string, what: string, fn: () => Promise<T> | T): Promise<T> {
  if (!TRACING) return fn();
  const t = performance.now();
  try {
    return await fn();
  } finally {
    traceSpan(kind, what, t);
  }
}

/**
 * Wraps a critical section: the time from now until it starts is the lock's `wait`, its own
 * run the lock's `held`.
 */
export function traceWaitAndHold<A, T>(
  what: string,
  fn: (arg: A) => Promise<T> | T,
): (arg: A) => Promise<T> {
  const t0 = performance.now();
  return async (arg) => {
    traceSpan('lock', `wait ${what}`, t0);
    const t1 = performance.now();
    try {
      return await fn(arg);
    } finally {
      traceSpan('lock', `held ${what}`, t1);
    }
  };
}

/** What a code-cached bin (packages/pool/bin/code-cache.js, D380) says about its bundle's load. */
export interface BundleLoad {
  file: string;
  cache: string;
  readMs: number;
  compileMs: number;
  topLevelMs: number;
  written: string | null;
}

const bundleLoad = (): BundleLoad | undefined =>
  (globalThis as Record<symbol, BundleLoad | undefined>)[Symbol.for('wtpool.bin.load')];

/** The table: offsets are ms since the process started (performance's time origin). */
export function formatTrace(
  list: readonly Span[] = spans,
  total = performance.now(),
  load: BundleLoad | undefined = bundleLoad(),
): string {
  const boot = performance.nodeTiming.bootstrapComplete;
  const first = list.length ? Math.min(...list.map((s) => s.at)) : total;
  const rows: string[] = [
    `trace: node start ${boot.toFixed(1)} ms; modules and set-up until the first step ${(first - boot).toFixed(1)} ms`,
  ];
  const ca = movedExtraCaCerts();
  if (ca !== null) {
    rows.push(
      `trace: NODE_EXTRA_CA_CERTS (${ca}) kept from Node's start by the launcher; loaded at the first TLS connection`,
    );
  }
  if (load) {
    const ms = (n: number) => `${n.toFixed(1)} ms`;
    rows.push(
      `trace: bundle ${load.file.split(/[\\/]/).pop()}: read+hash ${ms(load.readMs)}, compile ${ms(load.compileMs)} (code cache ${load.cache}), top level ${ms(load.topLevelMs)}${load.written ? `; code cache written to ${load.written}` : ''}`,
    );
  }
  const byKind = new Map<string, number>();
  for (const s of [...list].sort((a, b) => a.at - b.at)) {
    rows.push(
      `trace: +${s.at.toFixed(1).padStart(7)} ms ${s.ms.toFixed(1).padStart(7)} ms  ${s.kind.padEnd(6)} ${s.what}`,
    );
    byKind.set(s.kind, (byKind.get(s.kind) ?? 0) + s.ms);
  }
  const sums = [...byKind].map(([k, ms]) => `${k} ${ms.toFixed(1)} ms`).join(', ');
  rows.push(`trace: total ${total.toFixed(1)} ms${sums ? ` (${sums}; steps may overlap)` : ''}`);
  return rows.join('\n');
}

function printTrace(): void {
  process.stderr.write(formatTrace() + '\n');
}
