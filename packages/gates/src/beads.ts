/**
 * Beads gate: when the worktree has a `.beads/` directory and `bd` is on PATH, flush the issue
 * database to its JSONL file and stage it, so the commit carries the issues it changed.
 * Older bd has `bd sync --flush-only`; newer bd dropped it for `bd export`.
 */
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { git, run } from '@wtpool/core';
import type { GateResult } from './gate-types.js';

/** The issue files bd writes, newest name first. */
const ISSUE_FILES = ['issues.jsonl', 'beads.jsonl'];

/** Finds an executable on PATH without a shell. */
export function onPath(bin: string, env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const file = path.join(dir, bin);
    try {
      if (statSync(file).isFile()) return file;
    } catch {
      // not here
    }
  }
  return undefined;
}

export async function flushBeads(cwd: string, env: NodeJS.ProcessEnv): Promise<GateResult> {
  const started = Date.now();
  const beadsDir = path.join(cwd, '.beads');
  const skip = (why: string): GateResult => ({
    name: 'beads',
    status: 'skipped',
    command: why,
    ms: 0,
  });
  if (!existsSync(beadsDir)) return skip('no .beads directory');
  const bd = onPath('bd', env);
  if (!bd) return skip('bd is not on PATH');
  const help = await run(bd, ['sync', '--help'], { cwd, env });
  const args =
    help.code === 0 && help.output.includes('--flush-only')
      ? ['sync', '--flush-only']
      : ['export', '-o', path.join('.beads', 'issues.jsonl')];
  const r = await run(bd, args, { cwd, env });
  const command = `bd ${args.join(' ')}`;
  if (r.code !== 0) {
    return {
      name: 'beads',
      status: 'failed',
      command,
      ms: Date.now() - started,
      exitCode: r.code,
      output: r.output,
      reproduce: command,
    };
  }
  const file = ISSUE_FILES.map((f) => path.join('.beads', f)).find((f) =>
    existsSync(path.join(cwd, f)),
  );
  if (file) await git(['add', '--', file], { cwd });
  return {
    name: 'beads',
    status: 'passed',
    command: file ? `${command} && git add ${file}` : command,
    ms: Date.now() - started,
    exitCode: 0,
  };
}
