/**
 * Beads: each slot files issues under its own prefix `<prefix>-wt-<n>`. bd reads its prefix
 * from `issue-prefix` in .beads/config.yaml, overridable by the BD_ISSUE_PREFIX environment
 * variable (bd maps every config key to BD_<KEY>). The pool therefore never writes a tracked
 * file: the slot's prefix goes into `.env.worktree` (BEADS_PREFIX, and BD_ISSUE_PREFIX for bd),
 * which is excluded from git — so it cannot reach a commit. See docs/services.md.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Config, RepoPaths } from '@wtpool/config';
import { slotNames } from '@wtpool/config';
import type { SlotProvider } from './provider.js';

const PREFIX = /^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$/;

/**
 * The repository's beads prefix: beads.prefix from the pool config, else `issue-prefix` of
 * .beads/config.yaml, else (as bd init does) the main checkout's directory name. null when the
 * repository has no .beads/config.yaml.
 */
export function beadsBasePrefix(config: Config, repo: RepoPaths): string | null {
  let text: string;
  try {
    text = readFileSync(path.join(repo.mainRoot, '.beads', 'config.yaml'), 'utf8');
  } catch {
    return null;
  }
  if (config.beads.prefix) return config.beads.prefix;
  const m = /^issue-prefix:\s*["']?([^"'#\s]*)["']?\s*(?:#.*)?$/m.exec(text);
  const candidate = m?.[1] || path.basename(repo.mainRoot);
  return PREFIX.test(candidate) ? candidate : null;
}

export function beadsProvider(base: string): SlotProvider {
  const env = (ctx: Parameters<NonNullable<SlotProvider['env']>>[0]) => {
    const prefix =
      ctx.names.beadsPrefix ?? slotNames(ctx.config, ctx.repo, ctx.names.n, base).beadsPrefix!;
    return { BEADS_PREFIX: prefix, BD_ISSUE_PREFIX: prefix };
  };
  return {
    name: 'beads',
    lease: async (ctx) => env(ctx),
    env: async (ctx) => env(ctx),
  };
}
