/**
 * What the gates add to the one runner of `@wtpool/core` (D100): the PATH gate commands see, and
 * gate commands from pool.config.yaml run through `sh -c` (they are the repository owner's
 * commands, like package.json scripts; data such as file names is passed as `$1…`, never
 * interpolated). git runs through core's `git` / `gitRun` with argv arrays.
 */
import path from 'node:path';
import { run, type RunResult } from '@wtpool/core';

/**
 * PATH for gate commands: the worktree's and the main checkout's `node_modules/.bin` first, as
 * `pnpm run` does, so `tsc -b` or `prettier` resolve to the repository's own versions.
 */
export function gateEnv(dirs: string[], env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const bins = [...new Set(dirs)].map((d) => path.join(d, 'node_modules', '.bin'));
  return { ...env, PATH: [...bins, env.PATH ?? ''].join(path.delimiter) };
}

/**
 * Runs a configured gate command through the shell, in a process group of its own (core's
 * `stopChildren` then stops its build or test too, not only `sh`). `args` become `$0 $1 …` of
 * the script (so data such as file names stays out of the shell text).
 */
export function shell(
  command: string,
  opts: {
    cwd: string;
    env?: NodeJS.ProcessEnv;
    onData?: ((chunk: string) => void) | undefined;
    args?: string[];
  },
): Promise<RunResult> {
  return run('sh', ['-c', command, ...(opts.args ?? [])], {
    cwd: opts.cwd,
    env: opts.env,
    onData: opts.onData,
    group: true,
  });
}
