import * as fsSync from 'node:fs';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import lockfile from 'proper-lockfile';
import { WtpoolError, ExitCode, errno, formatDuration } from '@wtpool/core';

export interface LockOptions {
  /** How long to wait for the lock before failing (ms). Default 30 s. */
  timeout?: number;
  /**
   * Age (ms) after which a lock whose holder stopped refreshing it is considered abandoned.
   * Must be well above any plausible pause of a live holder. Default 20 s (minimum 2 s).
   */
  stale?: number;
  /** Longest sleep between two attempts (ms). Default 25 ms. */
  maxBackoff?: number;
  /**
   * Record the holder (pid, host, since) once the lock has been held this long (ms). 0 records
   * at once. Default 25 ms: short critical sections never pay for it.
   */
  recordHolderAfter?: number;
  /** Called once when another process is found holding the lock (for "waiting for…" output). */
  onWait?: (holder: LockHolder | undefined) => void;
}

export interface LockHolder {
  pid: number;
  host: string;
  since: string;
  /** What the holder is doing, when it said so. */
  purpose?: string;
}

/** What the critical section gets: an abort signal raised if the lock is compromised. */
export interface LockHandle {
  readonly signal: AbortSignal;
  readonly compromised: boolean;
  /** Throws LockCompromisedError if the lock was lost (e.g. this process stalled past `stale`). */
  assertHeld(): void;
}

export class LockTimeoutError extends WtpoolError {
  constructor(
    target: string,
    waitedMs: number,
    readonly holder: LockHolder | undefined,
  ) {
    const who = holder
      ? `held by pid ${holder.pid} on ${holder.host} since ${holder.since}${holder.purpose ? ` (${holder.purpose})` : ''}`
      : 'holder unknown';
    super(
      'ERR_LOCK_TIMEOUT',
      ExitCode.FAILURE,
      `timed out after ${formatDuration(waitedMs)} waiting for the lock on ${target}: ${who}`,
      {
        hint: holder
          ? `if pid ${holder.pid} is stuck, stop it; a dead holder's lock is reclaimed automatically`
          : "retry; a dead holder's lock is reclaimed automatically after the stale period",
        details: { target, holder },
      },
    );
  }
}

export class LockCompromisedError extends WtpoolError {
  constructor(target: string, cause?: unknown) {
    super(
      'ERR_LOCK_COMPROMISED',
      ExitCode.CONFLICT,
      `lost the lock on ${target} (this process stalled or the lock was removed); nothing was written`,
      {
        hint: 'retry the command',
        cause,
      },
    );
  }
}

const HOST = os.hostname();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * proper-lockfile takes an `fs` option. Locks are held for well under a millisecond of work,
 * so a thread-pool hop per metadata call (mkdir, stat, utimes, rmdir) would dominate; these
 * run synchronously and call back on the next tick. All of them are metadata-only syscalls.
 */
type Cb = (err: NodeJS.ErrnoException | null, value?: unknown) => void;
const syncFs = (() => {
  const wrap =
    <A extends unknown[]>(fn: (...args: A) => unknown) =>
    (...args: [...A, Cb]) => {
      const cb = args.pop() as Cb;
      let value: unknown;
      try {
        value = fn(...(args as unknown as A));
      } catch (e) {
        process.nextTick(cb, e as NodeJS.ErrnoException);
        return;
      }
      process.nextTick(cb, null, value);
    };
  return {
    ...fsSync,
    mkdir: wrap((p: string) => (fsSync.mkdirSync(p, 0o700), fsSync.chmodSync(p, 0o700))),
    rmdir: wrap((p: string) => fsSync.rmdirSync(p)),
    stat: wrap((p: string) => fsSync.statSync(p)),
    utimes: wrap((p: string, a: Date, m: Date) => fsSync.utimesSync(p, a, m)),
    realpath: wrap((p: string) => fsSync.realpathSync(p)),
  };
})();
const lockDir = (target: string) => `${target}.lock`;
const ownerFile = (target: string) => `${target}.lock.owner`;

/** Is `pid` alive on this host? (EPERM means it exists but is not ours.) */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return errno(e) === 'EPERM';
  }
}

/** The process currently holding the lock on `target`, as it recorded itself. */
export async function readLockHolder(target: string): Promise<LockHolder | undefined> {
  try {
    return JSON.parse(await fs.readFile(ownerFile(target), 'utf8')) as LockHolder;
  } catch {
    return undefined;
  }
}

/** Information about a lock on disk, for the monitor's stale-lock check. */
export async function inspectLock(
  target: string,
): Promise<{ held: boolean; ageMs?: number; holder?: LockHolder; holderAlive?: boolean }> {
  try {
    const st = await fs.stat(lockDir(target));
    const holder = await readLockHolder(target);
    return {
      held: true,
      ageMs: Date.now() - st.mtimeMs,
      ...(holder
        ? { holder, holderAlive: holder.host === HOST ? pidAlive(holder.pid) : true }
        : {}),
    };
  } catch {
    return { held: false };
  }
}

/**
 * A lock whose recorded holder is a dead process on this host can be taken over at once,
 * without waiting for `stale`. Renaming the lock directory away is atomic, so of several
 * processes that see the same dead holder only one removes it.
 */
async function reclaimIfHolderDead(
  target: string,
  holder: LockHolder | undefined,
): Promise<boolean> {
  if (!holder || holder.host !== HOST || pidAlive(holder.pid)) return false;
  // Someone may have reclaimed it and taken the lock since we read the holder: re-check.
  const now = await readLockHolder(target);
  if (!now || now.pid !== holder.pid || now.since !== holder.since) return false;
  const graveyard = `${lockDir(target)}.dead-${process.pid}-${Date.now()}`;
  try {
    await fs.rename(lockDir(target), graveyard);
  } catch {
    return false;
  }
  await fs.rm(graveyard, { recursive: true, force: true });
  await fs.rm(ownerFile(target), { force: true });
  return true;
}

/**
 * Runs `fn` while holding an exclusive lock on `target` (a path; the file itself need not
 * exist). Waits with jittered exponential backoff (1 ms growing to `maxBackoff`) up to
 * `timeout`, then fails naming the holder. If the lock is compromised while `fn` runs, the
 * handle's signal is aborted and withLock rejects with LockCompromisedError instead of
 * crashing the process.
 */
/**
 * Callers in one process queue in memory (FIFO per target) before they take the file lock:
 * otherwise many concurrent callers of one process (an orchestrator leasing 16 slots at once)
 * would poll the lock with backoff sleeps and wait for each other's timers, not for the lock.
 */
const localQueues = new Map<string, Promise<unknown>>();

export async function withLock<T>(
  target: string,
  fn: (lock: LockHandle) => Promise<T> | T,
  opts: LockOptions & { purpose?: string } = {},
): Promise<T> {
  const key = path.resolve(target);
  const before = localQueues.get(key) ?? Promise.resolve();
  let done!: () => void;
  const mine = new Promise<void>((r) => (done = r));
  const tail = before.then(() => mine);
  localQueues.set(key, tail);
  try {
    // The timeout covers the wait in this queue too; giving up keeps the queue intact.
    const timeout = opts.timeout ?? 30_000;
    const started = Date.now();
    let timer: NodeJS.Timeout | undefined;
    const inTime = await Promise.race([
      before.then(() => true),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(false), timeout))),
    ]);
    clearTimeout(timer);
    if (!inTime)
      throw new LockTimeoutError(target, Date.now() - started, await readLockHolder(target));
    return await withFileLock(target, fn, {
      ...opts,
      timeout: Math.max(0, timeout - (Date.now() - started)),
    });
  } finally {
    done();
    if (localQueues.get(key) === tail) localQueues.delete(key);
  }
}

async function withFileLock<T>(
  target: string,
  fn: (lock: LockHandle) => Promise<T> | T,
  opts: LockOptions & { purpose?: string },
): Promise<T> {
  const timeout = opts.timeout ?? 30_000;
  const stale = Math.max(opts.stale ?? 20_000, 2000);
  const maxBackoff = opts.maxBackoff ?? 25;
  const controller = new AbortController();
  let compromisedBy: unknown;
  const started = Date.now();
  let release: (() => Promise<void>) | undefined;
  let attempt = 0;
  let announced = false;
  let holderChecked = false;

  // Waiters sleep a jittered, growing interval (1 ms up to maxBackoff). Measured: waking every
  // waiter on each release (an inotify watch on the directory) made the lock bounce between
  // processes and halved aggregate throughput under 16-way contention; sleeping lets a holder
  // that loops keep the lock while the others stay out of its way (docs/benchmarks.md).
  while (!release) {
    try {
      release = await lockfile.lock(target, {
        realpath: false,
        stale,
        retries: 0,
        fs: syncFs,
        onCompromised: (err: Error) => {
          compromisedBy = err;
          controller.abort(err);
        },
      });
    } catch (e) {
      if (errno(e) !== 'ELOCKED') throw e;
      attempt++;
      // Now and then, look at who holds it: a dead local holder is reclaimed at once.
      if (!holderChecked || attempt % 16 === 0) {
        holderChecked = true;
        const holder = await readLockHolder(target);
        if (!announced) {
          announced = true;
          opts.onWait?.(holder);
        }
        if (await reclaimIfHolderDead(target, holder)) continue;
      }
      const waited = Date.now() - started;
      if (waited >= timeout)
        throw new LockTimeoutError(target, waited, await readLockHolder(target));
      const cap = Math.min(maxBackoff, 2 ** Math.min(attempt, 10));
      await sleep(Math.min(Math.random() * cap + 0.5, Math.max(1, timeout - waited)));
    }
  }

  // Who holds the lock is recorded only if the hold lasts: most critical sections end within a
  // millisecond, and a waiter only needs the name when it has waited long (timeout message) or
  // suspects a dead holder. A holder that dies before this is reclaimed after `stale`.
  const holder: LockHolder = { pid: process.pid, host: HOST, since: new Date().toISOString() };
  if (opts.purpose) holder.purpose = opts.purpose;
  let ownerWritten = false;
  const recordOwner = () => {
    try {
      fsSync.writeFileSync(ownerFile(target), JSON.stringify(holder), { mode: 0o600 });
      fsSync.chmodSync(ownerFile(target), 0o600);
      ownerWritten = true;
    } catch {
      // informational only
    }
  };
  const ownerTimer =
    opts.recordHolderAfter === 0
      ? (recordOwner(), undefined)
      : setTimeout(recordOwner, opts.recordHolderAfter ?? 25);
  ownerTimer?.unref();

  const handle: LockHandle = {
    signal: controller.signal,
    get compromised() {
      return controller.signal.aborted;
    },
    assertHeld() {
      if (controller.signal.aborted) throw new LockCompromisedError(target, compromisedBy);
    },
  };

  try {
    const result = await fn(handle);
    handle.assertHeld();
    return result;
  } finally {
    clearTimeout(ownerTimer);
    if (!controller.signal.aborted) {
      if (ownerWritten) fsSync.rmSync(ownerFile(target), { force: true });
      await release().catch(() => {});
    }
  }
}
