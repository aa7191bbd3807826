/**
 * `gates.paths`: per-path gates. A mapping from a path glob (git's `:(glob)` pathspec dialect,
 * relative to the repository root) to the checks that cover it:
 *
 *   gates:
 *     paths:
 *       "packages/api/**": { build: "tsc -p packages/api", test: "pnpm -C packages/api test" }
 *       "packages/web/**": { typecheck: "tsc -p packages/web --noEmit" }
 *
 * A check left out falls back to the default (`gates.build`, `gates.test`; typecheck has none).
 * Every command must be a real command (the same rule as `gates.build`), so no mapping can
 * switch the mandatory build gate off.
 */
import { configError } from '@wtpool/core';
import { globProblem } from './checks.js';

export const PATH_CHECKS = ['build', 'typecheck', 'test'] as const;
export type PathCheck = (typeof PATH_CHECKS)[number];
export type PathGates = Record<string, Partial<Record<PathCheck, string>>>;

// A gate command: not empty and not an obvious no-op (`true`, `:`, `exit 0`).
export const GATE_COMMAND =
  /^(?!\s*(?:true|:|exit(?:\s+0)?|\/bin\/true|\/usr\/bin\/true)\s*$)\s*\S/;

const isMapping = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

export function coercePathGates(value: unknown, key: string, source: string): PathGates {
  const bad = (k: string, what: string) =>
    configError(`${source}: ${k} must be ${what}`, {
      hint: `fix ${k} in ${source} (see docs/gates.md)`,
    });
  if (!isMapping(value)) throw bad(key, 'a mapping of path globs to checks');
  const out: PathGates = {};
  for (const [glob, checks] of Object.entries(value)) {
    const k = `${key}.${JSON.stringify(glob)}`;
    // A glob is handed to git as `:(glob)<glob>`: no magic of its own, no option, no parent.
    if (
      !glob.trim() ||
      glob.startsWith(':') ||
      glob.startsWith('-') ||
      glob.split('/').includes('..')
    ) {
      throw bad(k, 'keyed by a path glob relative to the repository root, e.g. packages/api/**');
    }
    const globBad = globProblem(glob);
    if (globBad) throw bad(k, `keyed by ${globBad}, e.g. packages/api/**`);
    if (!isMapping(checks) || !Object.keys(checks).length) {
      throw bad(k, `a mapping of checks (${PATH_CHECKS.join(', ')}) to commands`);
    }
    const entry: Partial<Record<PathCheck, string>> = {};
    for (const [check, command] of Object.entries(checks)) {
      if (!(PATH_CHECKS as readonly string[]).includes(check)) {
        throw configError(`${source}: unknown key ${k}.${check}`, {
          hint: `known checks: ${PATH_CHECKS.join(', ')}`,
        });
      }
      if (typeof command !== 'string' || !GATE_COMMAND.test(command)) {
        throw bad(
          `${k}.${check}`,
          `a non-empty command, got ${JSON.stringify(command)}${check === 'build' ? ' (the build gate cannot be disabled)' : ''}`,
        );
      }
      entry[check as PathCheck] = command;
    }
    out[glob] = entry;
  }
  return out;
}
