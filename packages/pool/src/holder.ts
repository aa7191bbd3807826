/**
 * Who may act on a lease: the holder check every release and heartbeat starts with (agent and
 * fencing token against the registry and the lease record), and the heartbeat itself.
 */
import { checkName, slotId, slotNumber } from '@wtpool/config';
import { conflictError, notFoundError } from '@wtpool/core';
import { tx, type PoolContext } from './context.js';
import { withLeaseLock } from './lease-serial.js';
import type { Lease, SlotRecord } from './types.js';

/**
 * Checks that `agent` holds `slot` (registry and lease record agree on the token). With a
 * `token`, the lease must be that one: a stale token is refused (exit 5) whatever the agent.
 */
export async function holderCheck(
  ctx: PoolContext,
  slotArg: string,
  agentArg: string,
  token?: number | null,
): Promise<{ id: string; slot: SlotRecord; lease: Lease }> {
  const id = slotId(slotNumber(slotArg));
  const agent = checkName(agentArg, 'agent');
  const slot = (await ctx.store.read()).slots[id];
  if (!slot)
    throw notFoundError(`there is no slot ${id} in the pool`, { hint: 'see `pool status`' });
  const lease = slot.lease;
  if (token !== undefined && token !== null && lease?.token !== token) {
    throw conflictError(
      `lease token ${token} of ${id} is stale (${lease ? `the lease now has token ${lease.token}` : `the slot is ${slot.state}: the lease was released or taken back`}); nothing was changed`,
      { hint: 'this lease is over; acquire a new slot' },
    );
  }
  if (lease?.ended) {
    throw conflictError(
      `the lease of ${id} (token ${lease.token}) is over: ${lease.ended}; nothing was changed`,
      {
        hint: 'its work is saved when the slot is reclaimed (`pool rescue list`); acquire a new slot',
      },
    );
  }
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
  const lf = await ctx.store.readLease(id);
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

/** Renews a lease's TTL (heartbeat). */
export async function heartbeat(
  ctx: PoolContext,
  o: { slot: string; agent: string; token?: number | null },
): Promise<{ slot: string; agent: string; token: number; heartbeatAt: string; expiresAt: string }> {
  const id = slotId(slotNumber(o.slot));
  // Serialised with the lease's releases: a heartbeat never renews a lease half released.
  return withLeaseLock(ctx.repo.stateDir, id, `heartbeat ${id}`, () => renew(ctx, o));
}

async function renew(
  ctx: PoolContext,
  o: { slot: string; agent: string; token?: number | null },
): Promise<{ slot: string; agent: string; token: number; heartbeatAt: string; expiresAt: string }> {
  const { id, lease } = await holderCheck(ctx, o.slot, o.agent, o.token);
  const { result } = await tx(ctx, (draft, _plan, now) => {
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
