/**
 * The Redis band of a fleet (store.backend redis, docs/fleet.md): the allocations live in the
 * fleet's Redis under `<fleet>:band`, shared by every host, so no two hosts ever hold the same
 * logical DB. An allocation is owned by `<host>/<slot>`. Commits are compare-and-set by version
 * in one Lua script; each host mirrors the band into its local `fleet-band.json`, from which a
 * Redis restarted empty is re-filled: each host's own entries from its own copy (REGISTER,
 * docs/fleet.md, D377).
 */
import { fleetHost, fleetKeys, type Config, type RepoPaths } from '@wtpool/config';
import { redact, serviceUnavailableError } from '@wtpool/core';
import path from 'node:path';
import { JsonStore, StoreConflictError } from '@wtpool/lock';
import { bandStore, type BandState } from './band-store.js';
import { redisPipeline, RedisReplyError, type Reply } from './resp.js';

/** The two methods of the band's store (the file backend is a JsonStore). */
export interface BandStore {
  read(): Promise<BandState>;
  update<R>(fn: (d: BandState) => R): Promise<R>;
}

/** KEYS band; ARGV expectedV doc → new version, or -1 when another commit came first. */
const COMMIT = `local v = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if v ~= tonumber(ARGV[1]) then return -1 end
redis.call('HSET', KEYS[1], 'v', v + 1, 'doc', ARGV[2])
return v + 1`;

/**
 * KEYS band; ARGV mirror host ttlMs → registers `host` in the band, returning the indexes of its
 * mirror it could not have back. When Redis has no band (restarted empty) the whole band as this
 * host last saw it comes back as placeholders, and allocations wait (`expect`, `until`) until
 * every host it knew has registered or hostTtl passed. A registering host then sets its own
 * entries exactly as its mirror has them (it knows its own best), over placeholders of hosts not
 * registered yet; an index a registered host holds is that host's: it is returned (`i=owner`),
 * and the caller marks the slot that held it broken.
 */
const REGISTER = `local t = redis.call('TIME'); local now = t[1] * 1000 + math.floor(t[2] / 1000)
local host = ARGV[2]
local m = cjson.decode(ARGV[1])
local cur = redis.call('HGET', KEYS[1], 'doc')
local d
if cur then
  d = cjson.decode(cur)
else
  d = {current = m.current or 0, physical = m.physical, alloc = m.alloc or {}, hosts = {}, expect = {}}
  for h, _ in pairs(m.hosts or {}) do
    if h ~= host then table.insert(d.expect, h) end
  end
  d['until'] = now + tonumber(ARGV[3])
end
d.alloc = d.alloc or {}
d.hosts = d.hosts or {}
local prefix = host .. '/'
for i, owner in pairs(d.alloc) do
  if string.sub(owner, 1, #prefix) == prefix and (m.alloc == nil or m.alloc[i] ~= owner) then d.alloc[i] = nil end
end
local lost = {}
for i, owner in pairs(m.alloc or {}) do
  if string.sub(owner, 1, #prefix) == prefix and d.alloc[i] ~= owner then
    local other = d.alloc[i]
    local otherHost = other and string.match(other, '^([^/]*)/')
    if other == nil or not d.hosts[otherHost] then
      d.alloc[i] = owner
    else
      table.insert(lost, i .. '=' .. owner)
    end
  end
end
if next(d.alloc) == nil then d.alloc = cjson.decode('{}') end
d.hosts[host] = true
local v = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
redis.call('HSET', KEYS[1], 'v', v + 1, 'doc', cjson.encode(d))
return lost`;

/** The fleet-only fields of the band document in Redis. */
interface FleetBand extends BandState {
  /** Hosts registered since Redis last started. */
  hosts?: Record<string, boolean>;
  /** After a restart: hosts whose allocations were known, awaited until `until` (server ms). */
  expect?: string[];
  until?: number;
}

const empty = (): FleetBand => ({ current: 0, physical: null, alloc: {} });

async function call(url: string, cmd: (string | number)[]): Promise<Reply> {
  const [r] = await redisPipeline(url, [cmd]);
  if (r instanceof RedisReplyError) {
    throw serviceUnavailableError(`Redis at ${redact(url)} refused the band script: ${r.message}`);
  }
  return r!;
}

/** The fleet band store of this host. */
export class RedisBandStore implements BandStore {
  readonly key: string;
  private readonly host: string;

  constructor(
    private readonly url: string,
    private readonly config: Config,
    private readonly repo: RepoPaths,
  ) {
    this.key = `${fleetKeys(config, repo).fleet}:band`;
    this.host = fleetHost(config);
  }

  private mirrorStore(): JsonStore<FleetBand> {
    return new JsonStore<FleetBand>(path.join(this.repo.stateDir, 'fleet-band.json'), {
      initial: empty(),
    });
  }

  private async readVersioned(): Promise<{ version: number; data: FleetBand; now: number }> {
    const get = async () => {
      const [r, t] = await redisPipeline(this.url, [['HMGET', this.key, 'v', 'doc'], ['TIME']]);
      if (r instanceof RedisReplyError) throw serviceUnavailableError(r.message);
      const [v, doc] = r as (string | null)[];
      const time = t as string[];
      return {
        version: Number(v ?? 0),
        data: doc ? (JSON.parse(doc) as FleetBand) : undefined,
        now: Number(time[0]) * 1000 + Math.floor(Number(time[1]) / 1000),
      };
    };
    let got = await get();
    if (!got.data?.hosts?.[this.host]) {
      // First contact since Redis started: register (and re-fill a band Redis lost).
      await this.register();
      got = await get();
    }
    const doc = got.data ?? empty();
    return {
      version: got.version,
      data: { ...empty(), ...doc, alloc: doc.alloc ?? {} },
      now: got.now,
    };
  }

  /**
   * Registers this host in the band (re-filling a band Redis lost from the local mirror) and
   * returns the allocations of its mirror another host holds now (index → `<host>/<slot>`).
   * The lease store calls it on its own first contact after Redis lost its state, so every
   * live host registers within its first beat (docs/fleet.md).
   */
  async register(): Promise<{ index: number; owner: string }[]> {
    const mirror = await this.mirrorStore().read().catch(empty);
    const r = await call(this.url, [
      'EVAL',
      REGISTER,
      1,
      this.key,
      JSON.stringify(mirror),
      this.host,
      this.config.store.hostTtl,
    ]);
    return (Array.isArray(r) ? (r as string[]) : []).map((x) => {
      const eq = x.indexOf('=');
      return { index: Number(x.slice(0, eq)), owner: x.slice(eq + 1) };
    });
  }

  async read(): Promise<BandState> {
    return (await this.readVersioned()).data;
  }

  async update<R>(fn: (d: BandState) => R): Promise<R> {
    for (let attempt = 0; ; attempt++) {
      const base = await this.readVersioned();
      // cjson writes an empty list as {}.
      const expect = Array.isArray(base.data.expect) ? base.data.expect : [];
      const missing = expect.filter((h) => !base.data.hosts?.[h]);
      if (missing.length && base.now < (base.data.until ?? 0)) {
        // Redis came back empty: hosts that held DBs re-register first (docs/fleet.md).
        await new Promise((r) => setTimeout(r, 200));
        attempt--;
        continue;
      }
      const draft = structuredClone(base.data);
      const result = fn(draft);
      const v = Number(
        await call(this.url, ['EVAL', COMMIT, 1, this.key, base.version, JSON.stringify(draft)]),
      );
      if (v > 0) {
        await this.mirror(draft);
        return result;
      }
      if (attempt >= 200) throw new StoreConflictError(this.key, base.version);
      await new Promise((r) => setTimeout(r, Math.random() * Math.min(50, 2 + attempt * 2)));
    }
  }

  /** The band as this host last wrote it, kept locally for a Redis that comes back empty. */
  private async mirror(d: FleetBand): Promise<void> {
    await this.mirrorStore().update((m) => {
      Object.assign(m, d);
    });
  }
}

/** The band store the configuration names: the fleet's Redis (store.backend redis) or the file. */
export function bandFor(config: Config, repo: RepoPaths): BandStore {
  return config.store.backend === 'redis'
    ? new RedisBandStore(config.store.url!, config, repo)
    : bandStore(repo);
}

/** Who owns a band allocation: the slot id, or `<host>/<slot>` in a fleet. */
export function bandOwner(config: Config, slot: string): string {
  return config.store.backend === 'redis' ? `${fleetHost(config)}/${slot}` : slot;
}
