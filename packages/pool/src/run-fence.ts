/**
 * The fence between a lease and the command `pool run` runs in it. The command runs in a
 * process group of its own, recorded in `<stateDir>/run/<slot>.json` with the lease's token.
 * Whoever ends that lease without its holder (a reclaim of an expired lease) stops the group
 * first: SIGTERM (with SIGCONT, so a stopped group sees it), SIGKILL after the grace period.
 * So a command whose lease was lost cannot write into the next holder's worktree. The start
 * time of the group leader is recorded too: a reused pid is never signalled.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { readProcStat } from '@wtpool/core';
import { ensurePrivateDir } from '@wtpool/lock';
import { HOST, pidStartTime } from './proc.js';

/** How long a command gets between SIGTERM and SIGKILL when its lease is lost. */
export const RUN_STOP_GRACE_MS = 5000;

interface RunRecord {
  token: number;
  pgid: number;
  start: number | null;
  host: string;
}

const recordFile = (stateDir: string, slot: string) => path.join(stateDir, 'run', `${slot}.json`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Records the process group running under a lease (called by `pool run` after the spawn). */
export async function recordLeaseCommand(
  stateDir: string,
  slot: string,
  token: number,
  pgid: number,
): Promise<void> {
  ensurePrivateDir(path.join(stateDir, 'run'));
  const rec: RunRecord = { token, pgid, start: pidStartTime(pgid), host: HOST };
  const file = recordFile(stateDir, slot);
  await fs.writeFile(`${file}.tmp-${process.pid}`, JSON.stringify(rec), { mode: 0o600 });
  await fs.rename(`${file}.tmp-${process.pid}`, file);
}

/** Forgets the record of this lease's command (its own run ended it). */
export async function clearLeaseCommand(
  stateDir: string,
  slot: string,
  token: number,
): Promise<void> {
  const rec = await readRecord(stateDir, slot);
  if (rec?.token === token) await fs.rm(recordFile(stateDir, slot), { force: true });
}

async function readRecord(stateDir: string, slot: string): Promise<RunRecord | null> {
  try {
    return JSON.parse(await fs.readFile(recordFile(stateDir, slot), 'utf8')) as RunRecord;
  } catch {
    return null;
  }
}

/** Is the group leader still the process we started (not gone, not a zombie, same start)? */
function leaderRunning(pgid: number, start: number | null): boolean {
  const st = readProcStat(pgid);
  if (!st || st.state === 'Z' || st.state === 'X') return false;
  return start === null || st.startTicks === start;
}

function signalGroup(pgid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pgid, sig);
  } catch {
    // already gone
  }
}

/**
 * Stops a process group: SIGTERM (+SIGCONT), then SIGKILL once `graceMs` passed while its
 * leader runs. Resolves when the leader is gone (or a zombie waiting for its parent).
 */
export async function stopGroup(
  pgid: number,
  start: number | null,
  graceMs = RUN_STOP_GRACE_MS,
): Promise<'none' | 'term' | 'kill'> {
  if (!leaderRunning(pgid, start)) return 'none';
  signalGroup(pgid, 'SIGTERM');
  signalGroup(pgid, 'SIGCONT');
  const until = Date.now() + graceMs;
  while (Date.now() < until) {
    await sleep(25);
    if (!leaderRunning(pgid, start)) {
      // Children it left in the group do not outlive it.
      signalGroup(pgid, 'SIGKILL');
      return 'term';
    }
  }
  signalGroup(pgid, 'SIGKILL');
  for (let i = 0; i < 200 && leaderRunning(pgid, start); i++) await sleep(10);
  return 'kill';
}

/**
 * A lease ends without its holder: stops the `pool run` command recorded for it (same token,
 * same host, same leader start time), then forgets the record.
 */
export async function stopLeaseCommand(
  stateDir: string,
  slot: string,
  token: number,
  graceMs = RUN_STOP_GRACE_MS,
): Promise<void> {
  const rec = await readRecord(stateDir, slot);
  if (!rec) return;
  if (rec.token === token && rec.host === HOST) await stopGroup(rec.pgid, rec.start, graceMs);
  if (rec.token <= token) await fs.rm(recordFile(stateDir, slot), { force: true });
}
