/**
 * One lease's release and heartbeat run one at a time (on this host): each holds the slot's
 * lease lock (`<stateDir>/run/<slot>.lease.lock`) from its holder check to its last write.
 * A second release of a lease that another one released meanwhile finds the slot without a
 * lease and the winner's result in `<stateDir>/run/<slot>.ended.json`: it answers "already
 * released" (exit 0, `alreadyReleased: true`) instead of failing half-way, and a failing
 * winner (a dirty worktree without --force) leaves the lease to the next one intact (issue 21
 * item 5). Across hosts the registry's transaction still decides; the lock is local.
 */
import path from 'node:path';
import { ensurePrivateDir, readJsonFile, withLock, writePrivateFile } from '@wtpool/lock';
import type { ReleaseResult } from './types.js';

/** A release can take long (rescuing a big worktree): the others wait that long for it. */
const LEASE_LOCK_TIMEOUT_MS = 10 * 60_000;

const runDir = (stateDir: string) => path.join(stateDir, 'run');

export async function withLeaseLock<T>(
  stateDir: string,
  slot: string,
  purpose: string,
  fn: () => Promise<T>,
): Promise<T> {
  ensurePrivateDir(runDir(stateDir));
  return withLock(path.join(runDir(stateDir), `${slot}.lease`), fn, {
    timeout: LEASE_LOCK_TIMEOUT_MS,
    purpose,
  });
}

/** How the slot's last lease ended (this host): what a duplicate release answers. */
export interface EndedRecord {
  token: number;
  agent: string;
  endedBy: 'release' | 'reclaim';
  at: string;
  /** The release's result (endedBy: release). */
  result?: ReleaseResult;
}

const endedFile = (stateDir: string, slot: string) =>
  path.join(runDir(stateDir), `${slot}.ended.json`);

export async function recordEnded(
  stateDir: string,
  slot: string,
  rec: Omit<EndedRecord, 'at'>,
): Promise<void> {
  const full: EndedRecord = { ...rec, at: new Date().toISOString() };
  await writePrivateFile(endedFile(stateDir, slot), JSON.stringify(full) + '\n');
}

export async function readEnded(stateDir: string, slot: string): Promise<EndedRecord | null> {
  try {
    return (await readJsonFile<EndedRecord>(endedFile(stateDir, slot))) ?? null;
  } catch {
    return null; // torn or foreign: no answer from it
  }
}
