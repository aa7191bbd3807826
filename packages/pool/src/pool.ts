/**
 * WorktreePool: slots (git worktrees), leases with fencing tokens, a fair priority queue,
 * autoscaling, and a release that never loses work. The registry is a JsonStore; every change
 * happens inside `tx()`, and slow work (git worktree add, resets, providers) runs outside it:
 * reserve (provisioning / releasing / retiring, owned by this process) → work → publish.
 */
import { watch, promises as fs } from 'node:fs';
import path from 'node:path';
import {
  checkName,
  checkTask,
  loadConfig,
  slotId,
  slotNames,
  slotNumber,
  type Config,
  type LoadOptions,
  type LoadedConfig,
  type RepoPaths,
  type SlotNames,
} from '@wtpool/config';
import {
  conflictError,
  failure,
  formatDuration,
  isWtpoolError,
  notFoundError,
  poolFullError,
  serviceUnavailableError,
  usageError,
} from '@wtpool/core';
import { JsonStore, createExclusive, pidAlive, readJsonFile, writeFileAtomic } from '@wtpool/lock';
import type { ProviderContext, SlotProvider } from '@wtpool/services';
import { ENV_FILE, writeEnvFile } from './envfile.js';
import { appendEvent } from './events.js';
import { withGitLock } from './git.js';
import { procAlive, procRef } from './proc.js';
import {
  counts,
  dispatch,
  emptyPlan,
  findGrant,
  grant,
  initialState,
  leaseOver,
  anyRetryDue,
  markBroken,
  markReady,
  pickReady,
  planIsEmpty,
  reserveGrowth,
  retireIdle,
  reviveBroken,
  slotList,
  sweep,
  type GrantRequest,
  type Plan,
  type Reclaim,
} from './state.js';
import { toStatus } from './status.js';
import type {
  AcquireResult,
  KeptBranch,
  Lease,
  LeaseFile,
  LeaseOptions,
  PoolState,
  PoolStatus,
  ReleaseOptions,
  ReleaseResult,
  SlotRecord,
  Ticket,
} from './types.js';
import {
  OWNER_MARKER,
  addWorktree,
  commitsAhead,
  deleteBranch,
  deleteBranchWithoutGit,
  detachWithoutGit,
  removePoolFiles,
  ensureExcludes,
  isDirty,
  listRefs,
  readBranchCommit,
  removeWorktree,
  resetToBase,
  saveRescue,
  switchToNewBranch,
  worktreeExists,
  worktreeStatus,
  type OwnerMarker,
  type WorktreeStatus,
  type RefInfo,
} from './worktree.js';

/** Longest sleep of a waiter between two looks at the registry (fs.watch wakes it sooner). */
const POLL_MS = 500;
/** How many kept-branch records the registry remembers. */
const KEPT_MAX = 500;

/** Where the pool reports progress and warnings (the CLI passes its Output). */
export interface Reporter {
  progress(message: string): void;
  warn(message: string): void;
}

const silent: Reporter = { progress: () => {}, warn: () => {} };

function isLoaded(x: LoadedConfig | LoadOptions): x is LoadedConfig {
  return (
    typeof (x as LoadedConfig).repo === 'object' &&
    x.repo !== null &&
    'stateDir' in (x as LoadedConfig).repo
  );
}

const errMessage = (e: unknown) => (e instanceof Error ? e.message : String(e));

type Services = {
  svc: typeof import('@wtpool/services');
  providers: SlotProvider[];
};

export class WorktreePool {
  readonly loaded: LoadedConfig;
  readonly config: Config;
  readonly repo: RepoPaths;
  readonly store: JsonStore<PoolState>;
  reporter: Reporter = silent;
  private servicesP: Promise<Services> | undefined;

  /** From loadConfig() output, or from `{ repo, config }` options (then loadConfig runs here). */
  constructor(opts: LoadedConfig | LoadOptions = {}) {
    this.loaded = isLoaded(opts) ? opts : loadConfig(opts);
    this.config = this.loaded.config;
    this.repo = this.loaded.repo;
    this.store = new JsonStore<PoolState>(path.join(this.repo.stateDir, 'state.json'), {
      initial: initialState,
      timeout: 120_000,
    });
  }

  names(id: string | number): SlotNames {
    return slotNames(this.config, this.repo, id);
  }

  private readonly branchFor = (slot: string, slug: string) => this.names(slot).branch(slug);
  private readonly pathOf = (n: number) => this.names(n).path;
  private readonly pathOfId = (id: string) => this.names(id).path;
  private readonly leaseFileOf = (slot: string) => this.names(slot).leaseFile;

  /** The registry as it is now (no lock: files are replaced atomically). */
  async readState(): Promise<PoolState> {
    return { ...initialState(), ...(await this.store.read()) };
  }

  event(type: string, details: Record<string, unknown> = {}): Promise<void> {
    return appendEvent(this.repo.stateDir, type, details);
  }

  // ------------------------------------------------------------------ transactions

  /**
   * One registry transaction: housekeeping (dead tickets, expired leases, dead workers), then
   * `fn`, then optional growth/shrink, then hand ready slots to the queue. Returns fn's result
   * and the slow work decided, which the caller runs outside the lock (runPlan).
   */
  private async tx<R>(
    fn: (draft: PoolState, plan: Plan, now: number) => R,
    o: { grow?: boolean; shrink?: boolean; revive?: boolean } = {},
  ): Promise<{ result: R; plan: Plan }> {
    const out = await this.store.update((d) => {
      const draft = Object.assign(d, { ...initialState(), ...d });
      const now = Date.now();
      const plan = sweep(draft, { now, leaseFileOf: this.leaseFileOf });
      const result = fn(draft, plan, now);
      if (o.revive) {
        // Demand nothing ready will meet (the queue, or this request): retry broken slots first.
        const c = counts(draft);
        const want = Math.max(draft.queue.length, result === undefined ? 1 : 0);
        reviveBroken(draft, plan, now, want - c.ready - c.provisioning);
      }
      if (o.grow) reserveGrowth(draft, this.config, this.pathOf, now, plan);
      if (o.shrink) retireIdle(draft, this.config, this.config.scale.idleShrinkAfter, now, plan);
      dispatch(draft, plan, this.branchFor, this.pathOfId, now);
      return { result, plan };
    });
    await this.logPlan(out.plan);
    return out;
  }

  private async logPlan(plan: Plan): Promise<void> {
    for (const t of plan.dropped) {
      await this.event('dequeue', {
        agent: t.agent,
        task: t.task,
        ticket: t.id,
        reason: 'waiter-dead',
        waiterPid: t.waiter.pid,
      });
    }
    if (plan.grown.length) await this.event('grow', { slots: plan.grown, by: plan.grown.length });
  }

  /** Runs the slow work of a plan; failures mark slots broken and are reported, not thrown. */
  private async runPlan(plan: Plan): Promise<void> {
    const jobs: Promise<unknown>[] = plan.reclaim.map((r) => this.reclaim(r));
    if (plan.provision.length) jobs.push(this.provision(plan.provision.map((s) => s.id)));
    for (const s of plan.retire) jobs.push(this.retire(s.id));
    const results = await Promise.allSettled(jobs);
    for (const r of results) if (r.status === 'rejected') this.reporter.warn(errMessage(r.reason));
  }

  /** Would a transaction find housekeeping to do? (Checked lock-free on a copy.) */
  private needsSweep(st: PoolState, shrink: boolean): boolean {
    const copy = structuredClone(st);
    const plan = sweep(copy, { now: Date.now(), leaseFileOf: this.leaseFileOf });
    if (shrink) retireIdle(copy, this.config, this.config.scale.idleShrinkAfter, Date.now(), plan);
    return !planIsEmpty(plan);
  }

  /** Housekeeping pass: reclaim expired leases, recover slots of dead workers, drop dead tickets, retire idle slots. */
  async cleanup(): Promise<{
    reclaimed: string[];
    recovered: string[];
    retired: string[];
    dropped: number;
  }> {
    const { plan } = await this.tx(() => null, { shrink: true });
    await this.runPlan(plan);
    return {
      reclaimed: plan.reclaim.map((r) => r.slot.id),
      recovered: plan.provision.map((s) => s.id),
      retired: plan.retire.map((s) => s.id),
      dropped: plan.dropped.length,
    };
  }

  // ------------------------------------------------------------------ providers

  private services(): Promise<Services> {
    // Lazy: service clients (pg, the Redis socket client) load only when a command needs them.
    this.servicesP ??= import('@wtpool/services').then(async (svc) => ({
      svc,
      providers: await svc.createProviders(this.loaded),
    }));
    return this.servicesP;
  }

  private providerCtx(slot: string): ProviderContext {
    return {
      config: this.config,
      repo: this.repo,
      names: this.names(slot),
      event: (type, details) => this.event(type, { slot, ...details }),
      progress: (m) => this.reporter.progress(m),
      warn: (m) => this.reporter.warn(m),
    };
  }

  /** One lifecycle step on every provider (services' lifecycle: a release tries them all). */
  private async eachProvider(
    slot: string,
    step: 'provision' | 'release' | 'destroy',
  ): Promise<void> {
    const { svc, providers } = await this.services();
    const run = {
      provision: svc.provisionSlot,
      release: svc.releaseSlot,
      destroy: svc.destroySlot,
    };
    await run[step](providers, this.providerCtx(slot));
  }

  /** The keys the pool itself puts in every slot's env. */
  private baseEnv(id: string): Record<string, string> {
    return { WORKTREE_ID: id, POOL_STATE_DIR: this.repo.stateDir };
  }

  // ------------------------------------------------------------------ init / provisioning

  /**
   * Makes the pool hold at least `size` slots (default scale.min), all ready: creates missing
   * ones, recreates registered slots whose worktree was deleted or pruned. Idempotent.
   */
  async initialize(opts: { size?: number } = {}): Promise<PoolStatus> {
    const size = opts.size ?? this.config.scale.min;
    if (!Number.isInteger(size) || size < 0) throw usageError(`invalid size ${size}`);
    if (size > this.config.scale.max) {
      throw usageError(`--size ${size} is above scale.max (${this.config.scale.max})`, {
        hint: 'raise scale.max in pool.config.yaml, or ask for fewer slots',
      });
    }
    if (this.config.pool.cleanupOnStartup) await this.doctorFix();
    await ensureExcludes(this.repo.commonDir);
    const { plan } = await this.tx((draft, plan, now) => {
      for (const s of slotList(draft)) {
        // Self-healing: broken slots (whatever their backoff) and idle slots whose worktree is
        // gone or moved are provisioned again.
        if (
          s.state === 'broken' ||
          (s.state === 'ready' && (s.path !== this.pathOfId(s.id) || !worktreeExists(s.path)))
        ) {
          s.state = 'provisioning';
          s.owner = procRef();
          plan.provision.push(s);
        }
      }
      const missing = size - counts(draft).size;
      for (let i = 0; i < missing; i++) {
        const n = plan.provision.length;
        reserveGrowth(
          draft,
          { ...this.config, scale: { ...this.config.scale, step: 1 } },
          this.pathOf,
          now,
          plan,
          true,
        );
        if (plan.provision.length === n) break;
      }
    });
    await this.runPlan(plan);
    return this.getStatus({ sweep: false });
  }

  /** Creates (or re-creates) the worktrees of slots reserved by this process, then publishes them ready. */
  private async provision(ids: string[]): Promise<void> {
    await ensureExcludes(this.repo.commonDir);
    const registered = (await this.readState()).slots;
    const ready: string[] = [];
    const services = async (id: string) => {
      try {
        // A slot that failed before (broken) may hold a half-reset database or an unflushed
        // Redis DB: reset its services before provisioning them again.
        if (registered[id]?.failures) await this.eachProvider(id, 'release');
        await this.eachProvider(id, 'provision');
        ready.push(id);
      } catch (e) {
        await this.markBroken(id, e);
      }
    };
    // A slot's services start as soon as its worktree exists, while git creates the next one.
    const started: Promise<void>[] = [];
    try {
      await withGitLock(this.repo.stateDir, 'worktrees', async () => {
        for (const id of ids) {
          this.reporter.progress(`creating worktree ${id}…`);
          try {
            const old = registered[id]?.path;
            if (old && old !== this.names(id).path) await this.removeMoved(id, old);
            await this.createWorktree(id);
            started.push(services(id));
          } catch (e) {
            await this.markBroken(id, e);
          }
        }
      });
    } finally {
      await Promise.all(started); // never throws: services() reports its own failures
    }
    for (const id of ready) await this.event('provision', { slot: id, path: this.names(id).path });
    await this.publish(ready);
  }

  /**
   * Before a worktree is reset or removed outside a release: uncommitted work, or commits on a
   * HEAD not in the base (a detached HEAD's commits would become unreachable), go to a rescue ref.
   */
  async rescueUnsaved(
    dir: string,
    refPrefix: string,
    details: { slot?: string; path?: string; reason: string },
  ): Promise<string | null> {
    const unsaved =
      (await isDirty(dir)) || (await commitsAhead(dir, this.config.pool.base, 'HEAD')) > 0;
    if (!unsaved) return null;
    const ref = await saveRescue(
      dir,
      refPrefix,
      `wtpool rescue of ${details.slot ?? dir} (${details.reason})`,
    );
    await this.event('rescue', { ...details, ref });
    return ref;
  }

  /** pool.root changed: the slot's old worktree goes (its work saved first). Under the worktrees lock. */
  private async removeMoved(id: string, old: string): Promise<void> {
    if (worktreeExists(old)) {
      await this.rescueUnsaved(old, this.names(id).rescueRefPrefix, { slot: id, reason: 'moved' });
      await removeWorktree(this.repo.mainRoot, old);
    }
  }

  private async createWorktree(id: string): Promise<void> {
    const dir = this.names(id).path;
    if (worktreeExists(dir)) {
      // A worktree is already there (registry lost, refresh): keep nothing of it unsaved.
      await this.rescueUnsaved(dir, this.names(id).rescueRefPrefix, {
        slot: id,
        reason: 'provision',
      });
      await resetToBase(dir, this.config.pool.base, this.config.pool.keep);
      return;
    }
    const entries = await fs.readdir(dir).catch(() => [] as string[]);
    if (entries.length) {
      throw failure('ERR_SLOT_PATH', `${dir} exists and is not a worktree of this repository`, {
        hint: `move it away, then run \`pool doctor --fix\``,
      });
    }
    await addWorktree(this.repo.mainRoot, dir, this.config.pool.base);
  }

  private async markBroken(id: string, e: unknown): Promise<void> {
    const message = errMessage(e);
    const code = isWtpoolError(e) ? e.code : null;
    const slot = await this.store.update((draft) => {
      const s = draft.slots[id];
      if (s) markBroken(s, message, code, Date.now());
      return s;
    });
    await this.event('error', { slot: id, message, code, failures: slot?.failures ?? null });
    this.reporter.warn(
      `${id} is broken: ${message} (an acquire retries it${slot?.retryAt ? ` from ${slot.retryAt}` : ''}; \`pool doctor --fix\` now)`,
    );
  }

  /** Publishes slots this process worked on as ready (and hands them to queued waiters). */
  private async publish(ids: string[], kept: KeptBranch[] = []): Promise<void> {
    if (!ids.length && !kept.length) return;
    const { plan } = await this.tx((draft, _plan, now) => {
      for (const id of ids) {
        const s = draft.slots[id];
        // Only if nobody took the work over from us (they would own it now).
        if (
          s &&
          s.owner?.pid === process.pid &&
          (s.state === 'provisioning' || s.state === 'releasing')
        ) {
          markReady(s, now);
          s.path = this.names(id).path;
        }
      }
      draft.kept.push(...kept);
      if (draft.kept.length > KEPT_MAX) draft.kept.splice(0, draft.kept.length - KEPT_MAX);
    });
    if (!planIsEmpty(plan)) await this.runPlan(plan);
  }

  // ------------------------------------------------------------------ lease

  private assertEnabled(): void {
    if (!this.config.pool.enabled) {
      throw failure(
        'ERR_POOL_DISABLED',
        'the worktree pool is disabled (pool.enabled: false or WORKTREE_POOL_ENABLED=false)',
        {
          hint: 'enable it in pool.config.yaml or unset WORKTREE_POOL_ENABLED',
        },
      );
    }
  }

  /**
   * Leases a slot: a fresh branch `pool/<slot>/<task-slug>` from the base, a lease file with a
   * fencing token, the `.pool-owner` marker and `.env.worktree`. Waits in the fair queue unless
   * `wait` is false (then exit 75 at once when nothing is free).
   */
  async lease(o: LeaseOptions): Promise<AcquireResult> {
    this.assertEnabled();
    const agent = checkName(o.agent, 'agent');
    const { task, slug } = checkTask(o.task);
    const identity =
      o.identity === undefined || o.identity === null ? null : checkName(o.identity, 'identity');
    const priority = o.priority ?? 2;
    if (!Number.isInteger(priority) || priority < 0 || priority > 4) {
      throw usageError(`priority must be 0 (most urgent) to 4, got ${priority}`);
    }
    const ttlMs = o.ttlMs ?? this.config.pool.leaseTtl;
    const timeoutMs = o.timeoutMs ?? this.config.pool.waitTimeout;
    const wait = o.wait ?? true;
    let holder = null;
    if (o.holderPid !== undefined) {
      if (!pidAlive(o.holderPid))
        throw usageError(`--holder-pid ${o.holderPid} is not a running process`);
      holder = procRef(o.holderPid);
    }
    const started = Date.now();
    const req: GrantRequest = {
      agent,
      task,
      slug,
      priority,
      ttlMs,
      holder,
      identity,
      claimer: procRef(),
      ticket: null,
      requestedAt: new Date(started).toISOString(),
    };
    const background: Promise<void>[] = [];
    let ticket: number | null = null;

    // One transaction: take a ready slot if nobody is queued, else join the queue (and grow).
    const step = async (final: boolean): Promise<Lease | undefined> => {
      const { result, plan } = await this.tx(
        (draft, plan, now) => {
          if (ticket !== null) {
            const g = findGrant(draft, ticket);
            if (g) return g.lease!;
            const queued = draft.queue.some((t) => t.id === ticket);
            if (final) {
              draft.queue = draft.queue.filter((t) => t.id !== ticket);
              return undefined;
            }
            if (queued) return undefined;
            ticket = null; // our ticket vanished (should not happen): queue again
          }
          if (!draft.queue.length) {
            const slot = pickReady(draft, identity, plan, this.pathOfId);
            if (slot) return grant(draft, slot, req, this.branchFor, now);
          }
          if (!wait || final) return undefined;
          const t: Ticket = {
            id: draft.nextTicket++,
            agent,
            task,
            slug,
            priority,
            enqueuedAt: new Date(now).toISOString(),
            waiter: req.claimer,
            holder,
            ttlMs,
            identity,
          };
          draft.queue.push(t);
          ticket = t.id;
          return undefined;
        },
        { grow: wait && !final, revive: !final },
      );
      if (!planIsEmpty(plan) || plan.grown.length) background.push(this.runPlan(plan));
      return (
        result ??
        plan.granted.find(
          (g) =>
            ticket !== null && g.lease.ticket === ticket && g.lease.claimer.pid === process.pid,
        )?.lease
      );
    };

    let lease = await step(false);
    if (ticket !== null) await this.event('enqueue', { agent, task, priority, ticket });
    if (!lease && !wait && background.length) {
      // Expired leases were just reclaimed: one more look before giving up.
      await Promise.allSettled(background);
      lease = await step(false);
    }
    if (!lease && !wait) {
      await Promise.allSettled(background);
      const st = await this.readState();
      const c = counts(st);
      const down = slotList(st).find(
        (s) => s.state === 'broken' && s.errorCode === 'ERR_SERVICE_UNAVAILABLE',
      );
      if (down && c.ready === 0) {
        // Nothing free because a service is down: say so (exit 6), not "pool full".
        throw serviceUnavailableError(`no usable slot: ${down.id} is broken: ${down.error}`, {
          hint: `start the service; the next acquire retries ${down.id}${down.retryAt ? ` (from ${down.retryAt})` : ''}, or run \`pool doctor --fix\``,
        });
      }
      throw poolFullError(
        `no free slot: ${c.leased} of ${c.size} leased (max ${this.config.scale.max})`,
        {
          hint:
            c.size === 0
              ? 'the pool has no slots yet: run `pool init`'
              : 'retry later, wait in the queue (without --no-wait), or grow the pool with `pool scale out`',
        },
      );
    }
    if (!lease) lease = await this.waitForGrant(() => ticket, started + timeoutMs, step);
    if (!lease) {
      await Promise.allSettled(background);
      throw poolFullError(`no slot became free within ${formatDuration(timeoutMs)}`, {
        hint: 'raise --timeout, or grow the pool (`pool scale out`, scale.max)',
      });
    }
    const result = await this.claim(lease.slot, lease, started);
    await Promise.allSettled(background);
    return result;
  }

  /** Waits for our ticket's grant: wakes on registry changes (fs.watch) with a bounded poll. */
  private async waitForGrant(
    ticket: () => number | null,
    deadline: number,
    step: (final: boolean) => Promise<Lease | undefined>,
  ): Promise<Lease | undefined> {
    let wake: (() => void) | undefined;
    let watcher: ReturnType<typeof watch> | undefined;
    try {
      watcher = watch(this.repo.stateDir, (_ev, name) => {
        if (name === 'state.json') wake?.();
      });
      watcher.on('error', () => {});
    } catch {
      watcher = undefined; // the poll still works
    }
    try {
      for (;;) {
        const left = deadline - Date.now();
        if (left <= 0) return await step(true);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.min(left, POLL_MS));
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = undefined;
        const st = await this.readState();
        const id = ticket();
        const g = id === null ? undefined : findGrant(st, id);
        if (g) return g.lease!;
        if (this.waiterShouldAct(st, id)) {
          const lease = await step(false);
          if (lease) return lease;
        }
      }
    } finally {
      watcher?.close();
    }
  }

  /** Lock-free check a waiter makes on each wake: is there work only a transaction can do? */
  private waiterShouldAct(st: PoolState, ticket: number | null): boolean {
    if (ticket === null || !st.queue.some((t) => t.id === ticket)) return true;
    const c = counts(st);
    if (st.queue.length > c.provisioning && c.size < this.config.scale.max) return true;
    if (c.ready > 0) return true;
    if (st.queue.length > c.provisioning && anyRetryDue(st, Date.now())) return true;
    return this.needsSweep(st, false);
  }

  /** Completes a grant: lease file (exclusive), providers, branch, marker, env file. */
  private async claim(id: string, lease: Lease, started: number): Promise<AcquireResult> {
    const names = this.names(id);
    const doc: LeaseFile = {
      slot: id,
      agent: lease.agent,
      task: lease.task,
      branch: lease.branch,
      token: lease.token,
      acquiredAt: lease.acquiredAt,
      host: lease.host,
      holderPid: lease.holder?.pid ?? null,
    };
    await fs.mkdir(path.dirname(names.leaseFile), { recursive: true });
    if (!(await createExclusive(names.leaseFile, doc))) {
      try {
        await this.replaceStaleLeaseFile(id, lease, doc);
      } catch (e) {
        await this.giveBack(id, lease, e);
        throw e;
      }
    }
    try {
      // The grant may have been taken back (expired before we got here): then it is not ours.
      if ((await this.readState()).slots[id]?.lease?.token !== lease.token) {
        await fs.rm(names.leaseFile, { force: true });
        throw conflictError(`${id} was taken back before this acquire could claim it`, {
          hint: 'retry the acquire (with a longer --ttl if it keeps happening)',
        });
      }
      let branch = lease.branch;
      // git runs in its own process: it switches while the services compute the env (both are
      // settled before anything fails, so giveBack never races a running git).
      const [envR, switchR] = await Promise.allSettled([
        this.leaseEnv(id, lease),
        switchToNewBranch(names.path, branch, this.config.pool.base, this.repo.commonDir),
      ]);
      if (envR.status === 'rejected') throw envR.reason;
      if (switchR.status === 'rejected') throw switchR.reason;
      const env = envR.value;
      if (!switchR.value) {
        // A branch of that name exists outside the registry's knowledge: never reuse it.
        branch = names.branch(`${lease.slug}-${lease.token}`);
        if (
          !(await switchToNewBranch(names.path, branch, this.config.pool.base, this.repo.commonDir))
        ) {
          throw failure(
            'ERR_BRANCH_EXISTS',
            `branches ${lease.branch} and ${branch} already exist`,
          );
        }
        await this.store.update((draft) => {
          const s = draft.slots[id];
          if (s?.lease?.token === lease.token) s.branch = s.lease.branch = branch;
        });
        lease = { ...lease, branch };
        await writeFileAtomic(names.leaseFile, JSON.stringify({ ...doc, branch }, null, 2) + '\n');
      }
      const marker: OwnerMarker = {
        slot: id,
        agent: lease.agent,
        task: lease.task,
        token: lease.token,
        host: lease.host,
        pid: lease.holder?.pid ?? null,
        acquiredAt: lease.acquiredAt,
        stateDir: this.repo.stateDir,
      };
      const envFile = path.join(names.path, ENV_FILE);
      await Promise.all([
        fs.writeFile(path.join(names.path, OWNER_MARKER), JSON.stringify(marker, null, 2) + '\n'),
        writeEnvFile(envFile, env),
      ]);
      const waitedMs = Date.parse(lease.acquiredAt) - started;
      await this.event('acquire', {
        slot: id,
        agent: lease.agent,
        task: lease.task,
        token: lease.token,
        branch,
        priority: lease.priority,
        waitedMs: Math.max(0, waitedMs),
      });
      return {
        slot: id,
        path: names.path,
        branch,
        agent: lease.agent,
        task: lease.task,
        priority: lease.priority,
        token: lease.token,
        acquiredAt: lease.acquiredAt,
        expiresAt: lease.expiresAt,
        waitedMs: Math.max(0, waitedMs),
        envFile,
        env,
      };
    } catch (e) {
      await this.giveBack(id, lease, e);
      throw e;
    }
  }

  /**
   * A claim failed: if the slot is still ours in the registry, reset it (providers released,
   * lease file removed) and publish it ready. A slot the registry gave to someone else is left alone.
   */
  private async giveBack(id: string, lease: Lease, e: unknown): Promise<void> {
    const ours = await this.store.update((draft) => {
      const s = draft.slots[id];
      if (s?.state !== 'leased' || s.lease?.token !== lease.token) return false;
      s.state = 'releasing';
      s.owner = procRef();
      return true;
    });
    if (!ours) return;
    await this.reclaim({
      slot: { id } as SlotRecord,
      lease,
      reason: `claim failed: ${errMessage(e)}`,
    }).catch(() => {});
  }

  /** The lease file exists: a leftover of a crash (registry says the slot is ours) or a lost race. */
  private async replaceStaleLeaseFile(id: string, lease: Lease, doc: LeaseFile): Promise<void> {
    const file = this.names(id).leaseFile;
    const other = await readJsonFile<LeaseFile>(file).catch(() => undefined);
    if (other?.token === lease.token) return;
    const cur = (await this.readState()).slots[id]?.lease;
    if (cur?.token === lease.token) {
      await fs
        .rename(file, `${file}.stale-${other?.token ?? 'unknown'}-${Date.now()}`)
        .catch(() => {});
      if (await createExclusive(file, doc)) return;
    }
    throw conflictError(
      `lost ${id}: its lease file belongs to token ${other?.token ?? '?'}, not ${lease.token}`,
      {
        hint: 'retry the acquire',
      },
    );
  }

  /**
   * Env of a lease: the pool's own keys plus what each enabled service allocates (a failing
   * service undoes the others' allocations before the error reaches us).
   */
  private async leaseEnv(id: string, lease: Lease): Promise<Record<string, string>> {
    const { svc, providers } = await this.services();
    const info = { agent: lease.agent, task: lease.task, token: lease.token };
    return { ...this.baseEnv(id), ...(await svc.leaseSlot(providers, this.providerCtx(id), info)) };
  }

  /** Env of an existing lease (for `pool run` and status), without allocating anything. */
  async envOf(id: string): Promise<Record<string, string>> {
    const env = this.baseEnv(id);
    for (const p of (await this.services()).providers)
      if (p.env) Object.assign(env, await p.env(this.providerCtx(id)));
    return env;
  }

  // ------------------------------------------------------------------ release / heartbeat

  /** Checks that `agent` holds `slot` (registry and lease file agree on the token). */
  private async holderCheck(
    slotArg: string,
    agentArg: string,
  ): Promise<{ id: string; slot: SlotRecord; lease: Lease }> {
    const id = slotId(slotNumber(slotArg));
    const agent = checkName(agentArg, 'agent');
    const slot = (await this.readState()).slots[id];
    if (!slot)
      throw notFoundError(`there is no slot ${id} in the pool`, { hint: 'see `pool status`' });
    const lease = slot.lease;
    if (slot.state !== 'leased' || !lease) {
      throw notFoundError(`${id} is not leased (state: ${slot.state})`, {
        hint: 'see `pool status`',
      });
    }
    if (lease.agent !== agent) {
      throw conflictError(`${id} is held by ${lease.agent}, not ${agent}`, {
        hint: 'only the holder can release or renew it; an expired lease is reclaimed automatically',
      });
    }
    const lf = await readJsonFile<LeaseFile>(this.names(id).leaseFile).catch(() => undefined);
    if (!lf || lf.token !== lease.token || lf.agent !== agent) {
      throw conflictError(
        `the lease file of ${id} does not match the registry (token ${lf?.token ?? 'none'} vs ${lease.token})`,
        {
          hint: 'the acquire may still be completing; otherwise run `pool doctor --fix`',
        },
      );
    }
    return { id, slot, lease };
  }

  /**
   * Releases a lease: refuses a dirty worktree (exit 5) unless `force`, which first saves the
   * work to a rescue ref. Then back to the base; a branch with commits is kept for integration.
   */
  async release(o: ReleaseOptions): Promise<ReleaseResult> {
    const { id, slot, lease } = await this.holderCheck(o.slot, o.agent);
    const { plan } = await this.tx(
      (draft) => {
        const s = draft.slots[id];
        if (!s || s.state !== 'leased' || s.lease?.token !== lease.token) {
          throw conflictError(`the lease of ${id} changed while releasing (reclaimed?)`, {
            hint: 'see `pool status`',
          });
        }
        // Reserved: no reclaim or second release can reset this worktree while we do.
        s.state = 'releasing';
        s.owner = procRef();
      },
      { shrink: true },
    );
    const background = this.runPlan(plan);
    const st = worktreeExists(slot.path)
      ? await worktreeStatus(slot.path, this.config.pool.keep).catch(async (e) => {
          await this.unreserve(id, lease);
          throw e;
        })
      : null;
    if (st?.dirty && !o.force) {
      await this.unreserve(id, lease);
      await background;
      throw conflictError(
        `${id} has uncommitted changes or untracked files; nothing was released`,
        {
          hint: `commit them in ${slot.path}, or run \`pool release ${id} ${lease.agent} --force\` to save them to refs/wtpool/rescue/${id}/… and release`,
        },
      );
    }
    const r = await this.resetSlot(id, lease, 'release', st);
    await this.event('release', {
      slot: id,
      agent: lease.agent,
      task: lease.task,
      token: lease.token,
      branch: lease.branch,
      kept: r.kept,
      rescueRef: r.rescueRef,
    });
    await this.publishAfterReset(id, lease, r.kept);
    await background;
    return {
      slot: id,
      agent: lease.agent,
      token: lease.token,
      branch: lease.branch,
      kept: r.kept,
      rescueRef: r.rescueRef,
    };
  }

  /** Gives a slot reserved for release back to its lease (a refused release changes nothing). */
  private async unreserve(id: string, lease: Lease): Promise<void> {
    await this.store.update((draft) => {
      const s = draft.slots[id];
      if (
        s?.state === 'releasing' &&
        s.owner?.pid === process.pid &&
        s.lease?.token === lease.token
      ) {
        s.state = 'leased';
        s.owner = null;
      }
    });
  }

  /** Renews a lease's TTL (heartbeat). */
  async heartbeat(o: { slot: string; agent: string }): Promise<{
    slot: string;
    agent: string;
    token: number;
    heartbeatAt: string;
    expiresAt: string;
  }> {
    const { id, lease } = await this.holderCheck(o.slot, o.agent);
    const { result } = await this.tx((draft, _plan, now) => {
      const s = draft.slots[id];
      if (!s?.lease || s.state !== 'leased' || s.lease.token !== lease.token) {
        throw conflictError(`the lease of ${id} is gone (expired and reclaimed?)`, {
          hint: 'acquire a new slot',
        });
      }
      s.lease.heartbeatAt = new Date(now).toISOString();
      s.lease.expiresAt = new Date(now + s.lease.ttlMs).toISOString();
      return s.lease;
    });
    return {
      slot: id,
      agent: result.agent,
      token: result.token,
      heartbeatAt: result.heartbeatAt,
      expiresAt: result.expiresAt,
    };
  }

  /** Leases a slot, runs `fn` in it, and always releases (saving uncommitted work to a rescue ref). */
  async withLease<T>(
    taskOrOpts: string | (Partial<LeaseOptions> & { task: string }),
    fn: (lease: AcquireResult) => Promise<T> | T,
  ): Promise<T> {
    const o = typeof taskOrOpts === 'string' ? { task: taskOrOpts } : taskOrOpts;
    const lease = await this.lease({ agent: `lib-${process.pid}`, ...o });
    try {
      return await fn(lease);
    } finally {
      await this.release({ slot: lease.slot, agent: lease.agent, force: true });
    }
  }

  /**
   * Brings a slot whose lease ended back to the base. Anything that would be lost is saved first:
   * uncommitted work and commits off the lease branch go to a rescue ref; a branch with commits
   * not in the base is kept, an empty one deleted.
   */
  private async resetSlot(
    id: string,
    lease: Lease,
    reason: string,
    known: WorktreeStatus | null = null,
  ): Promise<{ rescueRef: string | null; kept: boolean }> {
    const names = this.names(id);
    const dir = names.path;
    const { base, keep } = this.config.pool;
    let rescueRef: string | null = null;
    let ahead: number;
    const branchRef = `refs/heads/${lease.branch}`;
    const baseCommit = await readBranchCommit(this.repo.commonDir, base);
    if (worktreeExists(dir)) {
      const st = known ?? (await worktreeStatus(dir, keep));
      const onBranch = st.branch === lease.branch;
      const save = async () => {
        rescueRef = await saveRescue(
          dir,
          names.rescueRefPrefix,
          `wtpool rescue of ${id} (${reason}): agent ${lease.agent}, task ${lease.task}`,
        );
        await this.event('rescue', {
          slot: id,
          agent: lease.agent,
          task: lease.task,
          token: lease.token,
          ref: rescueRef,
          reason,
        });
      };
      const headAhead = async () =>
        st.head === null || st.head === baseCommit ? 0 : commitsAhead(dir, base, 'HEAD');
      if (st.dirty) await save();
      // Commits made off the lease branch (detached HEAD, another branch) are saved too.
      else if (!onBranch && (await headAhead()) > 0) await save();
      ahead = onBranch ? await headAhead() : await commitsAhead(dir, base, branchRef);
      // The common case, a clean lease still on the base commit, needs no checkout (D66).
      const untouched =
        onBranch && !st.dirty && !st.needsClean && baseCommit !== null && st.head === baseCommit;
      if (!(untouched && (await detachWithoutGit(dir, lease.branch, baseCommit)))) {
        await resetToBase(dir, base, keep, st.needsClean);
      }
      await removePoolFiles(dir);
    } else {
      ahead = await commitsAhead(this.repo.mainRoot, base, branchRef);
    }
    if (ahead === 0) {
      await withGitLock(this.repo.stateDir, 'refs', async () => {
        const gone =
          baseCommit !== null &&
          (await deleteBranchWithoutGit(this.repo.commonDir, lease.branch, baseCommit));
        if (!gone) await deleteBranch(this.repo.mainRoot, lease.branch);
      });
    }
    try {
      await this.eachProvider(id, 'release');
    } finally {
      // The lease is over even if a service could not be reset (the slot then goes broken and
      // its services are reset when it is provisioned again): no lease file may outlive it.
      const lf = await readJsonFile<LeaseFile>(names.leaseFile).catch(() => undefined);
      if (lf?.token === lease.token) await fs.rm(names.leaseFile, { force: true });
    }
    return { rescueRef, kept: ahead > 0 };
  }

  private async publishAfterReset(id: string, lease: Lease, kept: boolean): Promise<void> {
    const keptRec: KeptBranch[] = kept
      ? [
          {
            branch: lease.branch,
            slot: id,
            agent: lease.agent,
            task: lease.task,
            token: lease.token,
            releasedAt: new Date().toISOString(),
          },
        ]
      : [];
    if (worktreeExists(this.names(id).path)) return this.publish([id], keptRec);
    // The worktree vanished while leased: recreate it before it becomes ready again.
    await this.publish([], keptRec);
    await this.store.update((draft) => {
      const s = draft.slots[id];
      if (s && s.owner?.pid === process.pid) {
        s.state = 'provisioning';
        s.lease = null;
        s.branch = null;
      }
    });
    await this.provision([id]);
  }

  /** Takes back an expired/abandoned lease (rescue first), then publishes the slot ready. */
  private async reclaim(r: Reclaim): Promise<void> {
    const id = r.slot.id;
    try {
      const res = await this.resetSlot(id, r.lease, r.reason);
      await this.event('reclaim', {
        slot: id,
        agent: r.lease.agent,
        task: r.lease.task,
        token: r.lease.token,
        reason: r.reason,
        rescueRef: res.rescueRef,
        kept: res.kept,
      });
      await this.publishAfterReset(id, r.lease, res.kept);
    } catch (e) {
      await this.markBroken(id, e);
      throw e;
    }
  }

  /** Removes a slot this process reserved as retiring (saving any work first). */
  private async retire(id: string): Promise<void> {
    const names = this.names(id);
    try {
      if (worktreeExists(names.path)) {
        await this.rescueUnsaved(names.path, names.rescueRefPrefix, { slot: id, reason: 'retire' });
      }
      await this.eachProvider(id, 'destroy');
      await withGitLock(this.repo.stateDir, 'worktrees', () =>
        removeWorktree(this.repo.mainRoot, names.path),
      );
      await this.store.update((draft) => {
        const s = draft.slots[id];
        if (s?.state === 'retiring' && s.owner?.pid === process.pid) delete draft.slots[id];
        for (const [k, v] of Object.entries(draft.identities))
          if (v === id) delete draft.identities[k];
      });
      await this.event('shrink', { slot: id });
    } catch (e) {
      await this.markBroken(id, e);
      throw e;
    }
  }

  // ------------------------------------------------------------------ status & friends

  /** Slots, leases, queue and capacity (CLI.md shape). Reclaims expired leases it sees. */
  async getStatus(opts: { sweep?: boolean } = {}): Promise<PoolStatus> {
    let st = await this.readState();
    if (opts.sweep !== false && this.needsSweep(st, true)) {
      await this.cleanup();
      st = await this.readState();
    }
    return toStatus(st, this.config, await this.capacity());
  }

  private async capacity(): Promise<unknown> {
    if (!this.config.redis.url) return null;
    const m = await import('@wtpool/services');
    return m.redisCapacity(this.loaded);
  }

  /** The registry snapshot: the status shape plus the raw registry and where it lives. */
  async snapshot(): Promise<
    PoolStatus & { takenAt: string; version: number; stateDir: string; state: PoolState }
  > {
    const status = await this.getStatus({ sweep: false });
    const v = await this.store.readVersioned();
    return {
      ...status,
      takenAt: new Date().toISOString(),
      version: v.version,
      stateDir: this.repo.stateDir,
      state: { ...initialState(), ...v.data },
    };
  }

  /** Branches released leases kept for integration (they have commits not in the base), oldest first. */
  async keptBranches(): Promise<(KeptBranch & { commit: string })[]> {
    const st = await this.readState();
    const refs = await listRefs(this.repo.mainRoot, `refs/heads/${this.config.pool.branchPrefix}/`);
    const live = new Map(refs.map((r) => [r.ref.slice('refs/heads/'.length), r.commit]));
    const leased = new Set(
      slotList(st)
        .map((s) => s.branch)
        .filter(Boolean),
    );
    const seen = new Set<string>();
    const out: (KeptBranch & { commit: string })[] = [];
    for (const k of st.kept) {
      const commit = live.get(k.branch);
      if (!commit || leased.has(k.branch) || seen.has(k.branch)) continue;
      seen.add(k.branch);
      out.push({ ...k, commit });
    }
    return out;
  }

  /** Saved work refs (`refs/wtpool/rescue/<slot>/<timestamp>`), newest first. */
  async rescueList(): Promise<(RefInfo & { slot: string })[]> {
    const refs = await listRefs(this.repo.mainRoot, 'refs/wtpool/rescue/');
    return refs.map((r) => ({ ...r, slot: r.ref.split('/')[3] ?? '' }));
  }

  /** Grows by one `scale.step` now (up to max). */
  async scaleOut(): Promise<{ added: string[]; size: number }> {
    const { plan } = await this.tx((draft, plan, now) =>
      reserveGrowth(draft, this.config, this.pathOf, now, plan, true),
    );
    if (!plan.grown.length) {
      throw capacityReached(this.config.scale.max);
    }
    await this.runPlan(plan);
    return { added: plan.grown, size: counts(await this.readState()).size };
  }

  /** Retires up to one `scale.step` of ready slots above min now. */
  async scaleIn(): Promise<{ removed: string[]; size: number }> {
    const { plan } = await this.tx((draft, plan, now) =>
      retireIdle(draft, this.config, 0, now, plan, this.config.scale.step),
    );
    await this.runPlan(plan);
    return { removed: plan.retire.map((s) => s.id), size: counts(await this.readState()).size };
  }

  /** Moves every ready slot to the base's current commit (clean, caches kept), re-provisioning it. */
  async refresh(): Promise<{ refreshed: string[] }> {
    const { result: ids } = await this.tx((draft) => {
      const ids: string[] = [];
      for (const s of slotList(draft)) {
        if (s.state !== 'ready') continue;
        s.state = 'provisioning';
        s.owner = procRef();
        ids.push(s.id);
      }
      return ids;
    });
    await this.provision(ids);
    return { refreshed: ids };
  }

  /** Problems the services report for a slot (doctor). */
  async checkServices(id: string): Promise<string[]> {
    const { svc, providers } = await this.services();
    return svc.checkSlot(providers, this.providerCtx(id));
  }

  /** Used by `doctor --fix` / cleanupOnStartup. */
  async doctorFix(): Promise<void> {
    const { doctor } = await import('./doctor.js');
    await doctor(this, { fix: true });
  }

  /** Is the lease of a slot over (for the monitor)? */
  leaseOver(slot: SlotRecord): string | null {
    return slot.lease ? leaseOver(slot.lease, this.leaseFileOf(slot.id), Date.now()) : null;
  }

  /** Processes still alive that own slow work, for doctor. */
  ownerAlive(slot: SlotRecord): boolean {
    return !slot.owner || procAlive(slot.owner);
  }

  /** Internal access for doctor. */
  get internals() {
    return {
      tx: this.tx.bind(this),
      runPlan: this.runPlan.bind(this),
      provision: this.provision.bind(this),
      emptyPlan,
    };
  }
}

function capacityReached(max: number) {
  return usageError(`the pool is already at scale.max (${max})`, {
    hint: 'raise scale.max in pool.config.yaml',
  });
}
