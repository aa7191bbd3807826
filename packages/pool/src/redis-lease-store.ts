/**
 * The Redis backend of the LeaseStore (contract in lease-store.ts; docs/fleet.md): one pool over
 * several machines. Every check-and-write is one server-side Lua script, so it is atomic:
 *
 * - `<host>:reg` (hash v, doc): this host's registry, committed by COMMIT only when the
 *   version read is unchanged (compare-and-set), then published on `<host>:changed`.
 * - `<fleet>:token`: the ONE fencing counter of the fleet. A commit that handed out tokens
 *   also sets it, only if nobody else moved it since the read, so a token names one lease for
 *   ever across all hosts. `<fleet>:epoch` marks the counter's life: when Redis lost it
 *   (restarted without persistence), RESTORE re-seeds it above every token any host can have
 *   seen (its local mirror, and the server clock in ms, see docs/fleet.md) before anything
 *   is granted again, and re-registers this host's slots and leases from its local files.
 * - `<host>:leases` (hash slot → LeaseFile JSON): HSETNX creates, scripts compare the token
 *   field before replacing, removing or moving aside. Each record is mirrored to the local
 *   lease file (`leases/<slot>.json`), from which a restarted Redis is re-filled.
 * - `<fleet>:hosts` (hash host → last heartbeat, server ms): every read and commit of a host
 *   beats for it; fleet.ts tells the lost ones.
 *
 * Redis unreachable: every call throws serviceUnavailableError (exit 6) before anything is
 * written, and a commit is one script: it happens whole or not at all.
 */
import { readFileSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { fleetKeys, type FleetKeys, type LoadedConfig } from '@wtpool/config';
import { isWtpoolError, redact, serviceUnavailableError, usageError } from '@wtpool/core';
import { readJsonFile, StoreConflictError, writeFileAtomic } from '@wtpool/lock';
import { isReplyError, redisPipeline, subscribeLazily, type Reply } from './resp-lazy.js';
import { acked, evalScript, type Ack } from './redis-scripts.js';
import { FileLeaseStore } from './file-lease-store.js';
import type { LeaseStore } from './lease-store.js';
import { initialState } from './state.js';
import type { LeaseFile, PoolState, SlotRecord } from './types.js';

/** The local copy of this host's registry, from which a Redis that lost it is re-filled. */
interface Mirror {
  version: number;
  doc: PoolState;
  /** The highest fencing token this host has seen in the fleet counter. */
  seenToken: number;
}

const MAX_ATTEMPTS = 200;

export class RedisLeaseStore implements LeaseStore {
  readonly location: string;
  readonly keys: FleetKeys;
  private readonly url: string;
  /** Lease records mirrored as local files (the file backend's, so `doctor` reads them too). */
  private readonly local: FileLeaseStore;
  private readonly mirrorFile: string;
  private readonly k: Record<
    | 'reg'
    | 'leases'
    | 'aside'
    | 'token'
    | 'epoch'
    | 'floor'
    | 'hosts'
    | 'lost'
    | 'clock'
    | 'conn'
    | 'changed',
    string
  >;
  /** The fleet's PostgreSQL connection budget (store.ts sets it when slots have databases). */
  connBudget?: () => Promise<number | null>;
  private budgetNow: number | null = null;
  private othersConn = 0;
  private readonly connLimit: number;
  /** Replica acknowledgement of every lease write (store.replicas; none when 0). */
  private readonly ack: Ack | undefined;
  /** Lease tokens read with the registry version being changed (answers leaseToken). */
  private tokens = new Map<string, number>();
  private seenToken = 0;
  /** Looks for lost hosts and reclaims them (fleet.ts); run at most every hostTtl/3. */
  housekeeping?: () => Promise<void>;
  private readonly tick: number;
  private lastHousekeeping = 0;

  constructor(loaded: LoadedConfig, keys: FleetKeys = fleetKeys(loaded.config, loaded.repo)) {
    this.url = loaded.config.store.url!;
    this.connLimit = loaded.config.postgres.url ? loaded.config.postgres.connectionLimit : 0;
    const { replicas, replicaTimeout } = loaded.config.store;
    this.ack = replicas > 0 ? { replicas, timeoutMs: replicaTimeout } : undefined;
    this.tick = Math.max(500, Math.floor(loaded.config.store.hostTtl / 3));
    this.keys = keys;
    this.location = `${redact(this.url)} ${keys.host}`;
    this.local = new FileLeaseStore(loaded.repo.stateDir);
    this.mirrorFile = path.join(loaded.repo.stateDir, 'fleet-mirror.json');
    const h = keys.host;
    const f = keys.fleet;
    this.k = {
      reg: `${h}:reg`,
      leases: `${h}:leases`,
      aside: `${h}:leases-aside`,
      token: `${f}:token`,
      epoch: `${f}:epoch`,
      floor: `${f}:floor`,
      hosts: `${f}:hosts`,
      lost: `${f}:lost`,
      clock: `${f}:clock`,
      conn: `${f}:conn`,
      changed: `${h}:changed`,
    };
  }

  get hostId(): string {
    return this.keys.hostId;
  }

  /** This process failed to reach Redis since it last told the fleet's clock (D376). */
  private outage = false;

  /** Whether to tell the fleet's clock of an outage now (the flag is cleared: told once). */
  takeOutage(): boolean {
    const o = this.outage;
    this.outage = false;
    return o;
  }

  /** Runs a store call, remembering a failure to reach Redis for the next successful one. */
  private async noticing<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (isWtpoolError(e) && e.code === 'ERR_SERVICE_UNAVAILABLE') this.outage = true;
      throw e;
    }
  }

  private async readRaw(): Promise<{
    version: number;
    data: PoolState;
    token: number;
    epoch: string;
    lost: boolean;
  }> {
    const k = this.k;
    const read = async () =>
      (await this.noticing(() =>
        evalScript(
          this.url,
          'read',
          [k.reg, k.leases, k.token, k.epoch, k.hosts, k.lost, k.clock, k.conn],
          [this.keys.hostId, this.takeOutage() ? '1' : '0'],
        ),
      )) as Reply[];
    let r = await read();
    if (r[0] === null || r[4] === null) {
      // Redis has no registry of this host, or lost the fleet counter: re-register first.
      await this.restore();
      r = await read();
    }
    const doc = typeof r[1] === 'string' ? (JSON.parse(r[1]) as PoolState) : initialState();
    const flat = (r[2] as string[]) ?? [];
    const tokens = new Map<string, number>();
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const t = (JSON.parse(flat[i + 1]!) as LeaseFile).token;
      if (typeof t === 'number') tokens.set(flat[i]!, t);
    }
    this.tokens = tokens;
    const token = Number(r[3] ?? 0);
    if (token > this.seenToken) this.seenToken = token;
    this.othersConn = Number(r[6] ?? 0);
    return {
      version: Number(r[0] ?? 0),
      data: { ...initialState(), ...doc },
      token,
      epoch: String(r[4] ?? ''),
      lost: r[5] !== null && r[5] !== undefined,
    };
  }

  /**
   * Re-registers this host's registry and lease records from its local files, and its Redis
   * DBs in the fleet band (docs/fleet.md). A lease granted before Redis lost its state (token
   * below the floor) comes back ended: nobody can prove it was not released or taken back
   * since this host's last copy, so its holder is refused and the slot is reclaimed with
   * rescue. A Redis DB another host registered first marks the slot that held it broken.
   */
  private async restore(): Promise<void> {
    const mirror = await readJsonFile<Mirror>(this.mirrorFile).catch(() => undefined);
    const leases = mirror ? await this.local.listLeases() : [];
    const seen = Math.max(
      this.seenToken,
      mirror?.seenToken ?? 0,
      mirror?.doc.lastToken ?? 0,
      ...leases.map((l) => l.lease?.token ?? 0),
    );
    const k = this.k;
    const floor = Number(
      await evalScript(
        this.url,
        'seed',
        [k.token, k.epoch, k.floor],
        [seen, `${Date.now().toString(36)}-${process.pid}`],
        this.ack,
      ),
    );
    const why = `the fleet's Redis lost its state (restarted empty) after this lease was granted`;
    const doc = mirror ? structuredClone(mirror.doc) : undefined;
    for (const s of Object.values(doc?.slots ?? {}))
      if (s.lease && s.lease.token < floor) s.lease.ended ??= why;
    const docs = leases.flatMap((l) => (l.lease ? [JSON.stringify(l.lease)] : []));
    const restored =
      (await evalScript(
        this.url,
        'restore',
        [k.reg, k.leases],
        [doc ? JSON.stringify(doc) : '', mirror ? mirror.version : 0, ...docs],
        this.ack,
      )) === 1;
    if (restored && doc && this.registerBand) await this.registerBand();
  }

  /**
   * Registers this host's Redis DBs in the fleet band after Redis lost them (set by store.ts
   * when the pool has a Redis band), returning the slots whose DB another host holds now.
   */
  registerBand?: () => Promise<void>;

  private async writeMirror(version: number, doc: PoolState): Promise<void> {
    const cur = await readJsonFile<Mirror>(this.mirrorFile).catch(() => undefined);
    if (cur && cur.version > version) return; // a newer commit was mirrored first
    const m: Mirror = { version, doc, seenToken: Math.max(this.seenToken, cur?.seenToken ?? 0) };
    await writeFileAtomic(this.mirrorFile, JSON.stringify(m) + '\n', { mode: 0o600 });
  }

  async read(): Promise<PoolState> {
    return (await this.readRaw()).data;
  }

  async readVersioned(): Promise<{ version: number; data: PoolState }> {
    const r = await this.readRaw();
    return { version: r.version, data: r.data };
  }

  /** Runs the fleet housekeeping when this process has not for a tick (hostTtl/3). */
  async housekeep(force = false): Promise<void> {
    if (!this.housekeeping) return;
    if (!force && Date.now() - this.lastHousekeeping < this.tick) return;
    this.lastHousekeeping = Date.now();
    await this.housekeeping();
  }

  /** The connections this host's leases take (connectionLimit each, when slots have databases). */
  private connOf(st: PoolState): number {
    if (!this.connLimit) return 0;
    return Object.values(st.slots).filter((s) => s.lease).length * this.connLimit;
  }

  /**
   * How many leases this host may hold in the transaction running now: the fleet's PostgreSQL
   * connection budget left by the other hosts' leases, in leases (Infinity without a budget).
   */
  maxLeases(): number {
    if (this.budgetNow === null || !this.connLimit) return Infinity;
    return Math.max(0, Math.floor((this.budgetNow - this.othersConn) / this.connLimit));
  }

  /** The budget and what the other hosts use, for a waiter's message (null without a budget). */
  connections(): { budget: number; others: number } | null {
    return this.budgetNow === null ? null : { budget: this.budgetNow, others: this.othersConn };
  }

  async transact<R>(fn: (draft: PoolState) => R): Promise<R> {
    const k = this.k;
    await this.housekeep();
    const budget = this.connLimit && this.connBudget ? await this.connBudget() : null;
    this.budgetNow = budget;
    for (let attempt = 0; ; attempt++) {
      const base = await this.readRaw();
      const draft = structuredClone(base.data);
      if (base.lost) returnFromLost(draft);
      // Tokens come from the fleet counter: start above every token any host handed out.
      const baseToken = Math.max(base.token, base.data.lastToken);
      draft.lastToken = baseToken;
      const result = fn(draft);
      const doc = JSON.stringify(draft);
      if (!base.lost && doc === JSON.stringify({ ...base.data, lastToken: baseToken })) {
        return result; // nothing changed: nothing to commit
      }
      const v = Number(
        await this.noticing(() =>
          evalScript(
            this.url,
            'commit',
            [k.reg, k.token, k.epoch, k.hosts, k.lost, k.clock, k.conn],
            [
              base.version,
              doc,
              base.token,
              draft.lastToken,
              base.epoch,
              this.keys.hostId,
              k.changed,
              base.lost ? '1' : '0',
              this.takeOutage() ? '1' : '0',
              this.connOf(draft),
              budget ?? '',
            ],
            this.ack,
          ),
        ),
      );
      if (v > 0) {
        if (draft.lastToken > this.seenToken) this.seenToken = draft.lastToken;
        await this.writeMirror(v, draft);
        return result;
      }
      if (attempt >= MAX_ATTEMPTS) throw new StoreConflictError(k.reg, base.version);
      await new Promise((r) => setTimeout(r, Math.random() * Math.min(50, 2 + attempt * 2)));
    }
  }

  private async leaseRecords(): Promise<Map<string, LeaseFile>> {
    const r = await redisPipeline(this.url, [['HGETALL', this.k.leases]]);
    if (isReplyError(r[0])) throw serviceUnavailableError(r[0].message);
    const flat = (r[0] as string[]) ?? [];
    const out = new Map<string, LeaseFile>();
    for (let i = 0; i + 1 < flat.length; i += 2) {
      out.set(flat[i]!, JSON.parse(flat[i + 1]!) as LeaseFile);
    }
    return out;
  }

  async readLease(slot: string): Promise<LeaseFile | undefined> {
    const r = await redisPipeline(this.url, [['HGET', this.k.leases, slotKey(slot)]]);
    return typeof r[0] === 'string' ? (JSON.parse(r[0]) as LeaseFile) : undefined;
  }

  leaseToken(slot: string): number | null {
    return this.tokens.get(slot) ?? null;
  }

  async createLease(doc: LeaseFile): Promise<boolean> {
    const r = await acked(
      this.url,
      ['HSETNX', this.k.leases, slotKey(doc.slot), JSON.stringify(doc)],
      this.ack,
    );
    if (r !== 1) return false;
    await this.mirrorLease(doc);
    return true;
  }

  async replaceLease(doc: LeaseFile): Promise<boolean> {
    const ok =
      (await evalScript(
        this.url,
        'replace',
        [this.k.leases],
        [slotKey(doc.slot), doc.token, JSON.stringify(doc)],
        this.ack,
      )) === 1;
    if (ok) await this.mirrorLease(doc);
    return ok;
  }

  async removeLease(slot: string, token: number | null): Promise<void> {
    await evalScript(this.url, 'remove', [this.k.leases], [slotKey(slot), token ?? ''], this.ack);
    await this.local.removeLease(slot, token);
  }

  async moveAsideLease(slot: string, tag: string): Promise<void> {
    await evalScript(
      this.url,
      'moveAside',
      [this.k.leases, this.k.aside],
      [slotKey(slot), tag],
      this.ack,
    );
    await this.local.moveAsideLease(slot, tag);
  }

  /** The local lease file follows the Redis record (what a restarted Redis is re-filled from). */
  private async mirrorLease(doc: LeaseFile): Promise<void> {
    await this.local.removeLease(doc.slot, null);
    await this.local.createLease(doc);
  }

  async listLeases(): Promise<{ slot: string; where: string; lease: LeaseFile | undefined }[]> {
    const recs = await this.leaseRecords();
    const out: { slot: string; where: string; lease: LeaseFile | undefined }[] = [...recs].map(
      ([slot, lease]) => ({
        slot,
        where: `${redact(this.url)} ${this.k.leases} ${slot}`,
        lease,
      }),
    );
    // A local lease file with no record in Redis is a stale mirror: doctor sees it too.
    for (const l of await this.local.listLeases()) if (!recs.has(l.slot)) out.push(l);
    return out;
  }

  watch(onChange: () => void): () => void {
    const stop = subscribe(this.url, [this.k.changed, `${this.keys.fleet}:changed`], onChange);
    // A waiter keeps its host alive and looks for lost hosts while it waits.
    const timer = setInterval(() => {
      this.read()
        .then(() => this.housekeep())
        .catch(() => {}); // Redis away: the waiter's own reads report it
    }, this.tick);
    timer.unref();
    return () => {
      clearInterval(timer);
      stop();
    };
  }

  /** The mirrored registry (no Redis): what this host last committed. */
  readMirror(): Mirror | undefined {
    try {
      return JSON.parse(readFileSync(this.mirrorFile, 'utf8')) as Mirror;
    } catch {
      return undefined;
    }
  }

  /** Drops the local mirror files (tests, `pool reset`-like tools). */
  async forgetMirror(): Promise<void> {
    await fs.rm(this.mirrorFile, { force: true });
  }
}

const slotKey = (slot: string): string => {
  if (!/^wt-\d+$/.test(slot)) throw usageError(`invalid slot id ${JSON.stringify(slot)}`);
  return slot;
};

/**
 * A host that was marked lost while it was away had its services reclaimed by another host
 * (databases dropped, Redis DBs flushed) and its leases expired: every slot is marked broken
 * so the next acquire re-provisions it with its services reset (failures > 0); the worktrees
 * stay, and `doctor` rescues any work in them.
 */
export function returnFromLost(draft: PoolState): void {
  for (const s of Object.values(draft.slots))
    servicesGone(s, 'this host was lost to the fleet; its services were reclaimed');
  draft.queue = [];
}

/**
 * A pub/sub subscription (the services' client, loaded lazily): any message, and any
 * reconnection (messages may have been missed while Redis was away), calls onChange. Waiters
 * also poll, so a lost or spurious wake-up is harmless. It never keeps the process alive.
 */
export function subscribe(url: string, channels: string[], onChange: () => void): () => void {
  return subscribeLazily(url, channels, () => onChange(), { onReconnect: onChange });
}

/** A slot whose services are gone: broken, re-provisioned on its retry (its work rescued first). */
export function servicesGone(s: SlotRecord, error: string): void {
  s.state = 'broken';
  s.error = error;
  s.errorCode = 'ERR_SERVICE_UNAVAILABLE';
  s.owner = null;
  s.lease = null;
  s.branch = null;
  s.failures = Math.max(1, s.failures ?? 0);
  s.retryAt = new Date().toISOString();
}
