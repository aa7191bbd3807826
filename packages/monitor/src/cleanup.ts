/**
 * `cleanup-leaks`: fixes what detect-leaks lists, one finding at a time, each re-checked just
 * before acting and logged as an event in the pool's events.jsonl. Work is never discarded
 * unsaved: an orphan worktree with uncommitted changes or commits no ref holds goes to a
 * rescue ref first; expired leases are reclaimed by the pool itself (which rescues).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { failure } from '@wtpool/core';
import { integrationWorktrees, orphanRescueRefPrefix, type LoadedConfig } from '@wtpool/config';
import { inspectLock, pidAlive, reclaimLock } from '@wtpool/lock';
import { limitsOf, saveWork } from '@wtpool/pool';
import { bandStore, flushIndex, quoteIdent } from '@wtpool/services';
import { flushFleetRedisDb, isFleet, recheckFleetDatabase } from './fleet-leaks.js';
import { detectLeaks, LOCK_STALE_MS, type Leak, type LeakKind } from './leaks.js';
import { poolOps, readPoolState, type PoolOps } from './pool-access.js';
import { withPg } from './postgres.js';

export interface CleanupAction {
  kind: LeakKind;
  id: string;
  /** What was done (or would be, with --dry-run). */
  action: string;
  ok: boolean;
  rescueRef?: string;
  error?: string;
}

export interface CleanupResult {
  dryRun: boolean;
  actions: CleanupAction[];
  /** Checks detect could not run; their leaks were not looked at. */
  skipped: Array<{ check: string; reason: string }>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Fixer = (
  leak: Leak,
  ops: PoolOps,
  loaded: LoadedConfig,
) => Promise<Omit<CleanupAction, 'kind' | 'id' | 'ok'>>;

async function dropDatabase(leak: Leak, _ops: PoolOps, loaded: LoadedConfig) {
  // Another host's database: still a lost host's, or a slot's gone from its host?
  if (typeof leak.evidence.host === 'string')
    await recheckFleetDatabase(loaded, leak, () => readPoolState(loaded));
  const db = quoteIdent(leak.id);
  await withPg(loaded.config.postgres.url!, async (c) => {
    if (leak.evidence.role === 'template') await c.query(`ALTER DATABASE ${db} IS_TEMPLATE false`);
    await c.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
  });
  return { action: `dropped database ${leak.id}` };
}

async function flushRedisDb(leak: Leak, _ops: PoolOps, loaded: LoadedConfig) {
  if (isFleet(loaded.config))
    return { action: await flushFleetRedisDb(loaded, leak, () => readPoolState(loaded)) };
  const index = Number(leak.id);
  const { config, repo } = loaded;
  // Under the band's lock, so no lease can be handed this index while we flush it.
  const done = await bandStore(repo).update(async (d) => {
    const holder = d.alloc[String(index)];
    const state = holder ? await loadSlotState(loaded, holder) : null;
    if (state === 'leased') return false;
    if (holder) delete d.alloc[String(index)];
    await flushIndex(config.redis.url!, index);
    return true;
  });
  if (!done)
    throw failure(
      'ERR_CLEANUP',
      `DB ${index} was allocated to a leased slot meanwhile; left alone`,
    );
  return { action: `flushed Redis DB ${index} and freed its allocation` };
}

async function loadSlotState(loaded: LoadedConfig, slot: string): Promise<string | null> {
  return (await readPoolState(loaded)).slots[slot]?.state ?? null;
}

async function removeOrphanWorktree(leak: Leak, ops: PoolOps, loaded: LoadedConfig) {
  const dir = leak.id;
  // Re-check: an integrate run may have claimed it since detection.
  if (integrationWorktrees(loaded.config, loaded.repo).includes(path.resolve(dir))) {
    throw failure('ERR_CLEANUP', `${dir} is the merge queue's integration worktree; left alone`);
  }
  let rescueRef: string | undefined;
  if (leak.evidence.exists) {
    // Everything the removal would destroy: uncommitted work, commits no ref holds, ignored
    // files outside the caches and build outputs, nested repositories. What cannot be saved
    // (a nested repository, ignored files over pool.rescueMaxBytes) refuses the removal.
    // (saveWork refuses, nothing written, what it cannot save: the removal does not happen.)
    const out = await saveWork(
      dir,
      orphanRescueRefPrefix(path.basename(dir)),
      `wtpool rescue: orphan worktree ${dir}`,
      limitsOf(loaded.config.pool),
      { always: await ops.needsRescue(dir) },
    );
    if (out.ref) {
      rescueRef = out.ref;
      await ops.event('rescue', {
        ref: out.ref,
        path: dir,
        reason: 'orphan-worktree',
        ignoredSaved: out.ignoredSaved.length,
        nested: out.nested,
      });
    }
  }
  await ops.removeWorktree(dir);
  return {
    action: `removed worktree ${dir}${rescueRef ? ` (work saved to ${rescueRef})` : ''}`,
    ...(rescueRef ? { rescueRef } : {}),
  };
}

async function recreateWorktree(leak: Leak, ops: PoolOps) {
  if (leak.evidence.state === 'leased') throw failure('ERR_CLEANUP', leak.fix);
  await ops.recreateMissing();
  return { action: `recreated the worktree of ${leak.id}` };
}

async function deleteOrphanBranch(leak: Leak, ops: PoolOps, loaded: LoadedConfig) {
  // Re-check: still nothing beyond the base (someone may have committed since detection).
  if ((await ops.commitsAhead(loaded.config.pool.base, leak.id)) > 0) {
    throw failure(
      'ERR_CLEANUP',
      `${leak.id} has commits beyond ${loaded.config.pool.base} now; kept`,
    );
  }
  await ops.deleteBranch(leak.id);
  return { action: `deleted branch ${leak.id}` };
}

async function removeStaleLock(leak: Leak) {
  const lockDir = leak.id;
  const target = lockDir.slice(0, -'.lock'.length);
  const info = await inspectLock(target);
  if (!info.held) return { action: `lock ${lockDir} was already gone` };
  if ((info.ageMs ?? 0) < LOCK_STALE_MS || info.holderAlive === true) {
    throw failure('ERR_CLEANUP', `${lockDir} is in use again; left alone`);
  }
  // The lock package frees exactly the holder it inspects, never one that took the lock since.
  if (!reclaimLock(target, { stale: LOCK_STALE_MS })) {
    throw failure('ERR_CLEANUP', `${lockDir} is in use again; left alone`);
  }
  return { action: `freed stale lock ${lockDir}` };
}

async function endLease(leak: Leak, ops: PoolOps) {
  if (leak.id.startsWith('lease-file:')) {
    await fs.rm(leak.evidence.file as string, { force: true });
    return { action: `removed lease file ${leak.evidence.file as string}` };
  }
  const reclaimed = await ops.reclaimExpired();
  if (!reclaimed.includes(leak.id)) {
    throw failure(
      'ERR_CLEANUP',
      `the pool did not reclaim ${leak.id} (its lease may have been renewed)`,
    );
  }
  return { action: `reclaimed ${leak.id} through the pool` };
}

async function stopProcess(leak: Leak) {
  const pid = Number(leak.id);
  if (leak.evidence.state === 'Z') {
    const parent = leak.evidence.parent as number;
    process.kill(parent, 'SIGCHLD');
    await sleep(200);
    if (pidAlive(pid))
      throw failure(
        'ERR_CLEANUP',
        `defunct pid ${pid} remains until its parent ${parent} reaps it`,
      );
    return { action: `parent ${parent} reaped defunct pid ${pid}` };
  }
  process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 60 && pidAlive(pid); i++) await sleep(50);
  if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
  for (let i = 0; i < 40 && pidAlive(pid); i++) await sleep(25);
  return { action: `stopped process ${pid}` };
}

const FIXERS: Record<LeakKind, Fixer> = {
  'orphan-db': dropDatabase,
  'orphan-redis-db': flushRedisDb,
  'orphan-worktree': removeOrphanWorktree,
  'missing-worktree': recreateWorktree,
  'orphan-branch': deleteOrphanBranch,
  'stale-lock': removeStaleLock,
  'expired-lease': endLease,
  'zombie-process': stopProcess,
};

// Order matters: end leases and processes first, then worktrees, then the branches they held.
const ORDER: LeakKind[] = [
  'zombie-process',
  'stale-lock',
  'expired-lease',
  'orphan-worktree',
  'missing-worktree',
  'orphan-branch',
  'orphan-db',
  'orphan-redis-db',
];

/**
 * In a fleet, before a cleanup's detection: the hosts silent past hostTtl are marked lost and
 * reclaimed by the pool (its own rule, as any pool command does); what the reclaim leaves is
 * then judged (fleet-leaks.ts judges only marked hosts). A no-op with the file store.
 */
export async function reclaimLostHosts(
  loaded: LoadedConfig,
  ops: PoolOps = poolOps(loaded),
): Promise<void> {
  if (isFleet(loaded.config)) await ops.reclaimLostHosts();
}

export async function cleanupLeaks(
  loaded: LoadedConfig,
  opts: { dryRun?: boolean; leaks?: Leak[]; ops?: PoolOps } = {},
): Promise<CleanupResult> {
  const ops = opts.ops ?? poolOps(loaded);
  if (!opts.leaks && !opts.dryRun) await reclaimLostHosts(loaded, ops);
  const detected = opts.leaks ? { leaks: opts.leaks, skipped: [] } : await detectLeaks(loaded);
  const leaks = [...detected.leaks].sort((a, b) => ORDER.indexOf(a.kind) - ORDER.indexOf(b.kind));
  const result: CleanupResult = { dryRun: !!opts.dryRun, actions: [], skipped: detected.skipped };
  if (opts.dryRun) {
    result.actions = leaks.map((l) => ({
      kind: l.kind,
      id: l.id,
      action: `would ${l.fix}`,
      ok: true,
    }));
    return result;
  }
  for (const leak of leaks) {
    let a: CleanupAction;
    try {
      a = {
        kind: leak.kind,
        id: leak.id,
        ok: true,
        ...(await FIXERS[leak.kind](leak, ops, loaded)),
      };
    } catch (e) {
      a = {
        kind: leak.kind,
        id: leak.id,
        ok: false,
        action: 'failed',
        error: (e as Error).message,
      };
    }
    result.actions.push(a);
    await ops.event('leak-cleanup', { ...a }).catch(() => {});
  }
  return result;
}
