/**
 * File descriptors: system-wide from /proc/sys/fs/file-nr, per process by counting
 * /proc/<pid>/fd against the process's real soft limit from /proc/<pid>/limits (not ours: a
 * holder started from another shell may have another `ulimit -n`).
 */
import { promises as fs } from 'node:fs';

export interface SystemFds {
  /** Allocated file handles. */
  used: number;
  /** fs.file-max. */
  max: number;
  /** used / max, percent. */
  pct: number;
}

export interface ProcessFds {
  pid: number;
  /** Open descriptors (entries of /proc/<pid>/fd). */
  open: number;
  /** Soft "Max open files" limit; null when unlimited or unreadable. */
  limit: number | null;
  /** open / limit, percent (null without a limit). */
  pct: number | null;
}

/** Parses /proc/sys/fs/file-nr: "allocated  free  max". */
export function parseFileNr(text: string): SystemFds {
  const [allocated, free, max] = text.trim().split(/\s+/).map(Number);
  // Since Linux 2.6 `free` is always 0; subtract it anyway for older kernels.
  const used = (allocated ?? 0) - (free ?? 0);
  const m = max ?? 0;
  return { used, max: m, pct: m > 0 ? round1((used / m) * 100) : 0 };
}

/** The soft limit of "Max open files" in a /proc/<pid>/limits text. */
export function parseOpenFilesLimit(text: string): number | null {
  const m = /^Max open files\s+(\S+)/m.exec(text);
  if (!m || m[1] === 'unlimited') return null;
  const n = Number(m[1]);
  return Number.isFinite(n) ? n : null;
}

export async function systemFds(): Promise<SystemFds | null> {
  try {
    return parseFileNr(await fs.readFile('/proc/sys/fs/file-nr', 'utf8'));
  } catch {
    return null; // not Linux
  }
}

/** Descriptors of one process, or null when it is gone or not ours to inspect. */
export async function processFds(pid: number): Promise<ProcessFds | null> {
  try {
    const [entries, limits] = await Promise.all([
      fs.readdir(`/proc/${pid}/fd`),
      fs.readFile(`/proc/${pid}/limits`, 'utf8'),
    ]);
    const limit = parseOpenFilesLimit(limits);
    const open = entries.length;
    return { pid, open, limit, pct: limit ? round1((open / limit) * 100) : null };
  } catch {
    return null;
  }
}

export const round1 = (x: number) => Math.round(x * 10) / 10;
