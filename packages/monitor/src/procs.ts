/**
 * Process table reading for the zombie-process check (Linux /proc).
 */
import { promises as fs } from 'node:fs';
import { parseProcStat } from '@wtpool/core';

export interface ProcInfo {
  pid: number;
  ppid: number;
  /** R, S, D, Z (defunct), T … */
  state: string;
  comm: string;
  /** Start time in ms since the epoch. */
  startedAt: number;
}

// USER_HZ: 100 on every Linux architecture Node runs on.
const CLK_TCK = 100;
let bootMs: number | undefined;

async function bootTime(): Promise<number> {
  if (bootMs === undefined) {
    const m = /^btime (\d+)$/m.exec(await fs.readFile('/proc/stat', 'utf8'));
    bootMs = m ? Number(m[1]) * 1000 : 0;
  }
  return bootMs;
}

export function parseStat(text: string, boot: number): ProcInfo | null {
  const st = parseProcStat(text);
  if (!st) return null;
  const { pid, comm, state, ppid, startTicks } = st;
  return { pid, comm, state, ppid, startedAt: boot + (startTicks * 1000) / CLK_TCK };
}

export async function listProcesses(): Promise<ProcInfo[]> {
  const boot = await bootTime();
  let names: string[];
  try {
    names = await fs.readdir('/proc');
  } catch {
    return [];
  }
  const out = await Promise.all(
    names
      .filter((n) => /^\d+$/.test(n))
      .map(async (n) => {
        try {
          return parseStat(await fs.readFile(`/proc/${n}/stat`, 'utf8'), boot);
        } catch {
          return null; // exited meanwhile
        }
      }),
  );
  return out.filter((p): p is ProcInfo => p !== null);
}

/** A process's environment, or null when it is not ours to read. */
export async function processEnv(pid: number): Promise<Map<string, string> | null> {
  try {
    const raw = await fs.readFile(`/proc/${pid}/environ`, 'utf8');
    const env = new Map<string, string>();
    for (const kv of raw.split('\0')) {
      const i = kv.indexOf('=');
      if (i > 0) env.set(kv.slice(0, i), kv.slice(i + 1));
    }
    return env;
  } catch {
    return null;
  }
}

/** pid and its ancestors (never treat the monitor's own process chain as a leak). */
export function ancestry(procs: ProcInfo[], pid: number): Set<number> {
  const byPid = new Map(procs.map((p) => [p.pid, p]));
  const chain = new Set<number>();
  for (let p = byPid.get(pid); p && !chain.has(p.pid); p = byPid.get(p.ppid)) chain.add(p.pid);
  chain.add(pid);
  return chain;
}
