/** The one reader of Linux `/proc/<pid>/stat`. */
import { readFileSync } from 'node:fs';

export interface ProcStat {
  pid: number;
  /** Command name (field 2, without the parentheses; may contain spaces and parentheses). */
  comm: string;
  /** R, S, D, Z (defunct), T … */
  state: string;
  ppid: number;
  /** Process group id (field 5). */
  pgrp: number;
  /** Start time in clock ticks since boot (field 22). */
  startTicks: number;
}

/** Parses the text of /proc/<pid>/stat; null when it is not one. */
export function parseProcStat(text: string): ProcStat | null {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return null;
  // The command name may contain spaces and parentheses: the fields start after the last ')'.
  const f = text.slice(close + 2).split(' ');
  const pid = Number(text.slice(0, open).trim());
  const startTicks = Number(f[19]);
  if (!Number.isInteger(pid) || !f[0] || !Number.isFinite(startTicks)) return null;
  return {
    pid,
    comm: text.slice(open + 1, close),
    state: f[0],
    ppid: Number(f[1]),
    pgrp: Number(f[2]),
    startTicks,
  };
}

/** /proc/<pid>/stat of a live process, or null (gone, not Linux). */
export function readProcStat(pid: number): ProcStat | null {
  try {
    return parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return null;
  }
}
