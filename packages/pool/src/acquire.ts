/**
 * Acquiring a lease: one transaction takes a ready slot (or joins the fair queue, growing the
 * pool), a waiter waits for its grant (wait.ts), then the grant is claimed: the lease record
 * (exclusive create), the branch, the services' env, the `.pool-owner` marker, `.env.worktree`.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { checkName, checkTask } from '@wtpool/config';
import {
  configError,
  conflictError,
  failure,
  formatDuration,
  poolFullError,
  serviceUnavailableError,
  usageError,
  type WtpoolError,
} from '@wtpool/core';
import { pidAlive } from '@wtpool/lock';
import { branchFor, event, names, pathOfId, tx, type PoolContext } from './context.js';
import { ENV_FILE, writeEnvFile } from './envfile.js';
import { procRef } from './proc.js';
import { giveBack } from './release.js';
import { leaseEnv, refreshProviders } from './slot-services.js';
import {
  brokenForGood,
  counts,
  findGrant,
  grant,
  growthStopped,
  pickReady,
  planIsEmpty,
  roomForLease,
  slotList,
  type GrantRequest,
} from './state.js';
import type { AcquireResult, Lease, LeaseFile, LeaseOptions, PoolState, Ticket } from './types.js';
import { budgetFull, throughOutage, waitForGrant } from './wait.js';
import { OWNER_MARKER, switchToNewBranch, type OwnerMarker } from './worktree.js';

function assertEnabled(ctx: PoolContext): void {
  if (!ctx.config.pool.enabled) {
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
 * Leases a slot: a fresh branch `pool/<slot>/<task-slug>` from the base, a lease record with a
 * fencing token, the `.pool-owner` marker and `.env.worktree`. Waits in the fair queue unless
 * `wait` is false (then exit 75 at once when nothing is free).
 */
export async function acquire(ctx: PoolContext, o: LeaseOptions): Promise<AcquireResult> {
  assertEnabled(ctx);
  const agent = checkName(o.agent, 'agent');
  const { task, slug } = checkTask(o.task);
  const identity =
    o.identity === undefined || o.identity === null ? null : checkName(o.identity, 'identity');
  const priority = o.priority ?? 2;
  if (!Number.isInteger(priority) || priority < 0 || priority > 4) {
    throw usageError(`priority must be 0 (most urgent) to 4, got ${priority}`);
  }
  const ttlMs = o.ttlMs ?? ctx.config.pool.leaseTtl;
  const timeoutMs = o.timeoutMs ?? ctx.config.pool.waitTimeout;
  const wait = o.wait ?? true;
  let holder = null;
  if (o.holderPid !== undefined) {
    if (!pidAlive(o.holderPid))
      throw usageError(`--holder-pid ${o.holderPid} is not a running process`);
    holder = procRef(o.holderPid);
  }
  const aborted = () => {
    if (o.signal?.aborted)
      throw o.signal.reason instanceof Error
        ? o.signal.reason
        : failure('ERR_ABORTED', 'the acquire was cancelled');
  };
  aborted();
  const started = ctx.clock();
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
  // The transaction returns the ticket it left us with (it may run more than once).
  const step = async (final: boolean): Promise<Lease | undefined> => {
    const mine = ticket;
    const { result, plan } = await tx(
      ctx,
      (draft, plan, now, f): { lease?: Lease; ticket: number | null } => {
        if (mine !== null) {
          const g = findGrant(draft, mine);
          if (g) return { lease: g.lease!, ticket: mine };
          const queued = draft.queue.some((t) => t.id === mine);
          if (final) {
            draft.queue = draft.queue.filter((t) => t.id !== mine);
            return { ticket: mine };
          }
          if (queued) return { ticket: mine };
          // our ticket vanished (should not happen): queue again
        }
        if (!draft.queue.length && roomForLease(draft, f)) {
          const slot = pickReady(draft, identity, plan, pathOfId(ctx), f);
          if (slot) return { lease: grant(draft, slot, req, branchFor(ctx), f), ticket: null };
        }
        if (!wait || final) return { ticket: null };
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
        return { ticket: t.id };
      },
      { grow: wait && !final, revive: !final, unmet: (r) => !r.lease },
    );
    ticket = result.ticket;
    if (!planIsEmpty(plan) || plan.grown.length) background.push(ctx.runPlan(plan));
    return (
      result.lease ??
      plan.granted.find(
        (g) => ticket !== null && g.lease.ticket === ticket && g.lease.claimer.pid === process.pid,
      )?.lease
    );
  };

  // Waiting, the store may be away for a while (a Redis restart): try until the deadline.
  let lease = wait
    ? await throughOutage(ctx, started + timeoutMs, () => step(false), o.signal)
    : await step(false);
  if (ticket !== null) await event(ctx, 'enqueue', { agent, task, priority, ticket });
  if (!lease && !wait && background.length) {
    // Expired leases were just reclaimed: one more look before giving up.
    await Promise.allSettled(background);
    lease = await step(false);
  }
  if (!lease && !wait) {
    await Promise.allSettled(background);
    const st = await ctx.store.read();
    const c = counts(st);
    const budget = budgetFull(ctx, st);
    if (budget) {
      throw poolFullError(`no lease now: ${budget}`, {
        hint: 'wait in the queue (without --no-wait): a lease released on any host makes room; or raise postgres.connectionBudget',
      });
    }
    throw (
      brokenError(ctx, st) ??
      poolFullError(`no free slot: ${c.leased} of ${c.size} leased (max ${ctx.config.scale.max})`, {
        hint:
          c.size === 0
            ? 'the pool has no slots yet: run `pool init`'
            : 'retry later, wait in the queue (without --no-wait), or grow the pool with `pool scale out`',
      })
    );
  }
  if (!lease) {
    // A blocking acquire fails fast when waiting cannot help (a slot broken by a config error
    // and nothing ready), and says why the pool does not grow while it waits.
    try {
      lease = await waitForGrant(
        ctx,
        () => ticket,
        started + timeoutMs,
        step,
        (st) => {
          aborted();
          const permanent = slotList(st).find(brokenForGood);
          if (permanent && counts(st).ready === 0) throw brokenError(ctx, st)!;
        },
        { signal: o.signal, onQueue: o.onQueue },
      );
    } catch (e) {
      // Leave the queue; a grant that raced the error is nobody's: take it back (rescued).
      const late = await step(true).catch(() => undefined);
      if (late) await giveBack(ctx, late.slot, late, e);
      await Promise.allSettled(background);
      throw e;
    }
  }
  if (!lease) {
    await Promise.allSettled(background);
    const st = await ctx.store.read();
    const stopped = growthStopped(st);
    throw poolFullError(
      `no slot became free within ${formatDuration(timeoutMs)}${stopped ? `; the pool did not grow: ${stopped.reason}` : ''}`,
      {
        hint: stopped
          ? stopped.fix
          : 'raise --timeout, or grow the pool (`pool scale out`, scale.max)',
      },
    );
  }
  const result = await claim(ctx, lease.slot, lease, started);
  await Promise.allSettled(background);
  return result;
}

/**
 * Why nothing is free when broken slots are the reason, with the repair command, or undefined:
 * a configuration error (exit 3), a service down (exit 6), other broken slots (exit 75, naming
 * them instead of "no free slot: 0 of 3 leased").
 */
export function brokenError(ctx: PoolContext, st: PoolState): WtpoolError | undefined {
  const c = counts(st);
  if (c.ready > 0 || c.broken === 0) return undefined;
  const broken = slotList(st).filter((s) => s.state === 'broken');
  const permanent = broken.find(brokenForGood);
  if (permanent) {
    return configError(
      `no usable slot: ${permanent.id} is broken by a configuration error: ${permanent.error}`,
      {
        hint: 'fix pool.config.yaml, then run `pool doctor --fix`',
      },
    );
  }
  const down = broken.find((s) => s.errorCode === 'ERR_SERVICE_UNAVAILABLE');
  if (down) {
    // Nothing free because a service is down: say so (exit 6), not "pool full".
    return serviceUnavailableError(`no usable slot: ${down.id} is broken: ${down.error}`, {
      hint: `start the service; the next acquire retries ${down.id}${down.retryAt ? ` (from ${down.retryAt})` : ''}, or run \`pool doctor --fix\``,
    });
  }
  const first = broken[0]!;
  const stopped = growthStopped(st);
  return poolFullError(
    `no ready slot: ${c.broken} of ${c.size} slots are broken (${broken.length > 1 ? `${broken.map((s) => s.id).join(', ')}; ` : ''}${first.id}: ${first.error}), ${c.leased} leased${stopped ? '; the pool stops growing while more than half are broken' : ''}`,
    {
      hint: `fix the cause, then run \`pool doctor --fix\` (it retries the broken slots now); an acquire also retries ${first.id}${first.retryAt ? ` from ${first.retryAt}` : ''}`,
    },
  );
}

/** Completes a grant: lease record (exclusive), providers, branch, marker, env file. */
async function claim(
  ctx: PoolContext,
  id: string,
  lease: Lease,
  started: number,
): Promise<AcquireResult> {
  const n = names(ctx, id);
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
  if (!(await ctx.store.createLease(doc))) {
    try {
      await replaceStaleLease(ctx, id, lease, doc);
    } catch (e) {
      await giveBack(ctx, id, lease, e);
      throw e;
    }
  }
  try {
    // The grant may have been taken back (expired before we got here): then it is not ours.
    if ((await ctx.store.read()).slots[id]?.lease?.token !== lease.token) {
      await ctx.store.removeLease(id, lease.token);
      throw conflictError(`${id} was taken back before this acquire could claim it`, {
        hint: 'retry the acquire (with a longer --ttl if it keeps happening)',
      });
    }
    let branch = lease.branch;
    const { base } = ctx.config.pool;
    // git runs in its own process: it switches while the services compute the env (both are
    // settled before anything fails, so giveBack never races a running git). git is started
    // first: it then runs while the services' modules load.
    const switching = switchToNewBranch(n.path, branch, base, ctx.repo.commonDir);
    const [switchR, envR] = await Promise.allSettled([switching, leaseEnv(ctx, id, lease)]);
    if (envR.status === 'rejected') throw envR.reason;
    if (switchR.status === 'rejected') throw switchR.reason;
    const env = envR.value;
    if (!switchR.value) {
      // A branch of that name exists outside the registry's knowledge: never reuse it.
      branch = n.branch(`${lease.slug}-${lease.token}`);
      if (!(await switchToNewBranch(n.path, branch, base, ctx.repo.commonDir))) {
        throw failure('ERR_BRANCH_EXISTS', `branches ${lease.branch} and ${branch} already exist`);
      }
      await ctx.store.transact((draft) => {
        const s = draft.slots[id];
        if (s?.lease?.token === lease.token) s.branch = s.lease.branch = branch;
      });
      lease = { ...lease, branch };
      await ctx.store.replaceLease({ ...doc, branch });
    }
    // On the lease branch now: a base that moved since the release may need setup again.
    await refreshProviders(ctx, id, 'acquire');
    const marker: OwnerMarker = {
      slot: id,
      agent: lease.agent,
      task: lease.task,
      token: lease.token,
      host: lease.host,
      pid: lease.holder?.pid ?? null,
      acquiredAt: lease.acquiredAt,
      stateDir: ctx.repo.stateDir,
    };
    const envFile = path.join(n.path, ENV_FILE);
    await Promise.all([
      fs.writeFile(path.join(n.path, OWNER_MARKER), JSON.stringify(marker, null, 2) + '\n'),
      writeEnvFile(envFile, env),
    ]);
    const waitedMs = Math.max(0, Date.parse(lease.acquiredAt) - started);
    await event(ctx, 'acquire', {
      slot: id,
      agent: lease.agent,
      task: lease.task,
      token: lease.token,
      branch,
      priority: lease.priority,
      waitedMs,
    });
    return {
      slot: id,
      path: n.path,
      branch,
      agent: lease.agent,
      task: lease.task,
      priority: lease.priority,
      token: lease.token,
      acquiredAt: lease.acquiredAt,
      expiresAt: lease.expiresAt,
      waitedMs,
      envFile,
      env,
    };
  } catch (e) {
    await giveBack(ctx, id, lease, e);
    throw e;
  }
}

/** The lease record exists: a leftover of a crash (registry says the slot is ours) or a lost race. */
async function replaceStaleLease(
  ctx: PoolContext,
  id: string,
  lease: Lease,
  doc: LeaseFile,
): Promise<void> {
  const other = await ctx.store.readLease(id);
  if (other?.token === lease.token) return;
  const cur = (await ctx.store.read()).slots[id]?.lease;
  if (cur?.token === lease.token) {
    await ctx.store.moveAsideLease(id, String(other?.token ?? 'unknown'));
    if (await ctx.store.createLease(doc)) return;
  }
  throw conflictError(
    `lost ${id}: its lease file belongs to token ${other?.token ?? '?'}, not ${lease.token}`,
    {
      hint: 'retry the acquire',
    },
  );
}
