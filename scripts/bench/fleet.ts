/**
 * `pnpm bench fleet` (issue 27, docs/fleet.md): how the Redis lease store's cost per acquire
 * grows with the fleet. Fleets of 1, 10 and 100 hosts share one real redis-server; each host is
 * an in-process RedisLeaseStore with its own connections, state directory (on tmpfs) and
 * registry of 8 ready slots, all on one fleet key, as separate machines would be. The same
 * offered load (1, then 8 concurrent clients, each acquire on a random host, then its release)
 * runs on each fleet, rounds interleaved; quoted: acquire+release p50/p99 and Redis commands per
 * acquire (INFO stats, the whole server, so housekeeping and retries count), each against the
 * 1-host fleet of the same run. Goal: ≤ 2× from 1 to 100 hosts.
 *
 * What it leaves out: git and services (they do not depend on the fleet's size: `pnpm bench
 * pool` has them), and the hosts' idle heartbeats (one read per host every hostTtl/3: at 100
 * hosts and the default 2 m, 2.5 commands per second).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { defaultConfig } from '@wtpool/config';
import { createStore, type LeaseFile, type PoolState, type RedisLeaseStore } from '@wtpool/pool';
import { redisCommand } from '@wtpool/services';
import { startRedis } from '@wtpool/testkit';
import { fmtMs, percentile, report, scratch, time, type Row } from './harness.js';

const SIZES = [1, 10, 100] as const;
const SLOTS = 8;
const CLIENT_COUNTS = [1, 8] as const;
const ROUNDS = 12;

interface Host {
  id: string;
  store: RedisLeaseStore;
}

function fleetOf(root: string, url: string, size: number): Host[] {
  const repoId = randomBytes(6).toString('hex');
  return Array.from({ length: size }, (_, i) => {
    const dir = path.join(root, `f${size}-h${i}`);
    const stateDir = path.join(dir, '.git', 'wtpool');
    mkdirSync(stateDir, { recursive: true });
    writeFileSync(path.join(stateDir, 'fleet-repo-id'), `${repoId}\n`);
    const config = defaultConfig();
    config.store = { ...config.store, backend: 'redis', url: `${url}/0`, hostTtl: 120_000 };
    config.fleet = { host: `h${i}` };
    const repo = { worktree: dir, commonDir: path.join(dir, '.git'), mainRoot: dir, stateDir };
    return { id: `h${i}`, store: createStore({ config, repo, file: null }) as RedisLeaseStore };
  });
}

/** A host's registry with SLOTS ready slots (the records the state machine keeps, minimal). */
async function seed(h: Host): Promise<void> {
  await h.store.transact((d: PoolState) => {
    for (let n = 1; n <= SLOTS; n++) {
      const id = `wt-${n}`;
      d.slots[id] = {
        id,
        n,
        state: 'ready',
        path: `/nowhere/${h.id}/${id}`,
        branch: null,
        lease: null,
        createdAt: new Date().toISOString(),
        readyAt: new Date().toISOString(),
        owner: null,
        error: null,
      } as PoolState['slots'][string];
    }
  });
}

/** One acquire and its release on a host, through the store as the pool uses it. */
async function cycle(h: Host, agent: string): Promise<void> {
  const lease = await h.store.transact((d: PoolState) => {
    const s = Object.values(d.slots).find((x) => x.state === 'ready');
    if (!s) return undefined;
    const token = ++d.lastToken;
    const at = new Date().toISOString();
    s.state = 'leased';
    s.lease = {
      slot: s.id,
      agent,
      task: 'bench',
      slug: 'bench',
      branch: `wt/${agent}`,
      priority: 2,
      token,
      acquiredAt: at,
      heartbeatAt: at,
      ttlMs: 3_600_000,
      expiresAt: at,
      host: h.id,
      holder: null,
      claimer: { pid: process.pid, start: null, host: h.id },
      identity: null,
      ticket: null,
      requestedAt: at,
    };
    return s.lease;
  });
  if (!lease) throw new Error(`no ready slot on ${h.id}`); // SLOTS ≥ clients: never
  const doc = { slot: lease.slot, agent, token: lease.token } as unknown as LeaseFile;
  await h.store.createLease(doc);
  await h.store.transact((d: PoolState) => {
    const s = d.slots[lease.slot]!;
    if (s.lease?.token !== lease.token) return;
    s.state = 'ready';
    s.lease = null;
  });
  await h.store.removeLease(lease.slot, lease.token);
}

/** The server's commands so far (those run inside scripts included) and its CPU time in ms. */
const serverWork = async (url: string): Promise<{ commands: number; cpu: number }> => {
  const info = String(await redisCommand(url, 'INFO', 'all'));
  const num = (k: string) => Number(new RegExp(`${k}:([\\d.]+)`).exec(info)?.[1] ?? NaN);
  return {
    commands: num('total_commands_processed'),
    cpu: (num('used_cpu_sys') + num('used_cpu_user')) * 1000,
  };
};

export async function run(): Promise<void> {
  const root = scratch('fleet', true);
  const redis = await startRedis({ databases: 16 });
  try {
    const fleets = new Map<number, Host[]>();
    for (const n of SIZES) {
      const hosts = fleetOf(root, redis.url, n);
      for (const h of hosts) await seed(h);
      fleets.set(n, hosts);
    }
    const rows: Row[] = [];
    for (const clients of CLIENT_COUNTS) {
      const lat = new Map<number, number[]>(SIZES.map((n) => [n, []]));
      const cmds = new Map<number, { commands: number; cpu: number; cycles: number }>(
        SIZES.map((n) => [n, { commands: 0, cpu: 0, cycles: 0 }]),
      );
      for (let r = 0; r < ROUNDS; r++) {
        for (const n of SIZES) {
          const hosts = fleets.get(n)!;
          const before = await serverWork(redis.url);
          await Promise.all(
            Array.from({ length: clients }, async (_, c) => {
              const h = hosts[Math.floor(Math.random() * hosts.length)]!;
              lat.get(n)!.push(await time(() => cycle(h, `a${c}`)));
            }),
          );
          const c = cmds.get(n)!;
          const after = await serverWork(redis.url);
          c.commands += after.commands - before.commands - 1; // less the INFO itself
          c.cpu += after.cpu - before.cpu;
          c.cycles += clients;
        }
      }
      const per = (n: number) => cmds.get(n)!.commands / cmds.get(n)!.cycles;
      const cpu = (n: number) => cmds.get(n)!.cpu / cmds.get(n)!.cycles;
      const who = `${clients} client${clients > 1 ? 's' : ''}`;
      for (const n of SIZES.slice(1)) {
        for (const p of [50, 99]) {
          const v = percentile(lat.get(n)!, p);
          const b = percentile(lat.get(1)!, p);
          rows.push({
            what: `acquire+release p${p}, ${n} hosts, ${who}`,
            value: fmtMs(v),
            baseline: `${fmtMs(b)} at 1 host`,
            ratio: v / b,
            goal: n === 100 ? '≤ 2×' : '',
          });
        }
        rows.push({
          what: `Redis server CPU per acquire+release, ${n} hosts, ${who}`,
          value: fmtMs(cpu(n)),
          baseline: `${fmtMs(cpu(1))} at 1 host`,
          ratio: cpu(n) / cpu(1),
          goal: n === 100 ? '≤ 2×' : '',
        });
        rows.push({
          what: `Redis commands per acquire+release (inside scripts too), ${n} hosts, ${who}`,
          value: per(n).toFixed(1),
          baseline: `${per(1).toFixed(1)} at 1 host`,
          ratio: per(n) / per(1),
          goal: n === 100 ? '≤ 2×' : '',
        });
      }
    }
    report(
      `fleet: the Redis lease store's cost per acquire, 1 → 10 → 100 hosts (${ROUNDS} interleaved rounds per client count, state on tmpfs)`,
      rows,
    );
  } finally {
    await redis.stop();
    rmSync(root, { recursive: true, force: true });
  }
}
