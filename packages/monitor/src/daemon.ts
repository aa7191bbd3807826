/**
 * The monitor daemon: a detached process (own session, stdio to a file, unref'd) that takes a
 * health sample every interval and appends it, plus any new alerts, as JSONL to
 * `<stateDir>/monitor/monitor.jsonl`. Its pidfile `<stateDir>/monitor/daemon.pid` is written
 * by `start` under a lock, so two concurrent starts cannot both launch one.
 */
import { spawn } from 'node:child_process';
import { promises as fs, openSync, closeSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { conflictError, failure, formatDuration } from '@wtpool/core';
import {
  PRIVATE_FILE_MODE,
  ensurePrivateDir,
  pidAlive,
  readJsonFile,
  withLock,
  writeFileAtomic,
} from '@wtpool/lock';
import type { LoadedConfig } from '@wtpool/config';
import type { Health } from './health.js';

export interface DaemonPaths {
  dir: string;
  pidFile: string;
  log: string;
  /** stdout/stderr of the daemon process (crashes land here). */
  out: string;
}

export interface PidRecord {
  pid: number;
  startedAt: string;
  intervalMs: number;
}

export interface DaemonStatus {
  running: boolean;
  pid: number | null;
  startedAt: string | null;
  intervalMs: number | null;
  log: string;
  lastSampleAt: string | null;
  lastSampleAgeMs: number | null;
  lastLevel: string | null;
}

export function daemonPaths(loaded: LoadedConfig): DaemonPaths {
  const dir = path.join(loaded.repo.stateDir, 'monitor');
  return {
    dir,
    pidFile: path.join(dir, 'daemon.pid'),
    log: path.join(dir, 'monitor.jsonl'),
    out: path.join(dir, 'daemon.out'),
  };
}

const DAEMON_MAIN = fileURLToPath(new URL('./daemon-main.js', import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Is `pid` alive and really our daemon (not a reused pid)? */
async function isOurDaemon(pid: number): Promise<boolean> {
  if (!pidAlive(pid)) return false;
  try {
    const cmdline = await fs.readFile(`/proc/${pid}/cmdline`, 'utf8');
    return cmdline.includes('daemon-main.js');
  } catch {
    return process.platform !== 'linux'; // no /proc: trust the pid
  }
}

async function readPid(p: DaemonPaths): Promise<PidRecord | null> {
  try {
    return (await readJsonFile<PidRecord>(p.pidFile)) ?? null;
  } catch {
    return null; // torn or garbage: treated as no daemon
  }
}

/** The newest `sample` line of the log (reads only the file's tail). */
export async function lastSample(
  log: string,
): Promise<{ at: string; level: string; disk?: Health['disk'] } | null> {
  let fh;
  try {
    fh = await fs.open(log, 'r');
  } catch {
    return null;
  }
  try {
    const { size } = await fh.stat();
    const len = Math.min(size, 1 << 20);
    const buf = Buffer.alloc(len);
    await fh.read(buf, 0, len, size - len);
    const lines = buf.toString('utf8').split('\n');
    for (let i = lines.length - 1; i >= 0; i--) {
      const line = lines[i]!;
      if (!line.startsWith('{"type":"sample"')) continue;
      try {
        const s = JSON.parse(line) as { at: string; level: string; disk?: Health['disk'] };
        return { at: s.at, level: s.level, disk: s.disk };
      } catch {
        // a line cut by the tail window or a torn write: look further back
      }
    }
    return null;
  } finally {
    await fh.close();
  }
}

export async function daemonStatus(loaded: LoadedConfig): Promise<DaemonStatus> {
  const p = daemonPaths(loaded);
  const rec = await readPid(p);
  const running = rec ? await isOurDaemon(rec.pid) : false;
  const last = await lastSample(p.log);
  return {
    running,
    pid: running ? rec!.pid : null,
    startedAt: running ? rec!.startedAt : null,
    intervalMs: running ? rec!.intervalMs : null,
    log: p.log,
    lastSampleAt: last?.at ?? null,
    lastSampleAgeMs: last ? Date.now() - Date.parse(last.at) : null,
    lastLevel: last?.level ?? null,
  };
}

/**
 * The disk figure of the daemon's latest sample, when the daemon runs and the sample is younger
 * than two intervals: walking a pool of 30 dependency trees is the one slow part of a sweep,
 * and the daemon already does it on schedule.
 */
export async function recentDisk(
  loaded: LoadedConfig,
  st: DaemonStatus,
): Promise<Health['disk'] | null> {
  if (!st.running || st.lastSampleAgeMs === null || st.lastSampleAgeMs > 2 * st.intervalMs!)
    return null;
  const last = await lastSample(daemonPaths(loaded).log);
  return last?.disk ? { ...last.disk, source: 'daemon' } : null;
}

export interface StartOptions {
  intervalMs: number;
  /** --repo / --config as given, passed on to the daemon. */
  repoArg?: string | undefined;
  configArg?: string | undefined;
  /** How long to wait for the first sample (default 30 s). */
  readyTimeoutMs?: number;
}

/**
 * Starts the daemon unless one runs. Waits for its first sample so a daemon that cannot work
 * (bad config, crash) is reported now, with its output, not discovered later.
 */
export async function startDaemon(loaded: LoadedConfig, opts: StartOptions): Promise<DaemonStatus> {
  const p = daemonPaths(loaded);
  ensurePrivateDir(p.dir);
  const pid = await withLock(
    p.pidFile,
    async () => {
      const rec = await readPid(p);
      if (rec && (await isOurDaemon(rec.pid))) {
        throw conflictError(
          `the monitor daemon is already running (pid ${rec.pid}, since ${rec.startedAt})`,
          {
            hint: 'stop it first with `monitor stop`',
            details: { pid: rec.pid },
          },
        );
      }
      const before = (await lastSample(p.log))?.at ?? null;
      const out = openSync(p.out, 'a', PRIVATE_FILE_MODE);
      const args = [
        DAEMON_MAIN,
        '--repo',
        loaded.repo.worktree,
        '--interval',
        String(opts.intervalMs),
      ];
      if (opts.configArg) args.push('--config', path.resolve(opts.configArg));
      // Own session (detached), no tie to our terminal or pipes: it survives the shell closing.
      const child = spawn(process.execPath, args, {
        detached: true,
        stdio: ['ignore', out, out],
        cwd: loaded.repo.worktree,
        env: { ...process.env, WTPOOL_MONITOR_DAEMON: '1' },
      });
      closeSync(out);
      child.unref();
      if (!child.pid) throw failure('ERR_DAEMON_SPAWN', 'could not start the monitor daemon');
      const record: PidRecord = {
        pid: child.pid,
        startedAt: new Date().toISOString(),
        intervalMs: opts.intervalMs,
      };
      await writeFileAtomic(p.pidFile, JSON.stringify(record) + '\n');
      return { pid: child.pid, before };
    },
    { purpose: 'monitor start' },
  );
  const deadline = Date.now() + (opts.readyTimeoutMs ?? 30_000);
  for (;;) {
    const last = await lastSample(p.log);
    if (last && last.at !== pid.before) break;
    if (!pidAlive(pid.pid)) {
      await fs.rm(p.pidFile, { force: true });
      const tail = (await fs.readFile(p.out, 'utf8').catch(() => ''))
        .trim()
        .split('\n')
        .slice(-3)
        .join(' | ');
      throw failure(
        'ERR_DAEMON_DIED',
        `the monitor daemon exited at start: ${tail || 'no output'}`,
        {
          hint: `see ${p.out}`,
        },
      );
    }
    if (Date.now() > deadline) {
      throw failure(
        'ERR_DAEMON_SLOW',
        `the monitor daemon (pid ${pid.pid}) took no sample in ${formatDuration(opts.readyTimeoutMs ?? 30_000)}`,
        {
          hint: `it is still running; see ${p.out}, or stop it with \`monitor stop\``,
        },
      );
    }
    await sleep(50);
  }
  return daemonStatus(loaded);
}

/** Stops the daemon (SIGTERM, then SIGKILL after `graceMs`) and removes its pidfile. */
export async function stopDaemon(
  loaded: LoadedConfig,
  graceMs = 10_000,
): Promise<{ stopped: boolean; pid: number | null }> {
  const p = daemonPaths(loaded);
  return withLock(
    p.pidFile,
    async () => {
      const rec = await readPid(p);
      if (!rec || !(await isOurDaemon(rec.pid))) {
        await fs.rm(p.pidFile, { force: true });
        return { stopped: false, pid: null };
      }
      process.kill(rec.pid, 'SIGTERM');
      const deadline = Date.now() + graceMs;
      while (pidAlive(rec.pid) && Date.now() < deadline) await sleep(25);
      if (pidAlive(rec.pid)) {
        process.kill(rec.pid, 'SIGKILL');
        while (pidAlive(rec.pid)) await sleep(25);
      }
      await fs.rm(p.pidFile, { force: true });
      return { stopped: true, pid: rec.pid };
    },
    { purpose: 'monitor stop' },
  );
}

const LOG_MAX_BYTES = 20 << 20;

/** Appends JSONL lines; rotates the log to `.1` past 20 MB so it cannot fill the disk. */
export async function appendLog(log: string, entries: object[]): Promise<void> {
  const st = await fs.stat(log).catch(() => null);
  if (st && st.size > LOG_MAX_BYTES) await fs.rename(log, `${log}.1`);
  await fs.appendFile(log, entries.map((e) => JSON.stringify(e)).join('\n') + '\n', {
    mode: PRIVATE_FILE_MODE,
  });
}

/** Alerts are "the same" across samples when only their numbers changed. */
const alertKey = (a: Health['alerts'][number]) =>
  `${a.level}:${a.check}:${a.message.replace(/[\d.]+/g, '#')}`;

/** The JSONL entries of one sample: the sample, and an alert line per alert not in `prev`. */
export function sampleEntries(
  h: Health,
  prev: Set<string>,
): { entries: object[]; keys: Set<string> } {
  const entries: object[] = [{ type: 'sample', ...h }];
  for (const a of h.alerts)
    if (!prev.has(alertKey(a))) entries.push({ type: 'alert', at: h.at, ...a });
  return { entries, keys: new Set(h.alerts.map(alertKey)) };
}
