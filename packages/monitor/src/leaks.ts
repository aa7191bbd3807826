/**
 * Leak detection: things the pool created (or that were created in its name) that nothing
 * owns any more. Every finding names its kind, a stable id, the evidence, and what
 * `cleanup-leaks` will do about it. Names come from @wtpool/config's naming function and the
 * pool's registry; nothing is re-derived here.
 */
import { existsSync, promises as fs, realpathSync } from 'node:fs';
import path from 'node:path';
import {
  integrationWorktrees,
  poolRoot,
  slotId,
  slotNames,
  templateDatabase,
  type LoadedConfig,
} from '@wtpool/config';
import { git, gitRun, serviceUnavailableError } from '@wtpool/core';
import { inspectLock } from '@wtpool/lock';
import { bandStore, migrationsHash } from '@wtpool/services';
import { readFleetView, type FleetView } from '@wtpool/pool';
import { fleetDatabaseLeaks, fleetRedisLeaks, isFleet } from './fleet-leaks.js';
import { LEAK_KINDS, type Leak } from './leak-kinds.js';
import { leaseOver, listWorktrees, readPoolState, type PoolState } from './pool-access.js';
import { withPg } from './postgres.js';
import { ancestry, listProcesses, processEnv, type ProcInfo } from './procs.js';
import { redisSnapshot } from './redis.js';

export { LEAK_KINDS, type Leak, type LeakKind } from './leak-kinds.js';

export interface LeakReport {
  leaks: Leak[];
  /** Checks that could not run (service down…), with the reason. */
  skipped: Array<{ check: string; reason: string }>;
}

/** A lock directory untouched for this long has no live holder refreshing it. */
export const LOCK_STALE_MS = 60_000;
/** A lease file this old without a registry lease is not a grant or release in flight. */
export const LEASE_FILE_GRACE_MS = 60_000;

export interface DetectContext {
  loaded: LoadedConfig;
  state: PoolState;
  now: number;
  /** Every host of the fleet (store.backend redis; fleet-leaks.ts), or null. */
  fleet: FleetView | null;
}

const slotsOf = (s: PoolState) => Object.values(s.slots);
const real = (p: string) => {
  try {
    return realpathSync(p);
  } catch {
    return path.resolve(p);
  }
};
const isUnder = (p: string, root: string) => p.startsWith(root + path.sep);

async function worktreeLeaks({ loaded, state }: DetectContext): Promise<Leak[]> {
  const { config, repo } = loaded;
  const root = real(poolRoot(config, repo));
  const registered = new Set(slotsOf(state).map((s) => real(s.path)));
  // The merge queue's worktree is part of the pool, not an orphan (nor one a running integrate holds).
  for (const p of integrationWorktrees(config, repo)) registered.add(real(p));
  const leaks: Leak[] = [];
  for (const wt of await listWorktrees(repo.mainRoot)) {
    const p = real(wt.path);
    if (!isUnder(p, root) || registered.has(p)) continue;
    const exists = existsSync(p);
    const dirty = exists
      ? (
          await gitRun(['status', '--porcelain', '--untracked-files=all'], { cwd: p })
        ).stdout.trim() !== ''
      : false;
    leaks.push({
      kind: 'orphan-worktree',
      id: p,
      message: `git worktree ${p} under the pool root is not a slot of the registry`,
      evidence: { path: p, head: wt.head, branch: wt.branch, exists, dirty },
      fix: exists
        ? 'save uncommitted work and unreachable commits to a rescue ref, then remove the worktree'
        : 'prune the worktree entry (its directory is gone)',
    });
  }
  for (const s of slotsOf(state)) {
    if (!['ready', 'leased', 'broken'].includes(s.state)) continue; // others are being (re)built
    if (existsSync(path.join(s.path, '.git'))) continue;
    leaks.push({
      kind: 'missing-worktree',
      id: s.id,
      message: `slot ${s.id} (${s.state}) has no worktree at ${s.path}`,
      evidence: { slot: s.id, state: s.state, path: s.path, dirExists: existsSync(s.path) },
      fix:
        s.state === 'leased'
          ? `none while ${s.lease?.agent ?? 'its holder'} holds it: \`pool release\` it and the pool recreates the worktree`
          : 'the pool recreates the worktree',
    });
  }
  return leaks;
}

async function branchLeaks({ loaded, state }: DetectContext): Promise<Leak[]> {
  const { config, repo } = loaded;
  const prefix = `refs/heads/${config.pool.branchPrefix}/`;
  // One git process: lease branches whose every commit is already in the base.
  const out = await git(
    [
      'for-each-ref',
      `--merged=${config.pool.base}`,
      '--format=%(refname:short)%00%(objectname)',
      prefix,
    ],
    { cwd: repo.mainRoot },
  );
  const inUse = new Set<string>();
  for (const s of slotsOf(state)) {
    if (s.branch) inUse.add(s.branch);
    if (s.lease?.branch) inUse.add(s.lease.branch);
  }
  for (const wt of await listWorktrees(repo.mainRoot))
    if (wt.branch) inUse.add(wt.branch.replace(/^refs\/heads\//, ''));
  const leaks: Leak[] = [];
  for (const line of out.split('\n').filter(Boolean)) {
    const [branch, commit] = line.split('\0') as [string, string];
    if (inUse.has(branch)) continue;
    leaks.push({
      kind: 'orphan-branch',
      id: branch,
      message: `branch ${branch} has no lease and no commits beyond ${config.pool.base}`,
      evidence: { branch, commit, base: config.pool.base, commitsAhead: 0 },
      fix: 'delete the branch (it holds nothing the base lacks)',
    });
  }
  return leaks;
}

async function databaseLeaks({ loaded, state, fleet }: DetectContext): Promise<Leak[]> {
  const { config, repo } = loaded;
  if (!config.postgres.url) return [];
  const current = templateDatabase(config, await migrationsHash(config, repo.mainRoot));
  const rows = await withPg(
    config.postgres.url,
    async (c) =>
      (
        await c.query<{ datname: string; comment: string | null; conns: string }>(
          `SELECT d.datname, shobj_description(d.oid, 'pg_database') AS comment,
                (SELECT count(*) FROM pg_stat_activity a WHERE a.datname = d.datname)::text AS conns
           FROM pg_database d`,
        )
      ).rows,
  );
  const slotDbs = new Map(
    slotsOf(state).map((s) => [slotNames(config, repo, s.id).database, s.id] as const),
  );
  // In a fleet the names carry the host (`<dbPrefix>_<host>_wt<n>`): only this host's count here.
  const slotPattern = new RegExp(
    `^${config.postgres.dbPrefix}_(?:[a-z0-9_]+_)?wt([1-9][0-9]{0,3})$`,
  );
  const tplPattern = new RegExp(
    `^${config.postgres.dbPrefix}_(?:[a-z0-9_]+_)?tpl_([0-9a-f]{1,12})$`,
  );
  // Templates still referenced by a registered slot's database (the clone marker comment).
  const usedTemplates = new Set(
    rows
      .filter((r) => slotDbs.has(r.datname) && r.comment?.startsWith('wtpool:'))
      .map((r) => r.comment!.slice('wtpool:'.length)),
  );
  const leaks: Leak[] = [];
  for (const r of rows) {
    const m = slotPattern.exec(r.datname);
    // Only names the naming function would produce for that slot number count as ours.
    const isSlotDb = m && slotNames(config, repo, slotId(Number(m[1]))).database === r.datname;
    const isOrphanSlot = isSlotDb && !slotDbs.has(r.datname);
    const t = tplPattern.exec(r.datname);
    const isOrphanTpl =
      t !== null &&
      templateDatabase(config, t[1]!) === r.datname &&
      r.datname !== current &&
      !usedTemplates.has(r.datname);
    if (!isOrphanSlot && !isOrphanTpl) continue;
    leaks.push({
      kind: 'orphan-db',
      id: r.datname,
      message: isOrphanSlot
        ? `database ${r.datname} belongs to no slot of the registry`
        : `template ${r.datname} is not the current template (${current}) and no slot was cloned from it`,
      evidence: {
        database: r.datname,
        role: isOrphanSlot ? 'slot' : 'template',
        connections: Number(r.conns),
        comment: r.comment,
        currentTemplate: current,
      },
      fix: 'drop the database (its connections are terminated)',
    });
  }
  // The other hosts' databases: a lost host's, or a slot's its host no longer has.
  if (fleet) leaks.push(...fleetDatabaseLeaks(loaded, fleet, state, rows));
  return leaks;
}

async function redisLeaks({ loaded, state, fleet }: DetectContext): Promise<Leak[]> {
  const { config, repo } = loaded;
  if (!config.redis.url) return [];
  // A fleet's band is shared by every host: judged against all of them.
  if (isFleet(config)) {
    if (!fleet)
      throw serviceUnavailableError('the fleet view could not be read (see the fleet check)');
    return fleetRedisLeaks(loaded, fleet, state);
  }
  const [snap, band] = await Promise.all([redisSnapshot(config.redis.url), bandStore(repo).read()]);
  const leaks: Leak[] = [];
  for (const [idx, keys] of Object.entries(snap.keys)) {
    const index = Number(idx);
    if (index < config.redis.bandStart) continue; // the app's own DBs
    const holder = band.alloc[idx];
    if (holder && state.slots[holder]?.state === 'leased') continue;
    leaks.push({
      kind: 'orphan-redis-db',
      id: String(index),
      message: `Redis DB ${index} holds ${keys} keys but no leased slot holds it`,
      evidence: {
        index,
        keys,
        allocatedTo: holder ?? null,
        holderState: holder ? (state.slots[holder]?.state ?? 'unknown slot') : null,
      },
      fix: 'FLUSHDB it and free its band allocation',
    });
  }
  return leaks;
}

/** Lock directories (`<target>.lock`, @wtpool/lock) in the state dir, two levels deep. */
async function lockTargets(stateDir: string): Promise<string[]> {
  const out: string[] = [];
  const scan = async (dir: string, depth: number) => {
    let ents;
    try {
      ents = await fs.readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of ents) {
      if (!e.isDirectory()) continue;
      const p = path.join(dir, e.name);
      if (e.name.endsWith('.lock')) out.push(p.slice(0, -'.lock'.length));
      else if (depth > 0) await scan(p, depth - 1);
    }
  };
  await scan(stateDir, 1);
  return out.sort();
}

async function lockLeaks({ loaded }: DetectContext): Promise<Leak[]> {
  const leaks: Leak[] = [];
  for (const target of await lockTargets(loaded.repo.stateDir)) {
    const info = await inspectLock(target);
    if (!info.held || (info.ageMs ?? 0) < LOCK_STALE_MS || info.holderAlive === true) continue;
    leaks.push({
      kind: 'stale-lock',
      id: `${target}.lock`,
      message: `lock ${target}.lock is ${Math.round((info.ageMs ?? 0) / 1000)}s old and its holder is ${info.holder ? `dead (pid ${info.holder.pid})` : 'unknown'}`,
      evidence: {
        lock: `${target}.lock`,
        ageMs: info.ageMs,
        holder: info.holder ?? null,
        holderAlive: info.holderAlive ?? null,
      },
      fix: 'free the lock (only if its holder is still the one found)',
    });
  }
  return leaks;
}

async function leaseLeaks({ loaded, state, now }: DetectContext): Promise<Leak[]> {
  const leaks: Leak[] = [];
  for (const s of slotsOf(state)) {
    if (s.state !== 'leased' || !s.lease) continue;
    const reason = leaseOver(loaded, s);
    if (!reason) continue;
    leaks.push({
      kind: 'expired-lease',
      id: s.id,
      message: `lease of ${s.lease.agent} on ${s.id} is over (${reason})`,
      evidence: {
        slot: s.id,
        agent: s.lease.agent,
        task: s.lease.task,
        token: s.lease.token,
        reason,
        heartbeatAt: s.lease.heartbeatAt,
        expiresAt: s.lease.expiresAt,
        holderPid: s.lease.holder?.pid ?? null,
      },
      fix: 'reclaim the slot (uncommitted work saved to a rescue ref, branch kept if it has commits)',
    });
  }
  // Lease files without the registry lease they claim (a crash between the two writes).
  const dir = path.join(loaded.repo.stateDir, 'leases');
  for (const name of await fs.readdir(dir).catch(() => [] as string[])) {
    const m = /^(wt-\d+)\.json$/.exec(name);
    if (!m) continue;
    const file = path.join(dir, name);
    const st = await fs.stat(file).catch(() => null);
    if (!st || now - st.mtimeMs < LEASE_FILE_GRACE_MS) continue;
    const lf = await fs
      .readFile(file, 'utf8')
      .then((t) => JSON.parse(t) as { token?: number })
      .catch(() => ({}) as { token?: number });
    const lease = state.slots[m[1]!]?.lease;
    if (lease && lease.token === lf.token) continue;
    leaks.push({
      kind: 'expired-lease',
      id: `lease-file:${m[1]}`,
      message: `lease file ${file} (token ${lf.token ?? '?'}) has no matching lease in the registry`,
      evidence: {
        file,
        token: lf.token ?? null,
        registryToken: lease?.token ?? null,
        ageMs: now - st.mtimeMs,
      },
      fix: 'remove the lease file',
    });
  }
  return leaks;
}

/**
 * Zombie processes, precisely:
 * 1. defunct (state Z) children of a pool holder (a leased slot's holder or claimer pid): the
 *    holder is not reaping them;
 * 2. processes started for a slot (`pool run` children: environment POOL_STATE_DIR = this
 *    pool's state dir and WORKTREE_ID = a slot) whose lease is gone: the slot is not leased,
 *    or its current lease was granted after the process started (it belongs to an old lease).
 * The monitor's own process and its ancestors are never reported.
 */
async function zombieLeaks({ loaded, state }: DetectContext): Promise<Leak[]> {
  if (process.platform !== 'linux') return [];
  const procs = await listProcesses();
  const mine = ancestry(procs, process.pid);
  const holders = new Map<number, string>();
  for (const s of slotsOf(state)) {
    if (!s.lease) continue;
    if (s.lease.holder) holders.set(s.lease.holder.pid, s.id);
    holders.set(s.lease.claimer.pid, s.id);
  }
  const stateDir = path.resolve(loaded.repo.stateDir);
  const leaks: Leak[] = [];
  // Any child is defunct for an instant between its exit and its parent's wait(): only a
  // child still defunct after a pause is one its holder does not reap.
  const defunct = procs.filter((p) => p.state === 'Z' && holders.has(p.ppid) && !mine.has(p.pid));
  const lasting = defunct.length ? await stillDefunct(defunct) : new Set<number>();
  for (const p of procs) {
    if (mine.has(p.pid)) continue;
    if (p.state === 'Z') {
      const slot = holders.get(p.ppid);
      if (slot && lasting.has(p.pid))
        leaks.push({
          kind: 'zombie-process',
          id: String(p.pid),
          message: `defunct process ${p.pid} (${p.comm}) is not reaped by ${slot}'s holder pid ${p.ppid}`,
          evidence: { pid: p.pid, comm: p.comm, state: 'Z', parent: p.ppid, slot },
          fix: `signal the parent (SIGCHLD) to reap it; it stays until pid ${p.ppid} does`,
        });
      continue;
    }
    const env = await processEnv(p.pid);
    const sid = env?.get('WORKTREE_ID');
    if (!env || !sid || path.resolve(env.get('POOL_STATE_DIR') ?? '/') !== stateDir) continue;
    const slot = state.slots[sid];
    const lease = slot?.state === 'leased' ? slot.lease : null;
    // Start times have 10 ms resolution; a second of slack keeps the lease's own children.
    if (lease && p.startedAt >= Date.parse(lease.acquiredAt) - 1000) continue;
    leaks.push({
      kind: 'zombie-process',
      id: String(p.pid),
      message: `process ${p.pid} (${p.comm}) runs for ${sid} but ${lease ? 'predates its current lease' : 'the slot has no lease'}`,
      evidence: {
        pid: p.pid,
        comm: p.comm,
        slot: sid,
        startedAt: new Date(p.startedAt).toISOString(),
        leaseAcquiredAt: lease?.acquiredAt ?? null,
      },
      fix: 'stop it (SIGTERM, SIGKILL after 3 s)',
    });
  }
  return leaks;
}

/** Pids of `candidates` still defunct, with the same parent, after DEFUNCT_PAUSE_MS. */
async function stillDefunct(candidates: ProcInfo[]): Promise<Set<number>> {
  await new Promise((r) => setTimeout(r, DEFUNCT_PAUSE_MS));
  const now = new Map((await listProcesses()).map((p) => [p.pid, p]));
  return new Set(
    candidates
      .filter((c) => {
        const p = now.get(c.pid);
        return p?.state === 'Z' && p.ppid === c.ppid && p.startedAt === c.startedAt;
      })
      .map((c) => c.pid),
  );
}

const DEFUNCT_PAUSE_MS = 300;

const DETECTORS: Array<[string, (c: DetectContext) => Promise<Leak[]>]> = [
  ['postgres', databaseLeaks],
  ['redis', redisLeaks],
  ['worktrees', worktreeLeaks],
  ['branches', branchLeaks],
  ['locks', lockLeaks],
  ['leases', leaseLeaks],
  ['processes', zombieLeaks],
];

export async function detectLeaks(loaded: LoadedConfig): Promise<LeakReport> {
  const report: LeakReport = { leaks: [], skipped: [] };
  let fleet: FleetView | null = null;
  if (isFleet(loaded.config)) {
    fleet = await readFleetView(loaded).catch((e: Error) => {
      report.skipped.push({ check: 'fleet', reason: e.message });
      return null;
    });
  }
  const ctx: DetectContext = {
    loaded,
    state: await readPoolState(loaded),
    now: Date.now(),
    fleet,
  };
  const results = await Promise.allSettled(DETECTORS.map(([, fn]) => fn(ctx)));
  results.forEach((r, i) => {
    if (r.status === 'fulfilled') report.leaks.push(...r.value);
    else report.skipped.push({ check: DETECTORS[i]![0], reason: (r.reason as Error).message });
  });
  report.leaks.sort(
    (a, b) => LEAK_KINDS.indexOf(a.kind) - LEAK_KINDS.indexOf(b.kind) || a.id.localeCompare(b.id),
  );
  return report;
}
