/**
 * `tracks recommend`: map tracks to pool slots. The mapping is a pure function of the plan and
 * the `pool status --json` document (CLI.md), so it is tested without a pool; the pool itself
 * is reached through a small port, by default the pool CLI run as a child process.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  WtpoolError,
  failure,
  run as runChild,
  serviceUnavailableError,
  toErrorCode,
  toExitCode,
  usageError,
} from '@wtpool/core';
import { checkName, checkTask } from '@wtpool/config';
import {
  DEFAULT_NON_WORK_TYPES,
  IN_FLIGHT_STATUSES,
  type Track,
  type TrackItem,
} from './tracks.js';

export interface PoolStatusJson {
  pool: { min: number; max: number; size: number; ready?: number; waiters?: number };
  slots: { id: string; state: string; lease?: unknown }[];
  queue?: unknown[];
}

/** What `pool acquire --json` prints (only the fields used here are typed). */
export interface AcquireJson {
  slot: string;
  path: string;
  branch: string;
  agent: string;
  task: string;
  [key: string]: unknown;
}

export interface PoolPort {
  status(): Promise<PoolStatusJson>;
  acquire(agent: string, task: string, priority: number): Promise<AcquireJson>;
}

export interface Assignment {
  track: string;
  /** A ready slot id, or null when the pool must grow for it. */
  slot: string | null;
  grow: boolean;
  priority: number;
  size: number;
  /** The task name used to lease the slot (track id and its first item). */
  task: string;
  agent?: string;
  lease?: AcquireJson;
  error?: { code: string; message: string };
}

export interface Recommendation {
  free_slots: number;
  growable: number;
  assignments: Assignment[];
  /** Tracks with no slot now (highest priority first). */
  waiting_for_slot: string[];
  /** Tracks whose later issues wait on dependencies (they follow in the same slot). */
  waiting_on_dependencies: { track: string; issues: number }[];
  /** Tracks with nothing to hand out (every item in flight or not work): never given a slot. */
  not_assignable: string[];
}

export interface RecommendOptions {
  agentPrefix?: string;
  /** Issue types that are not work (default: DEFAULT_NON_WORK_TYPES). */
  nonWorkTypes?: readonly string[];
}

/** Free work: not in flight, nobody's, a work type. Tracks from `analyze` hold nothing else. */
export function assignable(i: TrackItem, nonWork: ReadonlySet<string>): boolean {
  return (
    !IN_FLIGHT_STATUSES.has(i.status) &&
    i.status !== 'pinned' &&
    !i.assignee &&
    !nonWork.has(i.type)
  );
}

/** The task name of a track: `track-a-bd-17p` (checked and slugged like any pool task). */
export function trackTask(t: Track): string {
  return checkTask(`${t.track_id}-${t.items[0]?.id ?? 'empty'}`).slug;
}

export function recommend(
  tracks: Track[],
  status: PoolStatusJson,
  opts: RecommendOptions = {},
): Recommendation {
  const ready = status.slots.filter((s) => s.state === 'ready' && !s.lease).map((s) => s.id);
  const queued = status.queue?.length ?? status.pool.waiters ?? 0;
  // Waiters already queued get the growth first.
  const growable = Math.max(0, status.pool.max - status.pool.size - queued);
  const nonWork = new Set(opts.nonWorkTypes ?? DEFAULT_NON_WORK_TYPES);
  // A slot is leased for a track only when it has something free to hand out.
  const notAssignable = tracks.filter((t) => !t.items.some((i) => assignable(i, nonWork)));
  const ordered = tracks
    .filter((t) => !notAssignable.includes(t))
    .sort(
      (a, b) => a.priority - b.priority || b.size - a.size || a.track_id.localeCompare(b.track_id),
    );
  const assignments: Assignment[] = [];
  const waiting: string[] = [];
  let grown = 0;
  for (const t of ordered) {
    const slot = ready[assignments.length - grown];
    const grow = slot === undefined && grown < growable;
    if (slot === undefined && !grow) {
      waiting.push(t.track_id);
      continue;
    }
    if (grow) grown++;
    const a: Assignment = {
      track: t.track_id,
      slot: slot ?? null,
      grow,
      priority: t.priority,
      size: t.size,
      task: trackTask(t),
    };
    if (opts.agentPrefix !== undefined) {
      a.agent = checkName(`${opts.agentPrefix}-${assignments.length + 1}`, 'agent');
    }
    assignments.push(a);
  }
  return {
    free_slots: ready.length,
    growable,
    assignments,
    waiting_for_slot: waiting,
    waiting_on_dependencies: ordered
      .filter((t) => t.later.length)
      .map((t) => ({ track: t.track_id, issues: t.later.length })),
    not_assignable: notAssignable.map((t) => t.track_id),
  };
}

/** Leases the recommended slots, one after another; a failure is recorded and stops the rest. */
export async function acquireAssignments(rec: Recommendation, port: PoolPort): Promise<void> {
  for (const a of rec.assignments) {
    if (!a.agent) {
      throw usageError('leasing slots needs agent names', {
        hint: 'pass --agent-prefix P (agents are named P-1, P-2, …)',
      });
    }
    try {
      a.lease = await port.acquire(a.agent, a.task, a.priority);
    } catch (e) {
      const err = e instanceof WtpoolError ? e : failure('ERR_ACQUIRE', String(e));
      a.error = { code: err.code, message: err.message };
      throw err;
    }
  }
}

/** The pool CLI's bin: beside this code in the one-package install (worktree-pool), else @wtpool/pool's. */
export function poolBin(): string {
  const beside = fileURLToPath(new URL('../bin/pool.js', import.meta.url));
  if (existsSync(beside)) return beside;
  const req = createRequire(import.meta.url);
  let entry: string;
  try {
    entry = req.resolve('@wtpool/pool');
  } catch {
    throw serviceUnavailableError('the pool package (@wtpool/pool) is not installed', {
      hint: 'install it (`pnpm add -D @wtpool/pool`) to use `tracks recommend`',
    });
  }
  return path.join(path.dirname(entry), '..', 'bin', 'pool.js');
}

export interface CliPoolOptions {
  repo: string;
  config?: string | undefined;
  /** How long `acquire` may wait for a slot (passed as --timeout). */
  timeout?: string;
  bin?: string;
}

/** The default port: runs `pool … --json` with an argv array (no shell). */
export function cliPoolPort(opts: CliPoolOptions): PoolPort {
  const bin = opts.bin ?? poolBin();
  const common = ['--json', '--repo', opts.repo, ...(opts.config ? ['--config', opts.config] : [])];
  const run = async (args: string[]): Promise<unknown> => {
    const r = await runChild(process.execPath, [bin, ...args, ...common]);
    let doc: unknown;
    try {
      doc = JSON.parse(r.stdout);
    } catch {
      doc = undefined;
    }
    const e = (doc as { error?: { code?: string; message?: string; hint?: string } })?.error;
    if (r.code === 0 && doc !== undefined && !e) return doc;
    if (!e && /ERR_MODULE_NOT_FOUND|Cannot find module/.test(r.stderr)) {
      throw serviceUnavailableError(`the pool CLI at ${bin} is not built or not installed`, {
        hint: 'build the workspace (`pnpm build`) or install @wtpool/pool',
      });
    }
    throw new WtpoolError(
      e?.code ? toErrorCode(e.code) : 'ERR_POOL',
      toExitCode(r.code),
      `pool ${args[0]} failed: ${e?.message ?? (r.stderr.trim().split('\n')[0] || `exit ${r.code}`)}`,
      { hint: e?.hint ?? 'run `pool status` to see the pool' },
    );
  };
  return {
    status: async () => (await run(['status'])) as PoolStatusJson,
    acquire: async (agent, task, priority) =>
      (await run([
        'acquire',
        agent,
        task,
        '--priority',
        String(priority),
        ...(opts.timeout ? ['--timeout', opts.timeout] : []),
      ])) as AcquireJson,
  };
}
