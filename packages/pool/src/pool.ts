/**
 * WorktreePool: the library's facade. Slots (git worktrees), leases with fencing tokens, a
 * fair priority queue, autoscaling, and a release that never loses work. The logic lives in
 * modules named after what they do; this class only wires them to one PoolContext:
 *
 * - lease-store.ts / file-lease-store.ts: the shared state (registry, queue, fencing, leases)
 * - context.ts: the registry transaction every change goes through
 * - state.ts: the decisions taken inside a transaction (pure on the draft)
 * - acquire.ts, wait.ts: taking a slot, waiting in the queue
 * - release.ts: release, heartbeat, reclaim (reset with rescue)
 * - provision.ts, scale.ts, plan-runner.ts: creating, growing, shrinking, refreshing slots
 * - slot-services.ts: the slot's databases, Redis, ports, env
 * - rescue/: saving a worktree's work before a reset, listing, showing and restoring it
 * - queries.ts, doctor.ts: reading the pool, repairing drift
 */
import path from 'node:path';
import { isWtpoolError } from '@wtpool/core';
import {
  loadConfig,
  slotNames,
  type Config,
  type LoadOptions,
  type LoadedConfig,
  type RepoPaths,
  type SlotNames,
} from '@wtpool/config';
import { acquire } from './acquire.js';
import {
  errMessage,
  event,
  liveFacts,
  silent,
  type PoolContext,
  type Reporter,
} from './context.js';
import type { DoctorReport } from './doctor.js';
import { createStore } from './store.js';
import type { LeaseStore } from './lease-store.js';
import { runPlan } from './plan-runner.js';
import { procAlive } from './proc.js';
import { getStatus, keptBranches, snapshot } from './queries.js';
import {
  rescueList,
  rescueRestore,
  rescueShow,
  rescueUnsaved,
  type RestoreTarget,
} from './rescue/index.js';
import { heartbeat, release } from './release.js';
import { cleanup, initialize, refresh, scaleIn, scaleOut } from './scale.js';
import { checkServices, envOf } from './slot-services.js';
import { leaseOver } from './state.js';
import type {
  AcquireResult,
  LeaseOptions,
  PoolState,
  PoolStatus,
  ReleaseOptions,
  SlotRecord,
} from './types.js';

export type { Reporter } from './context.js';

/** The agent name of a library lease when the caller gives none: $WTPOOL_AGENT, else `<script>-<pid>`. */
export function defaultAgent(): string {
  const env = process.env.WTPOOL_AGENT;
  if (env) return env;
  const script = path
    .basename(process.argv[1] ?? 'node')
    .replace(/\.[cm]?[jt]s$/, '')
    .replace(/[^A-Za-z0-9._@+-]/g, '-')
    .replace(/\.{2,}/g, '.')
    .replace(/^[^A-Za-z0-9]+/, '')
    .slice(0, 40);
  return `${script || 'lib'}-${process.pid}`;
}

function isLoaded(x: LoadedConfig | LoadOptions): x is LoadedConfig {
  return (
    typeof (x as LoadedConfig).repo === 'object' &&
    x.repo !== null &&
    'stateDir' in (x as LoadedConfig).repo
  );
}

export class WorktreePool {
  readonly loaded: LoadedConfig;
  readonly config: Config;
  readonly repo: RepoPaths;
  readonly store: LeaseStore;
  readonly #ctx: PoolContext;

  /**
   * From loadConfig() output, or from `{ repo, config }` options (then loadConfig runs here).
   * `clock` replaces Date.now for every decision the pool takes (TTLs, idle shrinking, broken
   * slots' backoff): tests move time forward instead of sleeping.
   */
  constructor(opts: LoadedConfig | LoadOptions = {}, o: { clock?: () => number } = {}) {
    this.loaded = isLoaded(opts) ? opts : loadConfig(opts);
    this.config = this.loaded.config;
    this.repo = this.loaded.repo;
    this.store = createStore(this.loaded);
    const ctx: PoolContext = {
      loaded: this.loaded,
      config: this.config,
      repo: this.repo,
      store: this.store,
      reporter: silent,
      clock: o.clock ?? Date.now,
      runPlan: (plan) => runPlan(ctx, plan),
    };
    this.#ctx = ctx;
  }

  /** Where progress and warnings go (the CLI sets its Output). */
  get reporter(): Reporter {
    return this.#ctx.reporter;
  }
  set reporter(r: Reporter) {
    this.#ctx.reporter = r;
  }

  names(id: string | number): SlotNames {
    return slotNames(this.config, this.repo, id);
  }

  /** The registry as it is now (no lock: a whole committed version). */
  readState(): Promise<PoolState> {
    return this.store.read();
  }

  event(type: string, details: Record<string, unknown> = {}): Promise<void> {
    return event(this.#ctx, type, details);
  }

  /** Housekeeping pass: reclaim expired leases, recover slots of dead workers, drop dead tickets, retire idle slots. */
  cleanup(): ReturnType<typeof cleanup> {
    return cleanup(this.#ctx);
  }

  /**
   * Makes the pool hold at least `size` slots (default scale.min), all ready: creates missing
   * ones, recreates registered slots whose worktree was deleted or pruned. Idempotent.
   */
  async initialize(opts: { size?: number } = {}): Promise<PoolStatus> {
    const size = opts.size ?? this.config.scale.min;
    if (this.config.pool.cleanupOnStartup) await this.doctorFix();
    await initialize(this.#ctx, size);
    return getStatus(this.#ctx);
  }

  /** Saves uncommitted work or commits not in the base of `dir` to a rescue ref (null: nothing to save). */
  rescueUnsaved(
    dir: string,
    refPrefix: string,
    details: { slot?: string; path?: string; reason: string },
  ): Promise<string | null> {
    return rescueUnsaved(this.#ctx, dir, refPrefix, details);
  }

  /**
   * Leases a slot: a fresh branch `pool/<slot>/<task-slug>` from the base, a lease file with a
   * fencing token, the `.pool-owner` marker and `.env.worktree`. Waits in the fair queue unless
   * `wait` is false (then exit 75 at once when nothing is free).
   */
  lease(o: LeaseOptions): Promise<AcquireResult> {
    return acquire(this.#ctx, o);
  }

  /** Env of an existing lease (for `pool run` and status), without allocating anything. */
  envOf(id: string): Promise<Record<string, string>> {
    return envOf(this.#ctx, id);
  }

  /**
   * Releases a lease: refuses a dirty worktree (exit 5) unless `force`, which first saves the
   * work to a rescue ref. Then back to the base; a branch with commits is kept for integration.
   */
  release(o: ReleaseOptions): ReturnType<typeof release> {
    return release(this.#ctx, o);
  }

  /** Renews a lease's TTL (heartbeat). */
  heartbeat(o: {
    slot: string;
    agent: string;
    token?: number | null;
  }): ReturnType<typeof heartbeat> {
    return heartbeat(this.#ctx, o);
  }

  /**
   * Leases a slot, runs `fn` in it, and always releases: the same lifecycle as `pool run`.
   * This process is the lease's holder (if it dies, the lease is reclaimed at once); a
   * heartbeat renews the lease every TTL/3 while `fn` runs, so long work does not outlive the
   * TTL; at the end the slot is released, and work `fn` left uncommitted is saved to a rescue
   * ref first (`release({ force: true })`). If a heartbeat finds the lease gone (taken back,
   * e.g. after this process was stopped past its TTL), `signal` aborts: `fn` should stop.
   *
   * `agent` names the caller in status, events and the lease record; default: $WTPOOL_AGENT,
   * else `<script name>-<pid>`.
   */
  async withLease<T>(
    taskOrOpts: string | (Partial<LeaseOptions> & { task: string }),
    fn: (lease: AcquireResult & { signal: AbortSignal }) => Promise<T> | T,
  ): Promise<T> {
    const o = typeof taskOrOpts === 'string' ? { task: taskOrOpts } : taskOrOpts;
    const lease = await this.lease({
      agent: defaultAgent(),
      holderPid: process.pid,
      ...o,
    });
    const aborter = new AbortController();
    const ttl = o.ttlMs ?? this.config.pool.leaseTtl;
    const beat = setInterval(
      () => {
        this.heartbeat({ slot: lease.slot, agent: lease.agent }).catch((e: unknown) => {
          this.reporter.warn(`heartbeat of ${lease.slot} failed: ${errMessage(e)}`);
          if (isWtpoolError(e) && (e.exitCode === 4 || e.exitCode === 5)) aborter.abort(e);
        });
      },
      Math.max(1000, Math.floor(ttl / 3)),
    );
    beat.unref();
    try {
      return await fn({ ...lease, signal: aborter.signal });
    } finally {
      clearInterval(beat);
      await this.release({ slot: lease.slot, agent: lease.agent, force: true });
    }
  }

  /**
   * Slots, leases, queue and capacity (CLI.md shape). Read-only: a lease that is over is shown
   * (`lease.over`), not reclaimed (`cleanup()` or `doctor({ fix: true })` do that). The
   * argument is accepted for older callers and ignored.
   */
  getStatus(_opts: { sweep?: boolean } = {}): Promise<PoolStatus> {
    return getStatus(this.#ctx);
  }

  /** The registry snapshot: the status shape plus the raw registry and where it lives. */
  snapshot(): ReturnType<typeof snapshot> {
    return snapshot(this.#ctx);
  }

  /** Branches released leases kept for integration (they have commits not in the base), oldest first. */
  keptBranches(): ReturnType<typeof keptBranches> {
    return keptBranches(this.#ctx);
  }

  /** Saved work refs (`refs/wtpool/rescue/<slot>/<timestamp>`), newest first. */
  rescueList(): ReturnType<typeof rescueList> {
    return rescueList(this.#ctx);
  }

  /** What a rescue holds: its commits, dirty and ignored files, nested repositories, what was not saved. */
  rescueShow(ref: string): ReturnType<typeof rescueShow> {
    return rescueShow(this.#ctx, ref);
  }

  /** Restores a rescue byte for byte into a directory or a slot the caller holds (rescue/restore.ts). */
  rescueRestore(ref: string, target: RestoreTarget): ReturnType<typeof rescueRestore> {
    return rescueRestore(this.#ctx, ref, target);
  }

  /** Grows by one `scale.step` now (up to max). */
  scaleOut(): Promise<{ added: string[]; size: number }> {
    return scaleOut(this.#ctx);
  }

  /** Retires up to one `scale.step` of ready slots above min now. */
  scaleIn(): Promise<{ removed: string[]; failed: string[]; size: number }> {
    return scaleIn(this.#ctx);
  }

  /** Moves every ready slot to the base's current commit (clean, caches kept), re-provisioning it. */
  refresh(): Promise<{ refreshed: string[] }> {
    return refresh(this.#ctx);
  }

  /** Problems the services report for a slot (doctor). */
  checkServices(id: string): Promise<string[]> {
    return checkServices(this.#ctx, id);
  }

  /** `pool doctor [--fix]`: drift between the registry, git and the services (repaired with fix). */
  async doctor(opts: { fix: boolean }): Promise<DoctorReport> {
    const { runDoctor } = await import('./doctor.js');
    return runDoctor(this.#ctx, opts);
  }

  /** Used by `doctor --fix` / cleanupOnStartup. */
  async doctorFix(): Promise<void> {
    await this.doctor({ fix: true });
  }

  /** Is the lease of a slot over (for the monitor)? */
  leaseOver(slot: SlotRecord): string | null {
    return slot.lease ? leaseOver(slot.lease, liveFacts(this.#ctx)) : null;
  }

  /** Processes still alive that own slow work, for doctor. */
  ownerAlive(slot: SlotRecord): boolean {
    return !slot.owner || procAlive(slot.owner);
  }
}

/** `pool doctor [--fix]` on a pool (same as `pool.doctor(opts)`). */
export function doctor(pool: WorktreePool, opts: { fix: boolean }): Promise<DoctorReport> {
  return pool.doctor(opts);
}
