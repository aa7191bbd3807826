/**
 * The per-lease log of `pool run`: what its command printed (stdout and stderr), in
 * `<stateDir>/logs/<slot>.log` (mode 0600). A new lease of the slot starts a new log. Bounded:
 * past `LEASE_LOG_MAX` bytes the file becomes `<slot>.log.1` (the previous `.1` is dropped) and a
 * new one starts, so a slot never keeps more than twice that. `pool logs` and the dashboard read it.
 */
import { closeSync, openSync, promises as fs, renameSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import { usageError } from '@wtpool/core';

export const LEASE_LOG_MAX = 512 * 1024;

export function leaseLogPath(stateDir: string, slot: string): string {
  // Slot ids come from the registry, but `pool logs` takes one from the user.
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(slot))
    throw usageError(`not a slot id: ${JSON.stringify(slot)}`, { hint: 'e.g. `pool logs wt-1`' });
  return path.join(stateDir, 'logs', `${slot}.log`);
}

export class LeaseLog {
  private fd: number | null;
  private size = 0;
  private constructor(
    readonly file: string,
    private readonly max: number,
  ) {
    this.fd = openSync(file, 'w', 0o600);
  }

  /** Starts the slot's log for a new lease (the previous lease's log is replaced). */
  static async start(stateDir: string, slot: string, header: string, max = LEASE_LOG_MAX) {
    const file = leaseLogPath(stateDir, slot);
    await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    rmSync(`${file}.1`, { force: true });
    const log = new LeaseLog(file, max);
    log.write(header.endsWith('\n') ? header : header + '\n');
    return log;
  }

  write(chunk: Buffer | string): void {
    if (this.fd === null) return;
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    if (this.size + buf.length > this.max && this.size > 0) {
      closeSync(this.fd);
      renameSync(this.file, `${this.file}.1`);
      this.fd = openSync(this.file, 'w', 0o600);
      this.size = 0;
    }
    writeSync(this.fd, buf);
    this.size += buf.length;
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

/** The whole kept log of a slot (`.1` then the current file); null when there is none. */
export async function readLeaseLog(stateDir: string, slot: string): Promise<string | null> {
  const file = leaseLogPath(stateDir, slot);
  const parts = await Promise.all(
    [`${file}.1`, file].map((f) => fs.readFile(f, 'utf8').catch(() => null)),
  );
  return parts.every((p) => p === null) ? null : parts.map((p) => p ?? '').join('');
}

/** Prints what is appended to the slot's log until `signal` aborts (follows a rotation). */
export async function followLeaseLog(
  stateDir: string,
  slot: string,
  out: (text: string) => void,
  signal: AbortSignal,
  pollMs = 300,
): Promise<void> {
  const file = leaseLogPath(stateDir, slot);
  let pos = (await fs.stat(file).catch(() => null))?.size ?? 0;
  while (!signal.aborted) {
    await new Promise((r) => setTimeout(r, pollMs));
    const st = await fs.stat(file).catch(() => null);
    if (!st) continue;
    if (st.size < pos) pos = 0; // rotated or a new lease
    if (st.size === pos) continue;
    const fh = await fs.open(file, 'r');
    try {
      const buf = Buffer.alloc(st.size - pos);
      await fh.read(buf, 0, buf.length, pos);
      pos = st.size;
      out(buf.toString('utf8'));
    } finally {
      await fh.close();
    }
  }
}
