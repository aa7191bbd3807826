import * as fsSync from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  WtpoolError,
  ExitCode,
  TRACING,
  errno,
  formatDuration,
  traceWaitAndHold,
} from '@wtpool/core';
import { openPrivateSync } from './private.js';

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

/*
 * The lock on `target` is the directory `<target>.lock`, made once and kept. It holds exactly
 * one token file, always: `free`, or `held.<pid>.<host>.<nonce>` while someone holds the lock.
 * Every change of hands is one rename of that token, and a rename of a given name succeeds for
 * exactly one of any number of racing processes (the others get ENOENT):
 *
 * - acquire: rename `free` → `held.<me>`;
 * - release: rename `held.<me>` → `free` (ENOENT: someone took it over; we were compromised);
 * - take over a dead or stale holder: rename `held.<them>` → `held.<me>`. The name carries the
 *   holder's identity, so a takeover can only ever move the lock of the holder it inspected:
 *   if that holder released in between, the name is gone and the rename fails.
 * - the first use: mkdir `<target>.lock` (one process wins) and create `held.<me>` in it.
 *
 * The holder record is the token itself (pid and host in its name, since/purpose in its
 * content), so no record can outlive or precede its lock. A holder refreshes its token's times
 * every stale/2; a token whose inode did not change (ctime: rename and utimes both set it) for
 * `stale` is taken over.
 */
const FREE = 'free';
const HELD = 'held.';
const hostTag = HOST.replace(/[^A-Za-z0-9-]/g, '_').slice(0, 64) || 'host';
const lockDir = (target: string) => `${target}.lock`;
/** The owner file of versions before the token design: read for display only, then removed. */
const legacyOwnerFile = (target: string) => `${target}.lock.owner`;
let nonceCounter = 0;
/** Nonces of the locks this process holds now: a token with our pid and another nonce is a leftover. */
const heldHere = new Set<string>();

interface Token {
  name: string;
  pid: number;
  host: string;
  nonce: string;
}

function parseToken(name: string): Token | undefined {
  if (!name.startsWith(HELD)) return undefined;
  const [pid, host, nonce, ...rest] = name.slice(HELD.length).split('.');
  if (!pid || !host || !nonce || rest.length || !/^\d+$/.test(pid)) return undefined;
  return { name, pid: Number(pid), host, nonce };
}

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

/** A holder that cannot come back: a dead pid of this host, or a leftover of our own pid. */
function tokenDead(t: Token): boolean {
  if (t.host !== hostTag) return false;
  if (t.pid === process.pid) return !heldHere.has(t.nonce);
  return !pidAlive(t.pid);
}

interface LockState {
  /** The held token, if any. */
  token?: Token;
  /** When the token (or, for a dir without one, the dir) last changed. */
  changedMs?: number;
  /** The directory exists but holds no token (a crashed first user, or an old-style lock). */
  tokenless?: boolean;
  free?: boolean;
}

function lockState(dir: string): LockState | undefined {
  let names: string[];
  try {
    names = fsSync.readdirSync(dir);
  } catch (e) {
    if (errno(e) === 'ENOENT') return undefined;
    throw e;
  }
  if (names.includes(FREE)) return { free: true };
  for (const n of names) {
    const token = parseToken(n);
    if (!token) continue;
    try {
      return { token, changedMs: fsSync.statSync(path.join(dir, n)).ctimeMs };
    } catch (e) {
      if (errno(e) === 'ENOENT') return { free: true }; // it changed hands: look again
      throw e;
    }
  }
  try {
    return { tokenless: true, changedMs: fsSync.statSync(dir).mtimeMs };
  } catch (e) {
    if (errno(e) === 'ENOENT') return undefined;
    throw e;
  }
}

function readRecord(dir: string, t: Token): LockHolder {
  const holder: LockHolder = { pid: t.pid, host: t.host, since: '' };
  try {
    const rec = JSON.parse(fsSync.readFileSync(path.join(dir, t.name), 'utf8')) as LockHolder & {
      nonce?: string;
    };
    // The content is the last holder's until the new one writes its own: match the nonce.
    if (rec.nonce === t.nonce)
      return { pid: t.pid, host: rec.host, since: rec.since, purpose: rec.purpose };
  } catch {
    // not written yet, or being written: the name is enough
  }
  try {
    holder.since = new Date(fsSync.statSync(path.join(dir, t.name)).ctimeMs).toISOString();
  } catch {
    // gone
  }
  return holder;
}

function readLegacyOwner(target: string): LockHolder | undefined {
  try {
    return JSON.parse(fsSync.readFileSync(legacyOwnerFile(target), 'utf8')) as LockHolder;
  } catch {
    return undefined;
  }
}

/** The process currently holding the lock on `target`, as its token names it. */
export async function readLockHolder(target: string): Promise<LockHolder | undefined> {
  const dir = lockDir(target);
  const st = lockState(dir);
  if (st?.token) return readRecord(dir, st.token);
  if (st?.tokenless) return readLegacyOwner(target);
  return undefined;
}

/** Information about a lock on disk, for the monitor's stale-lock check. */
export async function inspectLock(
  target: string,
): Promise<{ held: boolean; ageMs?: number; holder?: LockHolder; holderAlive?: boolean }> {
  const dir = lockDir(target);
  const st = lockState(dir);
  if (!st || st.free) return { held: false };
  const ageMs = Date.now() - (st.changedMs ?? Date.now());
  if (st.token) {
    return {
      held: true,
      ageMs,
      holder: readRecord(dir, st.token),
      holderAlive: !tokenDead(st.token),
    };
  }
  const legacy = readLegacyOwner(target);
  return {
    held: true,
    ageMs,
    ...(legacy
      ? { holder: legacy, holderAlive: legacy.host === HOST ? pidAlive(legacy.pid) : true }
      : {}),
  };
}

type Attempt =
  { got: true; how: 'free' | 'created' | 'takeover' } | { got: false; cleared?: boolean };

/**
 * One attempt to take the lock, synchronous (a handful of metadata syscalls; thread-pool hops
 * would cost more than the calls). `inspect` also looks at the holder: a dead or stale one is
 * taken over; a directory without a token that has not changed for `stale` is set aside.
 */
function attempt(target: string, me: string, stale: number, inspect: boolean): Attempt {
  const dir = lockDir(target);
  try {
    fsSync.renameSync(path.join(dir, FREE), path.join(dir, me));
    return { got: true, how: 'free' };
  } catch (e) {
    if (errno(e) !== 'ENOENT') throw e;
  }
  if (fsSync.existsSync(dir))
    return inspect ? inspectAndReclaim(target, me, stale) : { got: false };
  // First use: the directory appears with our token already in it (made aside, then renamed
  // into place), so a lock directory never exists without a token.
  const tmp = `${dir}.new-${process.pid}-${++nonceCounter}`;
  fsSync.mkdirSync(tmp, 0o700);
  try {
    fsSync.chmodSync(tmp, 0o700);
    fsSync.closeSync(openPrivateSync(path.join(tmp, me)));
    fsSync.renameSync(tmp, dir);
    return { got: true, how: 'created' };
  } catch (e) {
    const code = errno(e);
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw e;
    return { got: false }; // someone else made it first
  } finally {
    fsSync.rmSync(tmp, { recursive: true, force: true });
  }
}

function inspectAndReclaim(target: string, me: string, stale: number): Attempt {
  const dir = lockDir(target);
  const st = lockState(dir);
  if (!st || st.free) return { got: false }; // changed hands meanwhile: the caller retries at once
  const age = Date.now() - (st.changedMs ?? Date.now());
  if (st.token) {
    if (!tokenDead(st.token) && age < stale) return { got: false };
    try {
      // Exactly the holder we inspected: if it released or was taken over since, this fails.
      fsSync.renameSync(path.join(dir, st.token.name), path.join(dir, me));
      return { got: true, how: 'takeover' };
    } catch (e) {
      if (errno(e) === 'ENOENT') return { got: false };
      throw e;
    }
  }
  // No token: an old-style lock (an empty directory its holder refreshes), or a token removed
  // by hand. Nothing adds a token to such a directory, so once it is stale it is set aside
  // whole; rename is atomic, so only one of us does.
  if (age < stale) return { got: false };
  const grave = `${dir}.stale-${process.pid}-${++nonceCounter}`;
  try {
    fsSync.renameSync(dir, grave);
  } catch (e) {
    if (errno(e) === 'ENOENT') return { got: false };
    throw e;
  }
  fsSync.rmSync(grave, { recursive: true, force: true });
  fsSync.rmSync(legacyOwnerFile(target), { force: true });
  return { got: false, cleared: true };
}

/**
 * Frees the lock on `target` if its holder is dead, or has not refreshed it for `stale` ms (for
 * the monitor's cleanup). Like a waiter's takeover, it can only move the holder it inspected.
 * True if it freed something.
 */
export function reclaimLock(target: string, opts: { stale: number }): boolean {
  const nonce = `${++nonceCounter}${Math.random().toString(36).slice(2, 8)}`;
  const me = `${HELD}${process.pid}.${hostTag}.${nonce}`;
  heldHere.add(nonce);
  try {
    const r = inspectAndReclaim(target, me, opts.stale);
    if (!r.got) return r.cleared === true;
    const dir = lockDir(target);
    try {
      fsSync.renameSync(path.join(dir, me), path.join(dir, FREE));
    } catch (e) {
      if (errno(e) !== 'ENOENT') throw e;
    }
    return true;
  } finally {
    heldHere.delete(nonce);
  }
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
    const lockOpts = { ...opts, timeout: Math.max(0, timeout - (Date.now() - started)) };
    // WTPOOL_TRACE: the wait for the lock and the time it is held are two steps of the trace.
    const what = `${path.basename(target)}${opts.purpose ? ` (${opts.purpose})` : ''}`;
    return await withFileLock(target, TRACING ? traceWaitAndHold(what, fn) : fn, lockOpts);
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
  const nonce = `${++nonceCounter}${Math.random().toString(36).slice(2, 8)}`;
  const me = `${HELD}${process.pid}.${hostTag}.${nonce}`;
  const dir = lockDir(target);
  const mine = path.join(dir, me);
  let tries = 0;
  let announced = false;

  // Waiters sleep a jittered, growing interval (1 ms up to maxBackoff). Measured: waking every
  // waiter on each release (an inotify watch on the directory) made the lock bounce between
  // processes and halved aggregate throughput under 16-way contention; sleeping lets a holder
  // that loops keep the lock while the others stay out of its way (docs/benchmarks.md).
  heldHere.add(nonce);
  try {
    for (;;) {
      // Now and then, look at who holds it: a dead or stale holder is taken over.
      const inspect = tries === 0 || tries % 16 === 1;
      if (attempt(target, me, stale, inspect).got) break;
      tries++;
      if (!announced && inspect && tries > 1) {
        announced = true;
        opts.onWait?.(await readLockHolder(target));
      }
      const waited = Date.now() - started;
      if (waited >= timeout)
        throw new LockTimeoutError(target, waited, await readLockHolder(target));
      const cap = Math.min(maxBackoff, 2 ** Math.min(tries, 10));
      await sleep(Math.min(Math.random() * cap + 0.5, Math.max(1, timeout - waited)));
    }
  } catch (e) {
    heldHere.delete(nonce);
    throw e;
  }

  const compromise = (cause: unknown) => {
    if (controller.signal.aborted) return;
    compromisedBy = cause;
    controller.abort(cause);
  };
  // The token keeps our lock fresh: its ctime moves with every utimes. Gone means taken over.
  const refresh = setInterval(() => {
    try {
      const now = new Date();
      fsSync.utimesSync(mine, now, now);
    } catch (e) {
      compromise(e);
    }
  }, stale / 2);
  refresh.unref();
  // Who holds it is in the token's name at once; since/purpose are written only if the hold
  // lasts (most critical sections end within a millisecond).
  const record = () => {
    const holder = { pid: process.pid, host: HOST, since: new Date().toISOString(), nonce };
    try {
      const fd = fsSync.openSync(mine, 'r+');
      try {
        fsSync.ftruncateSync(fd);
        fsSync.writeSync(
          fd,
          JSON.stringify(opts.purpose ? { ...holder, purpose: opts.purpose } : holder),
        );
      } finally {
        fsSync.closeSync(fd);
      }
    } catch (e) {
      if (errno(e) === 'ENOENT') compromise(e);
    }
  };
  const recordTimer =
    opts.recordHolderAfter === 0
      ? (record(), undefined)
      : setTimeout(record, opts.recordHolderAfter ?? 25);
  recordTimer?.unref();

  const handle: LockHandle = {
    signal: controller.signal,
    get compromised() {
      return controller.signal.aborted;
    },
    assertHeld() {
      if (controller.signal.aborted) throw new LockCompromisedError(target, compromisedBy);
    },
  };

  let result: T;
  try {
    result = await fn(handle);
  } finally {
    clearInterval(refresh);
    clearTimeout(recordTimer);
    heldHere.delete(nonce);
    try {
      fsSync.renameSync(mine, path.join(dir, FREE));
    } catch (e) {
      // Our token is gone: someone took the lock over while we held it. Leave theirs alone.
      compromise(e);
    }
  }
  handle.assertHeld();
  return result;
}
