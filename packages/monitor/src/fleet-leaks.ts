/**
 * Leaks across a fleet (store.backend redis, docs/fleet.md, docs/monitor.md "Leaks in a fleet"):
 * PostgreSQL databases and Redis DBs whose owner host is lost, or whose slot no longer exists
 * on its host. Owners come from the names themselves, through the one naming function
 * (`<dbPrefix>_<host>_wt<n>`, `<dbPrefix>_<host>_tpl_<hash>`) and the fleet band's owners
 * (`<host>/<slot>`); hosts and their registries from the pool's read-only fleet view. A host
 * this fleet does not know (never beat since Redis started) is never judged: its names may be
 * another fleet's, or a host still to re-register after a Redis restart. Nor is a host silent
 * past hostTtl until the pool's reclaim has marked it lost (hostState below).
 *
 * Every fix re-judges against a fresh view just before acting. A Redis DB is reserved in the
 * band (compare-and-set from the owner found to `<this host>/leak-cleanup`), flushed, then
 * freed: it is never handed to a new slot before it is empty, nor flushed once it was.
 */
import {
  fleetHost,
  slotId,
  slotNames,
  templateDatabase,
  type Config,
  type LoadedConfig,
  type RepoPaths,
} from '@wtpool/config';
import { failure } from '@wtpool/core';
import { asFleetHost, readFleetView, type FleetView, type PoolState } from '@wtpool/pool';
import { bandFor, flushIndex, type BandState } from '@wtpool/services';
import type { Leak } from './leak-kinds.js';
import { redisSnapshot } from './redis.js';

export const isFleet = (config: Config): boolean => config.store.backend === 'redis';

/** The band owner this host reserves a DB under while it flushes it. */
export const cleanupOwner = (config: Config): string => `${fleetHost(config)}/leak-cleanup`;

interface SlotInfo {
  state: string;
}

/** A host's slots by id: this host's from its registry, the others' from the fleet view. */
function hostSlots(view: FleetView, me: PoolState, host: string): Map<string, SlotInfo> | null {
  if (host === view.me) return new Map(Object.values(me.slots).map((s) => [s.id, s]));
  const h = view.hosts.find((x) => x.id === host);
  return h ? new Map(h.slots.map((s) => [s.id, s])) : null;
}

/**
 * A host is `lost` here only once it is marked lost (`<fleet>:lost`, by the pool's reclaim):
 * a marked host that comes back rebuilds every slot with fresh services, an unmarked one would
 * not. A host silent past hostTtl but not marked yet is `silent`, and not judged:
 * `cleanup-leaks` first runs the pool's own reclaim, which marks it.
 */
const hostState = (view: FleetView, host: string): 'live' | 'lost' | 'silent' | 'unknown' => {
  if (host === view.me) return 'live';
  const h = view.hosts.find((x) => x.id === host);
  if (!h) return 'unknown';
  if (h.state === 'live') return 'live';
  return h.lostAt !== null ? 'lost' : 'silent';
};

/** Which host of the fleet made this database name (slot or template), by the naming function. */
export function databaseOwner(
  config: Config,
  repo: RepoPaths,
  view: FleetView,
  name: string,
): { host: string; role: 'slot'; slot: string } | { host: string; role: 'template' } | null {
  const prefix = `${config.postgres.dbPrefix}_`;
  if (!name.startsWith(prefix)) return null;
  const slot = /_wt([1-9][0-9]{0,3})$/.exec(name);
  const tpl = /_tpl_([0-9a-f]{1,12})$/.exec(name);
  for (const h of view.hosts) {
    const as = asFleetHost(config, h.id);
    if (slot && slotNames(as, repo, Number(slot[1])).database === name)
      return { host: h.id, role: 'slot', slot: slotId(Number(slot[1])) };
    if (tpl && templateDatabase(as, tpl[1]!) === name) return { host: h.id, role: 'template' };
  }
  return null;
}

export interface DbRow {
  datname: string;
  comment: string | null;
  conns: string;
}

/**
 * Why a database of another host (or of a lost one) is a leak, or null. This host's own
 * databases keep the local rules (leaks.ts), which know its current template.
 */
export function judgeDatabase(
  view: FleetView,
  me: PoolState,
  owner: NonNullable<ReturnType<typeof databaseOwner>>,
): string | null {
  const state = hostState(view, owner.host);
  if (state === 'lost') return `its host ${owner.host} is lost`;
  if (state !== 'live' || owner.role !== 'slot') return null; // silent, unknown: not judged
  const slots = hostSlots(view, me, owner.host);
  return slots && !slots.has(owner.slot) ? `${owner.slot} is no slot of ${owner.host}` : null;
}

/** Databases of other hosts of the fleet that leaked (lost host, or a slot gone from its host). */
export function fleetDatabaseLeaks(
  loaded: LoadedConfig,
  view: FleetView,
  me: PoolState,
  rows: DbRow[],
): Leak[] {
  const { config, repo } = loaded;
  const leaks: Leak[] = [];
  for (const r of rows) {
    const owner = databaseOwner(config, repo, view, r.datname);
    if (!owner || owner.host === view.me) continue;
    const why = judgeDatabase(view, me, owner);
    if (!why) continue;
    leaks.push({
      kind: 'orphan-db',
      id: r.datname,
      message: `database ${r.datname} of host ${owner.host}: ${why}`,
      evidence: {
        database: r.datname,
        role: owner.role,
        host: owner.host,
        hostState: hostState(view, owner.host),
        slot: owner.role === 'slot' ? owner.slot : null,
        connections: Number(r.conns),
        comment: r.comment,
      },
      fix: 'drop the database (its connections are terminated)',
    });
  }
  return leaks;
}

/**
 * Why a Redis DB index is a leak, or null: allocated to a lost host, or to a slot its host no
 * longer has; or holding keys while no leased slot of a live host holds it (the local rule).
 */
export function judgeIndex(
  view: FleetView,
  me: PoolState,
  owner: string | undefined,
  keys: number,
): string | null {
  if (!owner) return keys > 0 ? 'no slot of the fleet holds it' : null;
  const at = owner.indexOf('/');
  const host = owner.slice(0, at);
  const slot = owner.slice(at + 1);
  const state = hostState(view, host);
  if (state === 'lost') return `its owner host ${host} is lost`;
  if (state !== 'live') return null; // silent, unknown: not judged
  const slots = hostSlots(view, me, host)!;
  if (!slots.has(slot)) return `${slot} is no slot of ${host}`;
  if (keys > 0 && slots.get(slot)!.state !== 'leased') return `${owner} is not leased`;
  return null;
}

export async function fleetRedisLeaks(
  loaded: LoadedConfig,
  view: FleetView,
  me: PoolState,
): Promise<Leak[]> {
  const { config, repo } = loaded;
  const [snap, band] = await Promise.all([
    redisSnapshot(config.redis.url!),
    bandFor(config, repo).read(),
  ]);
  const indexes = new Set([...Object.keys(snap.keys), ...Object.keys(band.alloc)].map(Number));
  const leaks: Leak[] = [];
  for (const index of [...indexes].sort((a, b) => a - b)) {
    if (index < config.redis.bandStart) continue; // the app's own DBs
    const keys = snap.keys[index] ?? 0;
    const owner = band.alloc[String(index)];
    const why = judgeIndex(view, me, owner, keys);
    if (!why) continue;
    const host = owner?.split('/')[0] ?? null;
    leaks.push({
      kind: 'orphan-redis-db',
      id: String(index),
      message: `Redis DB ${index} (${keys} keys${owner ? `, allocated to ${owner}` : ''}): ${why}`,
      evidence: {
        index,
        keys,
        allocatedTo: owner ?? null,
        host,
        hostState: host ? hostState(view, host) : null,
      },
      fix: 'FLUSHDB it and free its band allocation',
    });
  }
  return leaks;
}

/** The fleet view and this host's registry, fresh (for a fix's re-check). */
async function fresh(loaded: LoadedConfig, me: () => Promise<PoolState>) {
  const [view, state] = await Promise.all([readFleetView(loaded), me()]);
  return { view, state };
}

/** Re-checks a fleet database leak just before it is dropped; throws when it is no leak now. */
export async function recheckFleetDatabase(
  loaded: LoadedConfig,
  leak: Leak,
  me: () => Promise<PoolState>,
): Promise<void> {
  const { view, state } = await fresh(loaded, me);
  const owner = databaseOwner(loaded.config, loaded.repo, view, leak.id);
  if (!owner || !judgeDatabase(view, state, owner)) {
    throw failure(
      'ERR_CLEANUP',
      `${leak.id} belongs to a live slot of ${owner?.host ?? 'the fleet'} now; left alone`,
    );
  }
}

/** Reserve (compare-and-set), flush, free: the fleet's orphan-redis-db fix. */
export async function flushFleetRedisDb(
  loaded: LoadedConfig,
  leak: Leak,
  me: () => Promise<PoolState>,
): Promise<string> {
  const { config, repo } = loaded;
  const index = String(Number(leak.id));
  const expected = (leak.evidence.allocatedTo as string | null) ?? undefined;
  const mine = cleanupOwner(config);
  const band = bandFor(config, repo);
  const { view, state } = await fresh(loaded, me);
  const keys = (await redisSnapshot(config.redis.url!)).keys[Number(index)] ?? 0;
  const reserved = await band.update((d: BandState) => {
    const owner = d.alloc[index];
    if (owner !== expected || !judgeIndex(view, state, owner, keys)) return false;
    d.alloc[index] = mine;
    return true;
  });
  if (!reserved) {
    throw failure('ERR_CLEANUP', `DB ${index} changed hands or is in use now; left alone`);
  }
  await flushIndex(config.redis.url!, Number(index));
  await band.update((d: BandState) => {
    if (d.alloc[index] === mine) delete d.alloc[index];
  });
  return `flushed Redis DB ${index} and freed its allocation${expected ? ` (was ${expected})` : ''}`;
}
