/**
 * The Redis elastic band: one logical DB per leased slot. Physical capacity is Redis's
 * `databases` (restart-bound); the band is the allocatable range [bandStart, bandStart+current)
 * inside it. It idles at `floor`, grows by `step` when exhausted and shrinks by `step` when its
 * top step is empty, never below the floor, never past the physical ceiling, never restarting
 * Redis. Allocations live in their own JsonStore (`redis-band.json` in the state dir).
 */
import { capacityError, serviceUnavailableError } from '@wtpool/core';
import type { Config, LoadedConfig } from '@wtpool/config';
import { urlWithPath } from '@wtpool/config';
import type { BandState } from './band-store.js';
import { bandFor, bandOwner } from './fleet-band.js';
import type { ProviderContext, SlotProvider } from './provider.js';
import { physicalDatabases, redisPipeline, RedisReplyError, type Reply } from './resp.js';

export interface Capacity {
  floor: number;
  step: number;
  current: number;
  used: number;
  free: number;
  physical_max: number;
  /**
   * Present when Redis has fewer databases than the configured band needs (bandStart + floor):
   * one line with the two fixes. `floor` and `current` are then what exists, not the config.
   */
  warning?: string;
}

export type BandEvent = { type: 'band-grow' | 'band-shrink'; from: number; to: number };

type RedisConfig = Config['redis'];

/** Band size actually usable under the physical ceiling. */
const usable = (r: RedisConfig, current: number, physical: number) =>
  Math.max(0, Math.min(current, physical - r.bandStart));

/** The floor the band can have: the configured one, or all there is when Redis has fewer DBs. */
const floorUnder = (r: RedisConfig, physical: number) =>
  Math.min(r.floor, Math.max(0, physical - r.bandStart));

/**
 * One line when the physical ceiling is below the configured band (a stock redis-server has 16
 * databases, the default floor is 20), naming the two fixes; undefined when the band fits.
 */
export function ceilingWarning(r: RedisConfig, physical: number): string | undefined {
  const ceiling = Math.max(0, physical - r.bandStart);
  if (ceiling >= r.floor) return undefined;
  const range = ceiling > 0 ? `DBs ${r.bandStart}–${physical - 1}` : 'no DB';
  return `Redis has ${physical} databases, so the band gets ${ceiling} (${range}), below redis.floor ${r.floor}: run \`pool scale --provision\` (restarts Redis once) or set redis.floor to ${ceiling || 1}${ceiling ? '' : ' and lower redis.bandStart'} in pool.config.yaml`;
}

/**
 * Allocates the lowest free index for `slot` (reusing its existing one), growing the band by
 * step when exhausted. Pure: changes `d`, returns the index and the grow event if any.
 */
export function allocate(
  r: RedisConfig,
  d: BandState,
  slot: string,
  physical: number,
): { index: number; event?: BandEvent } {
  d.physical = physical;
  // Never claim more than exists: under a low ceiling the band idles at what there is.
  const floor = floorUnder(r, physical);
  if (d.current < floor) d.current = floor;
  const mine = Object.entries(d.alloc).find(([, s]) => s === slot);
  if (mine) return { index: Number(mine[0]) };
  const lowestFree = (size: number) => {
    for (let i = r.bandStart; i < r.bandStart + usable(r, size, physical); i++) {
      if (d.alloc[i] === undefined) return i;
    }
    return undefined;
  };
  let index = lowestFree(d.current);
  let event: BandEvent | undefined;
  if (index === undefined) {
    const ceiling = physical - r.bandStart;
    if (d.current >= ceiling) {
      throw capacityError(
        `Redis has no free logical database: all ${Math.max(0, ceiling)} DBs from index ${r.bandStart} to ${physical - 1} are leased (physical databases = ${physical})`,
        {
          hint: 'raise the ceiling with `pool scale --provision` (restarts Redis once), or free leaked DBs with `monitor cleanup-leaks`',
          details: { physical, bandStart: r.bandStart, current: d.current },
        },
      );
    }
    const to = Math.min(d.current + r.step, ceiling);
    event = { type: 'band-grow', from: d.current, to };
    d.current = to;
    index = lowestFree(to)!;
  }
  d.alloc[index] = slot;
  return event ? { index, event } : { index };
}

/** Frees `slot`'s index and shrinks the band while its top step is empty (never below floor). */
export function free(r: RedisConfig, d: BandState, slot: string): BandEvent[] {
  for (const [i, s] of Object.entries(d.alloc)) if (s === slot) delete d.alloc[i];
  const events: BandEvent[] = [];
  while (d.current > r.floor) {
    const to = Math.max(r.floor, d.current - r.step);
    const busy = Object.keys(d.alloc).some((i) => Number(i) >= r.bandStart + to);
    if (busy) break;
    events.push({ type: 'band-shrink', from: d.current, to });
    d.current = to;
  }
  return events;
}

const indexOf = (d: BandState, slot: string): number | undefined => {
  const e = Object.entries(d.alloc).find(([, s]) => s === slot);
  return e ? Number(e[0]) : undefined;
};

function check(replies: Reply[], what: string): void {
  const err = replies.find((r) => r instanceof RedisReplyError);
  if (err) throw serviceUnavailableError(`Redis refused ${what}: ${(err as Error).message}`);
}

/** SELECT n; FLUSHDB — so no stale key survives index reuse. */
export async function flushIndex(url: string, index: number): Promise<void> {
  check(await redisPipeline(url, [['SELECT', index], ['FLUSHDB']]), `FLUSHDB of DB ${index}`);
}

async function emit(ctx: ProviderContext, events: BandEvent[]): Promise<void> {
  for (const e of events) await ctx.event(e.type, { from: e.from, to: e.to });
}

export function redisProvider(config: Config): SlotProvider {
  const r = config.redis;
  const url = r.url!;
  const env = (index: number) => ({
    REDIS_DB: String(index),
    REDIS_URL: urlWithPath(url, String(index)),
  });
  return {
    name: 'redis',
    async lease(ctx) {
      // Reachability and the ceiling first: if Redis is down, nothing is allocated.
      const physical = await physicalDatabases(url);
      const store = bandFor(config, ctx.repo);
      const got = await store.update((d) =>
        allocate(r, d, bandOwner(config, ctx.names.id), physical),
      );
      try {
        await flushIndex(url, got.index);
      } catch (e) {
        await store.update((d) => void free(r, d, bandOwner(config, ctx.names.id)));
        throw e;
      }
      if (got.event) await emit(ctx, [got.event]);
      return env(got.index);
    },
    async env(ctx) {
      const index = indexOf(
        await bandFor(config, ctx.repo).read(),
        bandOwner(config, ctx.names.id),
      );
      return index === undefined ? {} : env(index);
    },
    async release(ctx) {
      const store = bandFor(config, ctx.repo);
      const index = indexOf(await store.read(), bandOwner(config, ctx.names.id));
      if (index === undefined) return;
      // Flush before freeing: if Redis is down the index stays allocated (never reused dirty).
      await flushIndex(url, index);
      const events = await store.update((d) => free(r, d, bandOwner(config, ctx.names.id)));
      await emit(ctx, events);
    },
    async destroy(ctx) {
      await this.release!(ctx);
    },
    async check(ctx) {
      const d = await bandFor(config, ctx.repo).read();
      const index = indexOf(d, bandOwner(config, ctx.names.id));
      if (index !== undefined && d.physical !== null && index >= d.physical) {
        return [`Redis DB ${index} of ${ctx.names.id} is past the physical ceiling ${d.physical}`];
      }
      return [];
    },
  };
}

/** The band's capacity block for status/snapshot, or null when Redis is disabled. */
export async function redisCapacity(loaded: LoadedConfig): Promise<Capacity | null> {
  const r = loaded.config.redis;
  if (!r.url) return null;
  const d = await bandFor(loaded.config, loaded.repo).read();
  let physical = d.physical;
  try {
    physical = await physicalDatabases(r.url);
  } catch {
    // Redis down: report what we saw last (status must not fail because of it).
  }
  const ceiling = physical ?? r.bandStart + r.floor;
  const current = usable(r, Math.max(d.current, r.floor), ceiling);
  const used = Object.keys(d.alloc).length;
  const warning = physical === null ? undefined : ceilingWarning(r, physical);
  return {
    floor: floorUnder(r, ceiling),
    step: r.step,
    current,
    used,
    free: Math.max(0, current - used),
    physical_max: physical ?? 0,
    ...(warning ? { warning } : {}),
  };
}
