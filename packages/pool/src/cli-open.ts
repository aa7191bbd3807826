/** What every `pool` command module shares: the pool of a command's repository, option strings. */
import type { CommandContext } from '@wtpool/core';
import { WorktreePool } from './pool.js';

/** The pool of the command's repository and configuration, reporting to its output. */
export function open(ctx: CommandContext): WorktreePool {
  const pool = new WorktreePool({ repo: ctx.repo, config: ctx.config });
  pool.reporter = ctx.out;
  return pool;
}

/** An option's value as a string, undefined when it was not given. */
export const str = (v: unknown) => (v === undefined ? undefined : String(v));
