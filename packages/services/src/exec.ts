/**
 * Compatibility shim over the one runner of `@wtpool/core` (D100) for the services modules not
 * migrated yet (deps.ts, postgres.ts): the same result shape as before (exit code and the last
 * 4000 characters of output). Delete it once they call `run` directly.
 */
import { run } from '@wtpool/core';

export { lastLine } from '@wtpool/core';

export interface Captured {
  code: number;
  /** The last 4000 characters of stdout and stderr, interleaved. */
  output: string;
}

/** `run` with the output tail only. A missing program resolves with code 127, like a shell. */
export async function runCaptured(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<Captured> {
  const r = await run(cmd, args, { ...opts, tail: 4000 });
  return { code: r.code, output: r.output };
}
