/**
 * `pool run <agent> <task> -- CMD…`: acquire, run CMD in the worktree with the lease's env
 * (argv array, no shell), heartbeat while it runs, and always release. Work the command left
 * uncommitted is saved to a rescue ref first.
 *
 * Signals: SIGINT/SIGTERM/SIGHUP are handled from the first line of the bin (bin/pool.js
 * records one that arrives while the code loads) to the end. A signal before the lease is
 * taken, or while waiting in the queue, cancels the acquire (the ticket leaves the queue; a
 * grant that raced it is given back); after the grant it is forwarded to the command, and the
 * lease is released (with rescue) once the command ends. `pool run` then exits 128 + the signal
 * (130, 143, 129) whatever the command's own exit code.
 *
 * The command belongs to the lease (run-fence.ts): it is recorded before it starts, and
 * whatever ends the lease without `pool run` stops it and everything it started. `pool run`
 * watches its lease (the registry, each second and on every change): once its token is not the
 * slot's current lease, it stops the command itself too, stops reading its pipes (a process
 * that left the group may still hold them) and exits 5.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { ExitCode, WtpoolError, conflictError, isWtpoolError, usageError } from '@wtpool/core';
import { LeaseLog } from './lease-log.js';
import { pidStartTime } from './proc.js';
import { readLeaseCommand, recordLeaseCommand, stopCommand, stopGroup } from './run-fence.js';
import type { WorktreePool, Reporter } from './pool.js';
import type { AcquireResult, LeaseOptions } from './types.js';

export interface RunResult {
  lease: AcquireResult;
  exitCode: number;
  signal: string | null;
  rescueRef: string | null;
  kept: boolean;
}

/** How often `pool run` looks whether its lease is still the slot's current one. */
const WATCH_MS = 1000;
/** How long the last output of an ended command is read before its pipes are let go. */
const DRAIN_MS = 200;

const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
/** Where bin/pool.js keeps a signal that arrived before this module was loaded. */
const EARLY = Symbol.for('wtpool.run.early-signals');

const signalCode = (sig: NodeJS.Signals) =>
  sig === 'SIGINT' ? ExitCode.SIGINT : sig === 'SIGHUP' ? ExitCode.SIGHUP : ExitCode.SIGTERM;

export class RunInterrupted extends WtpoolError {
  constructor(signal: NodeJS.Signals, what: string) {
    super('ERR_INTERRUPTED', signalCode(signal), `pool run interrupted by ${signal}: ${what}`, {
      hint: 'run it again',
    });
  }
}

interface EarlySignals {
  signals?: NodeJS.Signals[];
  dispose?: () => void;
}

/** The runs of this process (one for `pool run`, one per track for `tracks dispatch`). */
const active = new Set<Signals>();
let installed = false;

/** One handler per signal for the whole process, telling every active run. */
function installHandlers(): void {
  if (installed) return;
  installed = true;
  for (const sig of SIGNALS) process.on(sig, () => active.forEach((s) => s.on(sig)));
}

/** The signal handling of one run, in place before anything is leased. */
class Signals {
  caught: NodeJS.Signals | null = null;
  readonly aborter = new AbortController();
  forward: (sig: NodeJS.Signals) => void = () => {};

  constructor() {
    installHandlers();
    active.add(this);
    const early = (globalThis as Record<symbol, EarlySignals | undefined>)[EARLY];
    // The bin's recorder hands over: a signal it caught counts as ours.
    early?.dispose?.();
    const first = early?.signals?.[0];
    if (first) this.on(first);
  }

  on(sig: NodeJS.Signals): void {
    this.caught ??= sig;
    if (!this.aborter.signal.aborted)
      this.aborter.abort(new RunInterrupted(sig, 'the acquire was cancelled; nothing is leased'));
    this.forward(sig);
  }

  /** The run is over: nothing is forwarded any more (the process's handlers stay, see below). */
  done(): void {
    this.forward = () => {};
    active.delete(this);
  }
}

/** What a run takes: a lease's options, the command, where its output goes, extra env. */
export type RunOptions = Omit<LeaseOptions, 'holderPid'> & {
  command: string[];
  /** `log`: the command's output goes to the lease log only (`pool logs`), stdin closed. */
  stdout?: 'inherit' | 'stderr' | 'log';
  /** Variables set over the lease's env (e.g. `tracks dispatch`'s WTPOOL_TRACK). */
  env?: Record<string, string>;
};

export async function runInSlot(
  pool: WorktreePool,
  opts: RunOptions,
  log: Reporter & { info(m: string): void },
): Promise<RunResult> {
  const [cmd, ...args] = opts.command;
  if (!cmd) throw usageError('no command to run', { hint: 'pass it after --' });
  const signals = new Signals();
  try {
    return await run(pool, opts, log, signals, cmd, args);
  } finally {
    // The process's handlers stay until it exits: a signal after the release (while the result
    // is printed) must not kill it with no exit code. Nothing is forwarded any more.
    signals.done();
  }
}

async function run(
  pool: WorktreePool,
  opts: RunOptions,
  log: Reporter & { info(m: string): void },
  signals: Signals,
  cmd: string,
  args: string[],
): Promise<RunResult> {
  if (signals.caught) throw new RunInterrupted(signals.caught, 'nothing was leased');
  // This process is the holder: if it is killed, the lease is reclaimed at once.
  let lease: AcquireResult;
  try {
    lease = await pool.lease({ ...opts, holderPid: process.pid, signal: signals.aborter.signal });
  } catch (e) {
    if (signals.caught) throw new RunInterrupted(signals.caught, 'nothing was leased');
    throw e;
  }
  const own = { slot: lease.slot, agent: lease.agent, token: lease.token };
  const stateDir = pool.repo.stateDir;
  if (signals.caught) {
    await pool.release({ ...own, force: true });
    throw new RunInterrupted(signals.caught, `${lease.slot} was released before ${cmd} started`);
  }
  log.info(`running in ${lease.slot} (${lease.path}) on ${lease.branch}`);
  // Recorded before the spawn: a lease ended at any moment after this stops what it started.
  await recordLeaseCommand(stateDir, lease.slot, lease.token, 0, lease.path);
  const leaseLog = await LeaseLog.start(
    stateDir,
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
  const pgid = child.pid ?? 0;
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
  const childAlive = () => child.exitCode === null && child.signalCode === null;
  signals.forward = (sig) => {
    if (pgid && childAlive()) {
      try {
        process.kill(-pgid, sig);
      } catch {
        // gone
      }
    }
  };
  if (signals.caught) signals.forward(signals.caught);
  const tee = (stream: NodeJS.ReadableStream | null, to: NodeJS.WriteStream | null) =>
    stream?.on('data', (d: Buffer) => {
      to?.write(d);
      leaseLog.write(d);
    });
  const quiet = opts.stdout === 'log';
  tee(child.stdout, quiet ? null : opts.stdout === 'stderr' ? process.stderr : process.stdout);
  tee(child.stderr, quiet ? null : process.stderr);
  const streamsDone = new Promise<void>((r) => child.on('close', () => r()));
  if (pgid) {
    await recordLeaseCommand(stateDir, lease.slot, lease.token, pgid, lease.path).catch(
      (e: unknown) =>
        log.warn(`could not record the command's process group: ${(e as Error).message}`),
    );
  }

  const ttl = opts.ttlMs ?? pool.config.pool.leaseTtl;
  let lost: string | null = null;
  let stopping: Promise<unknown> | null = null;
  const loseLease = (why: string) => {
    if (lost) return;
    lost = why;
    stopping = (async () => {
      // The group and what carries the lease's env, also out of the group. Not the processes
      // found inside the slot: whoever ended the lease stops those, and its own git runs
      // there now (rescuing); it must not be stopped.
      const rec = await readLeaseCommand(stateDir, lease.slot);
      if (rec && rec.token === lease.token)
        await stopCommand({ ...rec, slot: lease.slot, path: undefined });
      else if (pgid) await stopGroup(pgid, pidStartTime(pgid));
    })().catch((e: unknown) => log.warn(`could not stop ${cmd}: ${(e as Error).message}`));
  };
  let beating = false;
  const beat = setInterval(
    () => {
      if (beating || lost) return;
      beating = true;
      pool
        .heartbeat(own)
        .catch((e) => {
          const msg = e instanceof Error ? e.message : String(e);
          // Refused (stale token, taken back, not leased): the lease is gone, the command stops.
          if (isWtpoolError(e) && (e.exitCode === 5 || e.exitCode === 4)) loseLease(msg);
          else log.warn(`heartbeat failed: ${msg}`);
        })
        .finally(() => (beating = false));
    },
    Math.max(1000, Math.floor(ttl / 3)),
  );
  // Is the lease still ours? (A release --force by someone else, a reclaim, a takeover.)
  let looking = false;
  const look = () => {
    if (looking || lost) return;
    looking = true;
    pool
      .readState()
      .then((st) => {
        const s = st.slots[lease.slot];
        if (!s || s.state !== 'leased' || s.lease?.token !== lease.token || s.lease.ended)
          loseLease(
            s?.lease?.ended
              ? `the lease is over: ${s.lease.ended}`
              : s?.lease && s.lease.token !== lease.token
                ? `the slot has a new lease, token ${s.lease.token}`
                : `the lease was ended by someone else (the slot is ${s?.state ?? 'gone'})`,
          );
      })
      .catch(() => {}) // the store is down: the heartbeat says so
      .finally(() => (looking = false));
  };
  const watch = setInterval(look, WATCH_MS);
  const unwatch = pool.store.watch(look);
  try {
    await ended;
    // The last output, unless a process that left the group keeps the pipes open.
    await Promise.race([streamsDone, new Promise((r) => setTimeout(r, DRAIN_MS))]);
  } finally {
    // Let the pipes go: `pool run` never waits for an orphan that holds them.
    child.stdout?.destroy();
    child.stderr?.destroy();
    child.unref();
    leaseLog.close();
    clearInterval(beat);
    clearInterval(watch);
    unwatch();
    await stopping;
  }
  const lostError = (why: string) =>
    // Not ours any more: nothing to release; whoever ended it saved the work.
    conflictError(`lost the lease of ${lease.slot} (${why}); ${cmd} was stopped`, {
      hint: 'the lease was released by someone else, or expired and was taken back; run again',
    });
  if (lost) throw lostError(lost);
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
    if (!released.alreadyReleased)
      log.warn(`saved to ${released.rescueRef} (see \`pool rescue list\`)`);
  }
  // Released by someone else while the command ended: not this run's release.
  if (released.alreadyReleased) throw lostError('it was released by another process');
  if (signals.caught) {
    exitCode = signalCode(signals.caught);
    signal ??= signals.caught;
  }
  return { lease, exitCode, signal, rescueRef: released.rescueRef, kept: released.kept };
}
