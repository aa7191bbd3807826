import { spawn } from 'node:child_process';
import { errno } from '@wtpool/core';

export interface Captured {
  code: number;
  /** The last 4000 characters of stdout and stderr, interleaved. */
  output: string;
}

/**
 * Runs a program with an argv array (never a shell string built from input) and captures the
 * tail of its output. A missing program resolves with code 127, like a shell.
 */
export function runCaptured(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<Captured> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const keep = (d: Buffer) => (output = (output + d.toString()).slice(-4000));
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', (e) =>
      errno(e) === 'ENOENT' ? resolve({ code: 127, output: `${cmd}: not found` }) : reject(e),
    );
    child.on('close', (code) => resolve({ code: code ?? 1, output }));
  });
}

/** The last line of a command's output, for one-line error messages. */
export const lastLine = (output: string) => output.trim().split('\n').slice(-1)[0] ?? '';
