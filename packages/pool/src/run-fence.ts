/**
 * The fence between a lease and the command `pool run` runs in it: the command belongs to the
 * lease. `pool run` records it in `<stateDir>/run/<slot>.json` with the lease's token: the
 * process group it started (and its leader's start time, so a reused pid is never signalled),
 * the runner's pid, the slot's path. Whatever ends that lease (a release by anyone, `--force`
 * or the dashboard's action; a reclaim of an expired or abandoned lease) stops every process
 * of the command first, and only then is the worktree reset and handed on:
 *
 * - the recorded process group;
 * - every process that carries the lease in its environment (`WORKTREE_ID` and
 *   `WTPOOL_LEASE_TOKEN`, which `pool run` gives the command), also after it left the group or
 *   the session (`setsid`);
 * - every process started since the command whose cwd, executable or an open file is inside
 *   the slot's worktree (one that also cleared its environment).
 *
 * SIGTERM (with SIGCONT, so a stopped process sees it), SIGKILL to whatever is left after the
 * grace period; the stop returns once none is left (zombies count as gone: they cannot write),
 * and fails (the slot is not handed on) if one cannot be stopped. The caller and its ancestors
 * (a command that runs `pool release --force` on its own lease) and the runner itself (it
 * watches its lease and exits 5) are never signalled. Linux (/proc); elsewhere the group only.
 */
import { promises as fs, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { conflictError, readProcStat } from '@wtpool/core';
import { ensurePrivateDir } from '@wtpool/lock';
import { HOST, pidStartTime } from './proc.js';

/** How long a command gets between SIGTERM and SIGKILL when its lease ends without it. */
export const RUN_STOP_GRACE_MS = 5000;
/** How long processes get to vanish after SIGKILL before the stop fails. */
const KILL_WAIT_MS = 5000;

export interface RunRecord {
  token: number;
  pgid: number;
  /** Start time of the runner (clock ticks since boot): older processes are not the command's. */
  start: number | null;
  host: string;
  /** The `pool run` process (never signalled by a stop: it exits by itself). */
  runner?: number;
  /** The slot's worktree (processes inside it are the command's). */
  path?: string;
  slot?: string;
}

const runDir = (stateDir: string) => path.join(stateDir, 'run');
const recordFile = (stateDir: string, slot: string) => path.join(runDir(stateDir), `${slot}.json`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Records the command running under a lease (called by `pool run` right after the spawn). */
export async function recordLeaseCommand(
  stateDir: string,
  slot: string,
  token: number,
  pgid: number,
  slotPath?: string,
): Promise<void> {
  ensurePrivateDir(runDir(stateDir));
  const rec: RunRecord = {
    token,
    pgid,
    // The runner's start: the command and everything it starts are younger.
    start: pidStartTime(process.pid),
    host: HOST,
    runner: process.pid,
    path: slotPath,
    slot,
  };
  const file = recordFile(stateDir, slot);
  await fs.writeFile(`${file}.tmp-${process.pid}`, JSON.stringify(rec), { mode: 0o600 });
  await fs.rename(`${file}.tmp-${process.pid}`, file);
}

export async function readLeaseCommand(stateDir: string, slot: string): Promise<RunRecord | null> {
  try {
    return JSON.parse(await fs.readFile(recordFile(stateDir, slot), 'utf8')) as RunRecord;
  } catch {
    return null;
  }
}

/** Is the process still the one recorded (not gone, not a zombie, same start)? */
function running(pid: number, start: number | null): boolean {
  const st = readProcStat(pid);
  if (!st || st.state === 'Z' || st.state === 'X') return false;
  return start === null || st.startTicks === start;
}

/** Is the `pool run` of this record still running (on this host)? */
export function runnerAlive(rec: RunRecord): boolean {
  if (rec.host !== HOST) return true;
  return rec.runner !== undefined && running(rec.runner, null);
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone, or not ours
  }
}

/** This process and its ancestors: never stopped (a command releasing its own lease). */
function selfAndAncestors(): Set<number> {
  const out = new Set<number>();
  for (let pid = process.pid; pid > 1 && !out.has(pid);) {
    out.add(pid);
    const st = readProcStat(pid);
    if (!st) break;
    pid = st.ppid;
  }
  return out;
}

const inside = (dir: string) => (p: string) => p === dir || p.startsWith(dir + path.sep);

function link(p: string): string | null {
  try {
    return readlinkSync(p);
  } catch {
    return null;
  }
}

/** Does process `pid` have its cwd, executable or an open file inside `dir`? */
function touches(pid: number, isInside: (p: string) => boolean): boolean {
  const cwd = link(`/proc/${pid}/cwd`);
  if (cwd && isInside(cwd)) return true;
  const exe = link(`/proc/${pid}/exe`);
  if (exe && isInside(exe)) return true;
  let fds: string[] = [];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return false;
  }
  return fds.some((fd) => {
    const target = link(`/proc/${pid}/fd/${fd}`);
    return target !== null && isInside(target);
  });
}

/** Does process `pid` carry the lease in its environment? */
function carries(pid: number, markers: string[]): boolean {
  let env: string;
  try {
    env = readFileSync(`/proc/${pid}/environ`, 'latin1');
  } catch {
    return false;
  }
  const vars = new Set(env.split('\0'));
  return markers.every((m) => vars.has(m));
}

/** The live processes of the command recorded in `rec` (see the module comment). */
export function commandProcesses(rec: RunRecord, spare = selfAndAncestors()): number[] {
  let pids: number[];
  try {
    pids = readdirSync('/proc')
      .filter((n) => /^\d+$/.test(n))
      .map(Number);
  } catch {
    // Not Linux: the group, as far as kill(0) can tell.
    if (rec.pgid <= 0) return [];
    try {
      process.kill(-rec.pgid, 0);
      return [-rec.pgid];
    } catch {
      return [];
    }
  }
  const markers = rec.slot ? [`WORKTREE_ID=${rec.slot}`, `WTPOOL_LEASE_TOKEN=${rec.token}`] : null;
  const isInside = rec.path ? inside(path.resolve(rec.path)) : null;
  const out: number[] = [];
  for (const pid of pids) {
    if (spare.has(pid) || pid === rec.runner) continue;
    const st = readProcStat(pid);
    if (!st || st.state === 'Z' || st.state === 'X') continue;
    // Started before the command: not one of its processes (an editor or shell in the slot).
    if (rec.start !== null && st.startTicks < rec.start) continue;
    if (
      (rec.pgid > 0 && st.pgrp === rec.pgid) ||
      (markers !== null && carries(pid, markers)) ||
      (isInside !== null && touches(pid, isInside))
    )
      out.push(pid);
  }
  return out;
}

/**
 * Stops every process of a recorded command: SIGTERM (+SIGCONT), SIGKILL once `graceMs`
 * passed, until none is left. Throws if some survive SIGKILL (then the slot must not be handed
 * on). Returns how it ended.
 */
export async function stopCommand(
  rec: RunRecord,
  graceMs = RUN_STOP_GRACE_MS,
): Promise<'none' | 'term' | 'kill'> {
  const spare = selfAndAncestors();
  let found = commandProcesses(rec, spare);
  if (!found.length) return 'none';
  const termUntil = Date.now() + graceMs;
  const killUntil = termUntil + KILL_WAIT_MS;
  let how: 'term' | 'kill' = 'term';
  const termed = new Set<number>();
  while (found.length) {
    const kill = Date.now() >= termUntil;
    if (kill) how = 'kill';
    if (Date.now() >= killUntil)
      throw conflictError(
        `could not stop the processes of the command of ${rec.slot ?? 'the slot'} (pids ${found.join(', ')}); the slot is not handed on`,
        { hint: 'stop them (kill -9), then run `pool doctor --fix`' },
      );
    for (const pid of found) {
      if (kill) signal(pid, 'SIGKILL');
      else if (!termed.has(pid)) {
        termed.add(pid);
        signal(pid, 'SIGTERM');
        signal(pid, 'SIGCONT');
      }
    }
    await sleep(kill ? 10 : 25);
    found = commandProcesses(rec, spare);
  }
  return how;
}

/** Stops a process group only (off Linux, and for a group whose leader we started). */
export async function stopGroup(
  pgid: number,
  start: number | null,
  graceMs = RUN_STOP_GRACE_MS,
): Promise<'none' | 'term' | 'kill'> {
  if (!running(pgid, start)) return 'none';
  signal(-pgid, 'SIGTERM');
  signal(-pgid, 'SIGCONT');
  const until = Date.now() + graceMs;
  while (Date.now() < until) {
    await sleep(25);
    if (!running(pgid, start)) {
      signal(-pgid, 'SIGKILL'); // children it left in the group do not outlive it
      return 'term';
    }
  }
  signal(-pgid, 'SIGKILL');
  for (let i = 0; i < 200 && running(pgid, start); i++) await sleep(10);
  return 'kill';
}

/**
 * A lease ends: stops the `pool run` command recorded for it (same token, this host), then
 * forgets the record. Called by every end of a lease before its worktree is touched.
 */
export async function stopLeaseCommand(
  stateDir: string,
  slot: string,
  token: number,
  graceMs = RUN_STOP_GRACE_MS,
): Promise<void> {
  const rec = await readLeaseCommand(stateDir, slot);
  if (!rec) return;
  if (rec.token === token && rec.host === HOST) await stopCommand({ slot, ...rec }, graceMs);
  if (rec.token <= token) await fs.rm(recordFile(stateDir, slot), { force: true });
}
