/**
 * `pool run <agent> <task> -- CMD…`: acquire, run CMD in the worktree with the lease's env
 * (argv array, no shell), heartbeat while it runs, and always release, also on SIGINT/SIGTERM
 * (forwarded to the child). Work the command left uncommitted is saved to a rescue ref first.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { conflictError, isWtpoolError, usageError } from '@wtpool/core';
import { LeaseLog } from './lease-log.js';
import {
  clearLeaseCommand,
  recordLeaseCommand,
  RUN_STOP_GRACE_MS,
  stopGroup,
} from './run-fence.js';
import type { WorktreePool, Reporter } from './pool.js';
import type { AcquireResult, LeaseOptions } from './types.js';

export interface RunResult {
  lease: AcquireResult;
  exitCode: number;
  signal: string | null;
  rescueRef: string | null;
  kept: boolean;
}

export async function runInSlot(
  pool: WorktreePool,
  opts: Omit<LeaseOptions, 'holderPid'> & {
    command: string[];
    /** `log`: the command's output goes to the lease log only (`pool logs`), stdin closed. */
    stdout?: 'inherit' | 'stderr' | 'log';
    /** Variables set over the lease's env (e.g. `tracks dispatch`'s WTPOOL_TRACK). */
    env?: Record<string, string>;
  },
  log: Reporter & { info(m: string): void },
): Promise<RunResult> {
  const [cmd, ...args] = opts.command;
  if (!cmd) throw usageError('no command to run', { hint: 'pass it after --' });
  // This process is the holder: if it is killed, the lease is reclaimed at once.
  const lease = await pool.lease({ ...opts, holderPid: process.pid });
  log.info(`running in ${lease.slot} (${lease.path}) on ${lease.branch}`);
  // The command's output goes to the terminal as before and to the lease's log (`pool logs`).
  const leaseLog = await LeaseLog.start(
    pool.repo.stateDir,
    lease.slot,
    `# ${lease.acquiredAt} ${lease.agent} "${lease.task}" on ${lease.branch}: ${opts.command.join(' ')}`,
  );
  // A process group of its own: a lost lease stops the command and everything it started.
  const child = spawn(cmd, args, {
    cwd: lease.path,
    env: { ...process.env, ...lease.env, ...opts.env },
    stdio: [opts.stdout === 'log' ? 'ignore' : 'inherit', 'pipe', 'pipe'],
    detached: true,
  });
  const stateDir = pool.repo.stateDir;
  // Whoever reclaims this lease stops the group before handing the worktree on (awaited once
  // the signal handlers are in place).
  const recorded = child.pid
    ? recordLeaseCommand(stateDir, lease.slot, lease.token, child.pid).catch((e: unknown) =>
        log.warn(`could not record the command's process group: ${(e as Error).message}`),
      )
    : Promise.resolve();
  const tee = (stream: NodeJS.ReadableStream | null, to: NodeJS.WriteStream | null) =>
    stream?.on('data', (d: Buffer) => {
      to?.write(d);
      leaseLog.write(d);
    });
  const quiet = opts.stdout === 'log';
  tee(child.stdout, quiet ? null : opts.stdout === 'stderr' ? process.stderr : process.stdout);
  tee(child.stderr, quiet ? null : process.stderr);
  const streamsDone = new Promise<void>((r) => child.on('close', () => r()));
  // Listened to before anything is awaited: a short command may be gone by then.
  let exitCode = 1;
  let signal: string | null = null;
  const ended = new Promise<void>((resolve) => {
    child.on('error', (e) => {
      log.warn(`could not start ${cmd}: ${e.message}`);
      exitCode = 127;
      resolve();
    });
    child.on('exit', (code, sig) => {
      signal = sig;
      exitCode = code ?? 128 + (sig ? (constants.signals[sig] ?? 0) : 0);
      resolve();
    });
  });
  const forward = (sig: NodeJS.Signals) => () => {
    if (child.exitCode === null && child.pid) {
      try {
        process.kill(-child.pid, sig);
      } catch {
        // gone
      }
    }
  };
  const onInt = forward('SIGINT');
  const onTerm = forward('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  await recorded;
  const ttl = opts.ttlMs ?? pool.config.pool.leaseTtl;
  let lost: string | null = null;
  let stopping: Promise<unknown> | null = null;
  const loseLease = (why: string) => {
    if (lost || child.exitCode !== null || child.signalCode !== null) return;
    lost = why;
    if (child.pid) stopping = stopGroup(child.pid, null, RUN_STOP_GRACE_MS);
  };
  const beat = setInterval(
    () => {
      pool.heartbeat({ slot: lease.slot, agent: lease.agent, token: lease.token }).catch((e) => {
        const msg = e instanceof Error ? e.message : String(e);
        // Refused (stale token, taken back, not leased): the lease is gone, the command stops.
        if (isWtpoolError(e) && (e.exitCode === 5 || e.exitCode === 4)) loseLease(msg);
        else log.warn(`heartbeat failed: ${msg}`);
      });
    },
    Math.max(1000, Math.floor(ttl / 3)),
  );
  try {
    await ended;
    // The last output, unless a background process keeps the pipes open.
    await Promise.race([streamsDone, new Promise((r) => setTimeout(r, 200))]);
  } finally {
    leaseLog.close();
    clearInterval(beat);
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
    await stopping;
  }
  const lostError = (why: string) =>
    // Not ours any more: nothing to release; whoever took it back saved the work.
    conflictError(`lost the lease of ${lease.slot} (${why}); ${cmd} was stopped`, {
      hint: 'the lease expired and was taken back; use a longer --ttl, then run again',
    });
  if (lost) throw lostError(lost);
  await clearLeaseCommand(stateDir, lease.slot, lease.token);
  const own = { slot: lease.slot, agent: lease.agent, token: lease.token };
  let released;
  try {
    released = await pool.release(own);
  } catch (e) {
    // Taken back while the command was stopping (the reclaim stopped it): the lease is lost.
    if (isWtpoolError(e) && (e.exitCode === 4 || /stale/.test(e.message)))
      throw lostError(e.message);
    if (!isWtpoolError(e) || e.exitCode !== 5) throw e;
    log.warn(
      `${cmd} left uncommitted changes in ${lease.slot}; saving them to a rescue ref before releasing`,
    );
    released = await pool.release({ ...own, force: true });
    log.warn(`saved to ${released.rescueRef} (see \`pool rescue list\`)`);
  }
  return { lease, exitCode, signal, rescueRef: released.rescueRef, kept: released.kept };
}
