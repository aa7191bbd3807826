/** The fleet's part of the `pool` commands (kept apart from cli-pool.ts): `status --fleet`, the lease's host. */
import { checkName, checkTask } from '@wtpool/config';
import {
  ExitCode,
  poolFullError,
  serviceUnavailableError,
  usageError,
  WtpoolError,
  type CommandContext,
} from '@wtpool/core';
import { isReplyError, redisPipeline, type Reply } from './resp-lazy.js';
import type { WorktreePool } from './pool.js';
import { RedisLeaseStore, subscribe } from './redis-lease-store.js';
import type { AcquireResult, LeaseOptions } from './types.js';

/** With the Redis backend a lease names the host it is on (`"host"` in --json). */
export function withHost<T extends object>(
  pool: WorktreePool,
  lease: T,
): T | (T & { host: string }) {
  return pool.store instanceof RedisLeaseStore ? { ...lease, host: pool.store.hostId } : lease;
}

/** `pool status --fleet`: every host, its slots and leases, the fleet capacity (read-only). */
export async function fleetCommand(pool: WorktreePool, ctx: CommandContext): Promise<void> {
  const store = pool.store;
  if (!(store instanceof RedisLeaseStore)) {
    throw usageError('status --fleet needs the Redis lease store (store.backend: redis)', {
      hint: 'set store.backend: redis and store.url in pool.config.yaml (docs/fleet.md)',
    });
  }
  const { fleetStatus, formatFleet } = await import('./fleet.js'); // services: a lazy chunk
  const f = await fleetStatus(pool.loaded);
  ctx.out.result(f, () => formatFleet(f, store.hostId));
}

// ---------------------------------------------------------------- acquire --any-host

/**
 * The fleet queue (docs/fleet.md): `<fleet>:fq` is a sorted set of ticket ids scored
 * priority·1e9 + arrival, so ZRANGE 0 0 is the best ticket fleet-wide (priority, then first
 * come); `<fleet>:fq:t:<id>` holds the request, `<fleet>:fq:g:<id>` the grant. A host with a
 * ready slot and no local waiter serves the head: the process that freed the slot (`release`),
 * a waiter of that host, or an `--any-host` waiter running there. It leases the slot on its
 * own host for the ticket (the normal acquire, so the claim happens where the worktree is) and
 * publishes the lease, naming its host; the waiter prints it (an orchestrator starts the agent
 * there, which heartbeats the lease on that host).
 */
const ENQUEUE = `local id = redis.call('INCR', KEYS[1] .. ':seq')
redis.call('SET', KEYS[1] .. ':t:' .. id, ARGV[2], 'PX', ARGV[3])
redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) * 1e9 + id, id)
return id`;
/** Pops the best ticket with its request (skipping tickets whose request expired). */
const POP = `while true do
  local head = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  if #head == 0 then return false end
  redis.call('ZREM', KEYS[1], head[1])
  local t = redis.call('GET', KEYS[1] .. ':t:' .. head[1])
  if t then return {head[1], head[2], t} end
end`;
/** A waiter gives up: 1 when its ticket was still queued (now removed), 0 when a host popped it. */
const CANCEL = `local n = redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[1] .. ':t:' .. ARGV[1])
return n`;

interface FleetTicket {
  agent: string;
  task: string;
  priority: number;
  ttlMs?: number;
  identity?: string;
  host: string;
}

async function fq(pool: WorktreePool, script: string, args: (string | number)[]): Promise<Reply> {
  const store = pool.store as RedisLeaseStore;
  const [r] = await redisPipeline(pool.config.store.url!, [
    ['EVAL', script, 1, `${store.keys.fleet}:fq`, ...args],
  ]);
  if (isReplyError(r)) throw serviceUnavailableError(`Redis refused the fleet queue: ${r.message}`);
  return r!;
}

/**
 * Serves the fleet queue from this host while it has a ready slot and no local waiter.
 * Returns how many tickets it granted.
 */
export async function fleetDispatch(pool: WorktreePool): Promise<number> {
  if (!(pool.store instanceof RedisLeaseStore)) return 0;
  const url = pool.config.store.url!;
  const fleetKey = pool.store.keys.fleet;
  let served = 0;
  for (;;) {
    const st = await pool.readState();
    if (st.queue.length || !Object.values(st.slots).some((s) => s.state === 'ready')) return served;
    const popped = (await fq(pool, POP, [])) as [string, string, string] | null;
    if (!popped) return served;
    const [id, score, json] = popped;
    const t = JSON.parse(json) as FleetTicket;
    let lease;
    try {
      lease = await pool.lease({
        agent: t.agent,
        task: t.task,
        priority: t.priority,
        wait: false,
        ...(t.ttlMs ? { ttlMs: t.ttlMs } : {}),
        ...(t.identity ? { identity: t.identity } : {}),
      });
    } catch (e) {
      // Another process took the slot first (or it failed): the ticket keeps its place.
      await redisPipeline(url, [['ZADD', `${fleetKey}:fq`, score, id]]);
      if (e instanceof WtpoolError && e.exitCode === ExitCode.POOL_FULL) return served;
      throw e;
    }
    await redisPipeline(url, [
      ['SET', `${fleetKey}:fq:g:${id}`, JSON.stringify(withHost(pool, lease)), 'EX', 3600],
      ['PUBLISH', `${fleetKey}:changed`, `grant ${id}`],
    ]);
    served++;
  }
}

/** `acquire --any-host`: waits in the fleet queue for a slot on whichever host frees one first. */
export async function acquireAnyHost(
  pool: WorktreePool,
  o: LeaseOptions,
): Promise<AcquireResult & { host: string }> {
  const store = pool.store;
  if (!(store instanceof RedisLeaseStore)) {
    throw usageError('acquire --any-host needs the Redis lease store (store.backend: redis)', {
      hint: 'set store.backend: redis and store.url in pool.config.yaml (docs/fleet.md)',
    });
  }
  checkName(o.agent, 'agent');
  checkTask(o.task);
  const url = pool.config.store.url!;
  const fleetKey = store.keys.fleet;
  const timeoutMs = o.wait === false ? 0 : (o.timeoutMs ?? pool.config.pool.waitTimeout);
  const deadline = Date.now() + timeoutMs;
  const ticket: FleetTicket = {
    agent: o.agent,
    task: o.task,
    priority: o.priority ?? 2,
    host: store.hostId,
    ...(o.ttlMs ? { ttlMs: o.ttlMs } : {}),
    ...(o.identity ? { identity: o.identity } : {}),
  };
  const id = String(
    await fq(pool, ENQUEUE, [ticket.priority, JSON.stringify(ticket), timeoutMs + 60_000]),
  );
  const grantKey = `${fleetKey}:fq:g:${id}`;
  const take = async () => {
    const [g] = await redisPipeline(url, [
      ['GET', grantKey],
      ['DEL', grantKey],
    ]);
    return typeof g === 'string' ? (JSON.parse(g) as AcquireResult & { host: string }) : undefined;
  };
  let wake: (() => void) | undefined;
  const stop = subscribe(url, [`${fleetKey}:changed`, `${store.keys.host}:changed`], () =>
    wake?.(),
  );
  try {
    for (;;) {
      await fleetDispatch(pool); // this host may serve the queue (us included)
      const got = await take();
      if (got) return got;
      const left = deadline - Date.now();
      if (left <= 0) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 500));
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = undefined;
    }
    if (Number(await fq(pool, CANCEL, [id])) === 0) {
      // A host popped our ticket as we gave up: its grant is on the way.
      for (let i = 0; i < 600; i++) {
        const got = await take();
        if (got) return got;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    throw poolFullError(
      o.wait === false
        ? 'no host of the fleet has a free slot'
        : `no host of the fleet freed a slot within ${Math.round(timeoutMs / 1000)}s`,
      { hint: 'retry later, or see `pool status --fleet`' },
    );
  } finally {
    stop();
  }
}
