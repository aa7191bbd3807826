/**
 * Which build, typecheck and test commands a set of changed paths needs (`gates.paths`, D121).
 * Each mapping (path glob → checks) applies when a changed path matches its glob; a check it
 * leaves out falls back to the default (`gates.build`, `gates.test`). Paths no glob matches run
 * the defaults. The build gate is mandatory: when nothing changed, or the change is empty, the
 * default build still runs, and config validation rejects a no-op command in any mapping.
 *
 * Globs are git pathspecs (`:(glob)…`, as `git ls-files` and `git diff` understand them), so the
 * paths are listed by git itself: staged (pre-commit), changed by a merge (queue), or all (ci).
 */
import type { Config, PathCheck } from '@wtpool/config';
import { git } from '@wtpool/core';

export interface Check {
  gate: PathCheck;
  command: string;
  /** What selected it: the globs of the mappings, or `default`. */
  for: string;
}

/** Lists the paths matching the pathspecs (none given: every path). */
export type PathLister = (pathspecs: string[]) => Promise<string[]>;

/**
 * Pure: the checks for the mappings that apply and whether any path is unmapped. Deduplicated by
 * command (a command named by two mappings runs once), builds first, then typechecks, then tests.
 */
export function planChecks(
  gates: Pick<Config['gates'], 'build' | 'test' | 'paths'>,
  applying: string[],
  unmapped: boolean,
): Check[] {
  const planned = new Map<string, Check>();
  const add = (gate: PathCheck, command: string | undefined, why: string) => {
    if (!command) return;
    const key = `${gate}\0${command}`;
    const seen = planned.get(key);
    if (seen) {
      if (!seen.for.split(', ').includes(why)) seen.for += `, ${why}`;
    } else planned.set(key, { gate, command, for: why });
  };
  const defaults = unmapped || applying.length === 0;
  for (const gate of ['build', 'typecheck', 'test'] as const) {
    for (const glob of applying) {
      const m = gates.paths[glob]!;
      add(gate, m[gate] ?? (gate === 'typecheck' ? undefined : gates[gate]), glob);
    }
    if (defaults && gate !== 'typecheck') add(gate, gates[gate], 'default');
  }
  return [...planned.values()];
}

/** The checks the paths listed by `list` need, asking git one question per mapping. */
export async function selectChecks(
  gates: Pick<Config['gates'], 'build' | 'test' | 'paths'>,
  list: PathLister,
): Promise<Check[]> {
  const globs = Object.keys(gates.paths);
  const applying: string[] = [];
  for (const glob of globs) if ((await list([`:(glob)${glob}`])).length) applying.push(glob);
  const unmapped =
    (await list([':(glob)**', ...globs.map((g) => `:(exclude,glob)${g}`)])).length > 0;
  return planChecks(gates, applying, unmapped);
}

const names = (out: string) => out.split('\0').filter(Boolean);

/** Paths staged in the index (added, changed or deleted). */
export const stagedPaths =
  (cwd: string): PathLister =>
  async (specs) =>
    names(
      await git(['diff', '--cached', '--name-only', '--no-renames', '-z', '--', ...specs], { cwd }),
    );

/** Paths a range changed (added, changed or deleted), e.g. a merge: `from` = the previous head. */
export const changedPaths =
  (cwd: string, from: string, to: string): PathLister =>
  async (specs) =>
    names(
      await git(['diff', '--name-only', '--no-renames', '-z', from, to, '--', ...specs], { cwd }),
    );

/** Every tracked path. */
export const trackedPaths =
  (cwd: string): PathLister =>
  async (specs) =>
    names(await git(['ls-files', '-z', '--', ...specs], { cwd }));

/** Files a range added or changed that still exist (what a format check can read). */
export async function changedFiles(cwd: string, from: string, to: string): Promise<string[]> {
  return names(
    await git(['diff', '--name-only', '--no-renames', '--diff-filter=d', '-z', from, to], { cwd }),
  );
}
