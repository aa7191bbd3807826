/**
 * The one way worktree-pool runs a child process. argv arrays only (a name never reaches a
 * shell; a configured gate command is run as `sh -c <command>` by its caller, with data passed
 * as `$1…`), output captured one way (stdout, stderr and both interleaved, optionally only a
 * tail), an optional timeout that stops the child (its whole process group when it has one),
 * and failures as one-line WtpoolErrors whose message and details are redacted.
 *
 * node:child_process is loaded on first use: it pulls in net, streams and dgram, and the warm
 * `pool acquire` path runs no child at all.
 */
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { TRACING, traceSpan } from './trace.js';
import { failure, redact, type ErrorCode, type ErrorOptions } from './errors.js';

export interface RunOptions {
  cwd?: string | undefined;
  /** The child's whole environment (default: this process's). */
  env?: NodeJS.ProcessEnv | undefined;
  /** Variables set over `env`. */
  extraEnv?: Record<string, string> | undefined;
  /** Text written to the child's stdin (default: stdin is closed). */
  input?: string | undefined;
  /** Called with each chunk of stdout and stderr as it arrives. */
  onData?: ((chunk: string) => void) | undefined;
  /** Run in a process group of its own: a timeout or stopChildren signals the whole group. */
  group?: boolean | undefined;
  /** Stop the child after this many ms (SIGTERM, then SIGKILL 2 s later); the result says timedOut. */
  timeoutMs?: number | undefined;
  /** Keep only the last `tail` characters of each captured stream (default: everything, 256 MB cap). */
  tail?: number | undefined;
}

export interface RunResult {
  /** Exit code; 128 + signal number when killed by a signal; 127 when the program is missing. */
  code: number;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** stdout and stderr interleaved as they arrived. */
  output: string;
  ms: number;
  timedOut: boolean;
}

const MAX_CAPTURE = 256 << 20;
const SIGNALS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };

type ChildProcessModule = typeof import('node:child_process');
let cp: ChildProcessModule | undefined;
function childProcess(): ChildProcessModule {
  cp ??= createRequire(import.meta.url)('node:child_process') as ChildProcessModule;
  return cp;
}

const running = new Set<ChildProcess>();
const groups = new WeakSet<ChildProcess>();

function signalChild(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    if (groups.has(child) && child.pid) process.kill(-child.pid, signal);
    else child.kill(signal);
  } catch {
    // already gone
  }
}

/**
 * Stops every child started by `run` that is still running (for signal handlers: an
 * interrupted command must not leave its build or test behind). Groups are signalled whole.
 */
export function stopChildren(signal: NodeJS.Signals = 'SIGTERM'): void {
  for (const child of running) signalChild(child, signal);
}

/** Runs a program. Resolves for any exit code (127 when the program is missing); never a shell. */
export function run(
  cmd: string,
  args: readonly string[],
  opts: RunOptions = {},
): Promise<RunResult> {
  const started = Date.now();
  const t0 = TRACING ? performance.now() : 0;
  const { spawn } = childProcess();
  const spawnOpts: SpawnOptions = {
    cwd: opts.cwd,
    env: opts.extraEnv
      ? { ...(opts.env ?? process.env), ...opts.extraEnv }
      : (opts.env ?? process.env),
    stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    detached: opts.group === true,
  };
  const cap = opts.tail ?? MAX_CAPTURE;
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, [...args], spawnOpts);
    running.add(child);
    if (opts.group) groups.add(child);
    let stdout = '';
    let stderr = '';
    let output = '';
    let timedOut = false;
    let timer: NodeJS.Timeout | undefined;
    let killer: NodeJS.Timeout | undefined;
    if (opts.timeoutMs !== undefined) {
      timer = setTimeout(() => {
        timedOut = true;
        signalChild(child, 'SIGTERM');
        killer = setTimeout(() => signalChild(child, 'SIGKILL'), 2000);
        killer.unref();
      }, opts.timeoutMs);
    }
    const keep = (s: string, d: string) => {
      const t = s + d;
      return t.length > cap ? t.slice(-cap) : t;
    };
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      stdout = keep(stdout, d);
      output = keep(output, d);
      opts.onData?.(d);
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      stderr = keep(stderr, d);
      output = keep(output, d);
      opts.onData?.(d);
    });
    if (opts.input !== undefined) {
      child.stdin!.on('error', () => {}); // the child may exit without reading (EPIPE)
      child.stdin!.end(opts.input);
    }
    const done = () => {
      running.delete(child);
      clearTimeout(timer);
      clearTimeout(killer);
    };
    child.on('error', (e: NodeJS.ErrnoException) => {
      done();
      if (e.code === 'ENOENT') {
        resolve({
          code: 127,
          signal: null,
          stdout,
          stderr: `${cmd}: not found`,
          output: `${cmd}: not found`,
          ms: Date.now() - started,
          timedOut,
        });
      } else reject(e);
    });
    child.on('close', (code, signal) => {
      done();
      if (TRACING)
        traceSpan(
          path.basename(cmd) === 'git' ? 'git' : 'exec',
          [cmd, ...args].join(' ').slice(0, 120),
          t0,
        );
      resolve({
        code: code ?? 128 + (signal ? (SIGNALS[signal] ?? 15) : 0),
        signal,
        stdout,
        stderr,
        output,
        ms: Date.now() - started,
        timedOut,
      });
    });
  });
}

export interface RunOkOptions extends RunOptions {
  /** Error code when the command fails (default ERR_COMMAND). */
  code?: ErrorCode;
  hint?: string;
  /** How the command is named in the message (default: `cmd args…`). */
  what?: string;
}

/**
 * Runs a program and returns its stdout; a non-zero exit (or a timeout) becomes a one-line
 * failure naming the command and the last line of its output. The full output goes to
 * `details`, which `WtpoolError.toJSON` redacts like the message.
 */
export async function runOk(
  cmd: string,
  args: readonly string[],
  opts: RunOkOptions = {},
): Promise<string> {
  const r = await run(cmd, args, opts);
  if (r.code === 0 && !r.timedOut) return r.stdout;
  throw commandFailed(cmd, args, r, opts);
}

/** The error `runOk` throws for a failed result (exported for callers that inspect `run` first). */
export function commandFailed(
  cmd: string,
  args: readonly string[],
  r: RunResult,
  opts: Pick<RunOkOptions, 'code' | 'hint' | 'what' | 'cwd'> = {},
) {
  const what = opts.what ?? [cmd, ...args].join(' ');
  const why = r.timedOut ? `timed out after ${r.ms} ms` : `failed (exit ${r.code})`;
  const last = lastLine(r.stderr) || lastLine(r.output);
  const errOpts: ErrorOptions = {
    details: { command: [cmd, ...args], cwd: opts.cwd, exitCode: r.code, output: r.output },
    ...(opts.hint ? { hint: opts.hint } : {}),
  };
  return failure(
    r.timedOut ? 'ERR_COMMAND_TIMEOUT' : (opts.code ?? 'ERR_COMMAND'),
    redact(`${what} ${why}${opts.cwd ? ` in ${opts.cwd}` : ''}${last ? `: ${last}` : ''}`),
    errOpts,
  );
}

/**
 * Synchronous run, for the rare place that cannot wait (a signal handler restoring a checkout).
 * Same result shape; no timeout, no streaming.
 */
export function runSync(cmd: string, args: readonly string[], opts: RunOptions = {}): RunResult {
  const started = Date.now();
  const r = childProcess().spawnSync(cmd, [...args], {
    cwd: opts.cwd,
    env: opts.extraEnv
      ? { ...(opts.env ?? process.env), ...opts.extraEnv }
      : (opts.env ?? process.env),
    input: opts.input,
    encoding: 'utf8',
    maxBuffer: MAX_CAPTURE,
    stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  const missing = (r.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
  const stdout = r.stdout ?? '';
  const stderr = missing ? `${cmd}: not found` : (r.stderr ?? '');
  return {
    code: missing ? 127 : (r.status ?? 128 + (r.signal ? (SIGNALS[r.signal] ?? 15) : 0)),
    signal: r.signal,
    stdout,
    stderr,
    output: stdout + stderr,
    ms: Date.now() - started,
    timedOut: false,
  };
}

// No prompts, no pagers, no editors: everything runs unattended.
export const GIT_ENV: Readonly<Record<string, string>> = {
  GIT_TERMINAL_PROMPT: '0',
  GIT_PAGER: 'cat',
  GIT_EDITOR: 'true',
};

/** Runs git (unattended env); resolves for any exit code. */
export function gitRun(args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return run('git', args, { ...opts, extraEnv: { ...GIT_ENV, ...opts.extraEnv } });
}

/** Runs git and returns its stdout; a non-zero exit is an ERR_GIT failure (output in details). */
export function git(args: readonly string[], opts: RunOkOptions = {}): Promise<string> {
  return runOk('git', args, {
    code: 'ERR_GIT',
    ...opts,
    extraEnv: { ...GIT_ENV, ...opts.extraEnv },
  });
}

/** The last non-empty line of a command's output, for one-line error messages. */
export function lastLine(text: string): string {
  const lines = text.trim().split('\n');
  return lines[lines.length - 1]?.trim() ?? '';
}
