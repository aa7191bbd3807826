/**
 * Child processes of the gates: git with argv arrays (names never reach a shell), gate
 * commands from pool.config.yaml through `sh -c` (they are the repository owner's commands,
 * like package.json scripts; nothing from a user is interpolated into them). Every running
 * child is tracked so an interrupted `integrate run` can stop it before restoring the repo.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { failure } from '@wtpool/core';

export interface ExecResult {
  code: number;
  /** stdout and stderr interleaved as they arrived. */
  output: string;
  stdout: string;
  ms: number;
}

const running = new Set<ChildProcess>();
const groups = new WeakSet<ChildProcess>();

/**
 * Stops every running child (signal handlers). Gate commands run in their own process group,
 * so the whole group is signalled: killing only `sh` would leave its build or test running.
 */
export function stopChildren(signal: NodeJS.Signals = 'SIGTERM'): void {
  for (const child of running) {
    try {
      if (groups.has(child) && child.pid) process.kill(-child.pid, signal);
      else child.kill(signal);
    } catch {
      // already gone
    }
  }
}

/**
 * PATH for gate commands: the worktree's and the main checkout's `node_modules/.bin` first, as
 * `pnpm run` does, so `tsc -b` or `prettier` resolve to the repository's own versions.
 */
export function gateEnv(dirs: string[], env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const bins = [...new Set(dirs)].map((d) => path.join(d, 'node_modules', '.bin'));
  return { ...env, PATH: [...bins, env.PATH ?? ''].join(path.delimiter) };
}

export function exec(
  cmd: string,
  args: string[],
  opts: {
    cwd: string;
    env?: NodeJS.ProcessEnv | undefined;
    onData?: ((chunk: string) => void) | undefined;
    /** Run in a process group of its own (stopped as a whole by stopChildren). */
    group?: boolean;
  },
): Promise<ExecResult> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: opts.group === true,
    });
    running.add(child);
    if (opts.group) groups.add(child);
    let output = '';
    let stdout = '';
    const take = (isOut: boolean) => (d: string) => {
      output += d;
      if (isOut) stdout += d;
      opts.onData?.(d);
    };
    child.stdout!.setEncoding('utf8').on('data', take(true));
    child.stderr!.setEncoding('utf8').on('data', take(false));
    child.on('error', (e) => {
      running.delete(child);
      reject(e);
    });
    child.on('close', (code, signal) => {
      running.delete(child);
      resolve({
        code: code ?? (signal ? 128 + 15 : 1),
        output,
        stdout,
        ms: Date.now() - started,
      });
    });
  });
}

/**
 * Runs a configured gate command through the shell. `args` become `$0 $1 …` of the script
 * (so data such as file names stays out of the shell text).
 */
export function shell(
  command: string,
  opts: {
    cwd: string;
    env?: NodeJS.ProcessEnv;
    onData?: ((chunk: string) => void) | undefined;
    args?: string[];
  },
): Promise<ExecResult> {
  return exec('sh', ['-c', command, ...(opts.args ?? [])], { ...opts, group: true });
}

/** Runs git; returns stdout without the trailing newline, throws a one-line failure otherwise. */
export async function git(args: string[], cwd: string): Promise<string> {
  const r = await exec('git', args, { cwd });
  if (r.code !== 0) {
    throw failure('ERR_GIT', `git ${args.join(' ')} failed: ${lastLine(r.output)}`, {
      details: { cwd, output: r.output },
    });
  }
  return r.stdout.replace(/\n$/, '');
}

/** Runs git and returns its result without throwing. */
export function gitTry(args: string[], cwd: string): Promise<ExecResult> {
  return exec('git', args, { cwd });
}

export function lastLine(text: string): string {
  const lines = text.trim().split('\n');
  return lines[lines.length - 1] ?? '';
}
