import os from 'node:os';
import { readProcStat } from '@wtpool/core';
import { pidAlive } from '@wtpool/lock';
import type { ProcRef } from './types.js';

export const HOST = os.hostname();

/** Start time of a process (/proc/<pid>/stat field 22), or null when it cannot be read. */
export function pidStartTime(pid: number): number | null {
  return readProcStat(pid)?.startTicks ?? null;
}

export function procRef(pid: number = process.pid): ProcRef {
  return { pid, start: pidStartTime(pid), host: HOST };
}

/**
 * Is the process still the one we recorded? Dead, or a different process with the same pid
 * (another start time), is false. A process on another host is assumed alive.
 */
export function procAlive(p: ProcRef): boolean {
  if (p.host !== HOST) return true;
  if (!pidAlive(p.pid)) return false;
  if (p.start === null) return true;
  const now = pidStartTime(p.pid);
  return now === null || now === p.start;
}
