import * as fsSync from 'node:fs';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { WtpoolError, ExitCode, errno, traced } from '@wtpool/core';
import { writeTempSync } from './atomic.js';
import { ensurePrivateDir } from './private.js';
import { withLock, type LockOptions, type LockHandle } from './lock.js';

/** On disk: the data plus a version that grows by one with every committed write. */
export interface Versioned<T> {
  version: number;
  updatedAt: string;
  data: T;
}

export interface JsonStoreOptions<T> extends LockOptions {
  /** The value of a store whose file does not exist yet. */
  initial: T | (() => T);
  /** How often a write rejected by the version check is retried as a new transaction. Default 2. */
  conflictRetries?: number;
}

export class StoreCorruptError extends WtpoolError {
  constructor(file: string, cause: unknown, lastGood?: string) {
    super(
      'ERR_STORE_CORRUPT',
      ExitCode.FAILURE,
      `${file} is not valid JSON state (${cause instanceof Error ? cause.message : String(cause)})`,
      {
        hint: lastGood
          ? `the last good version is kept beside it; inspect both, then restore it with: cp ${lastGood} ${file}`
          : `no earlier version was found beside it; move it away to start from an empty state`,
        cause,
        details: { file, lastGood },
      },
    );
  }
}

export class StoreConflictError extends WtpoolError {
  constructor(file: string, expected: number) {
    super(
      'ERR_STORE_CONFLICT',
      ExitCode.CONFLICT,
      `${file} changed under us (version ${expected} was replaced while this write was in flight); the write was rejected`,
      {
        hint: 'retry the command',
      },
    );
  }
}

/** How many earlier versions (`<file>.v<N>`, hard links made by commit()) are kept. */
const MARKERS_KEPT = 32;

/**
 * A JSON document changed only by transactional read-modify-write under a file lock.
 *
 * - `read()` needs no lock: files are replaced by rename, so a reader sees a whole version.
 * - `update(fn)` locks, reads, lets `fn` change a draft, and commits version N+1 only if the
 *   file still holds version N. The commit claims `<file>.v<N+1>` by exclusive hard link, so
 *   even if two processes both believe they hold the lock (a holder stalled past `stale`),
 *   at most one write of each version lands; the other is rejected, never applied.
 * - The marker files are hard links of the versions themselves, so the last few versions stay
 *   readable beside the file for recovery from a corrupted one.
 */
export class JsonStore<T> {
  readonly file: string;
  private readonly opts: JsonStoreOptions<T>;

  constructor(file: string, opts: JsonStoreOptions<T>) {
    this.file = path.resolve(file);
    this.opts = opts;
  }

  private initial(): T {
    const i = this.opts.initial;
    return typeof i === 'function' ? (i as () => T)() : structuredClone(i);
  }

  /**
   * The current version (version 0 with the initial value when the file does not exist).
   * Synchronous file I/O inside: this runs inside a lock held for well under a millisecond,
   * where thread-pool hops would cost more than the reads themselves.
   */
  async readVersioned(): Promise<Versioned<T> & { ino: number }> {
    let fd: number;
    try {
      fd = fsSync.openSync(this.file, 'r');
    } catch (e) {
      if (errno(e) === 'ENOENT') return { version: 0, updatedAt: '', data: this.initial(), ino: 0 };
      throw e;
    }
    let text: string;
    let ino: number;
    try {
      ino = fsSync.fstatSync(fd).ino;
      text = fsSync.readFileSync(fd, 'utf8');
    } finally {
      fsSync.closeSync(fd);
    }
    let parsed: Versioned<T>;
    try {
      parsed = JSON.parse(text) as Versioned<T>;
    } catch (e) {
      throw new StoreCorruptError(this.file, e, await this.lastGood());
    }
    if (
      typeof parsed !== 'object' ||
      parsed === null ||
      typeof parsed.version !== 'number' ||
      !('data' in parsed)
    ) {
      throw new StoreCorruptError(this.file, 'missing version or data', await this.lastGood());
    }
    return { ...parsed, ino };
  }

  /** The newest kept earlier version that still parses (for recovery hints). */
  async lastGood(): Promise<string | undefined> {
    const dir = path.dirname(this.file);
    const base = path.basename(this.file);
    const names = await fs.readdir(dir).catch(() => [] as string[]);
    const versions = names
      .map((n) => (n.startsWith(`${base}.v`) ? Number(n.slice(base.length + 2)) : NaN))
      .filter((n) => Number.isInteger(n))
      .sort((a, b) => b - a);
    for (const v of versions) {
      const candidate = path.join(dir, `${base}.v${v}`);
      try {
        const parsed = JSON.parse(await fs.readFile(candidate, 'utf8')) as Versioned<T>;
        if (parsed.version === v) return candidate;
      } catch {
        // try an older one
      }
    }
    return undefined;
  }

  async read(): Promise<T> {
    return (await this.readVersioned()).data;
  }

  /**
   * Transactional read-modify-write. `fn` gets a draft to change in place (or returns a new
   * value via `replace`), and its return value is passed through. If `fn` throws, nothing is
   * written.
   */
  async update<R>(
    fn: (draft: T, ctx: { version: number; lock: LockHandle }) => R | Promise<R>,
  ): Promise<R> {
    // The state may name credentials: its directory is 0700, its files 0600 (writeTempSync).
    ensurePrivateDir(path.dirname(this.file));
    const retries = this.opts.conflictRetries ?? 2;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.updateOnce(fn);
      } catch (e) {
        // A conflict means someone else committed while we (wrongly) believed we held the
        // lock; our write was rejected. Start a fresh transaction under a fresh lock.
        if (!(e instanceof StoreConflictError) || attempt >= retries) throw e;
      }
    }
  }

  private updateOnce<R>(
    fn: (draft: T, ctx: { version: number; lock: LockHandle }) => R | Promise<R>,
  ): Promise<R> {
    return withLock(
      this.file,
      async (lock) => {
        const cur = await this.readVersioned();
        const draft = cur.data;
        const result = await fn(draft, { version: cur.version, lock });
        await traced('write', path.basename(this.file), () =>
          this.commit(cur.version, cur.ino, draft, lock),
        );
        return result;
      },
      this.opts,
    );
  }

  private async commit(
    readVersion: number,
    readIno: number,
    data: T,
    lock: LockHandle,
  ): Promise<void> {
    const next: Versioned<T> = {
      version: readVersion + 1,
      updatedAt: new Date().toISOString(),
      data,
    };
    const tmp = writeTempSync(this.file, JSON.stringify(next) + '\n');
    try {
      lock.assertHeld();
      // 1. The file must still be the one we read (a rename by anyone else changes the inode).
      let ino = 0;
      try {
        ino = fsSync.statSync(this.file).ino;
      } catch (e) {
        if (errno(e) !== 'ENOENT') throw e;
      }
      if (ino !== readIno) throw new StoreConflictError(this.file, readVersion);
      // 2. Claim version N+1: exactly one writer can create this name.
      try {
        fsSync.linkSync(tmp, `${this.file}.v${next.version}`);
      } catch (e) {
        if (errno(e) === 'EEXIST') throw new StoreConflictError(this.file, readVersion);
        throw e;
      }
      lock.assertHeld();
      // 3. Publish. The marker keeps this version readable after later writes replace it.
      fsSync.renameSync(tmp, this.file);
      fsSync.rmSync(`${this.file}.v${next.version - MARKERS_KEPT}`, { force: true });
    } catch (e) {
      fsSync.rmSync(tmp, { force: true });
      throw e;
    }
  }
}
