/**
 * A slot's own configuration (issue 24): the files included from the main checkout
 * (include.ts) and what the repository's setup commands wrote (setup-commands.ts). Both are
 * recorded per slot in `<stateDir>/slot-config/<slot>.json` with a stamp of each file, so that
 *   - a release keeps them like `pool.keep` (keptPaths: the pool adds them to the kept paths
 *     of its status, rescue and clean), unless the agent changed one: that one is rescued and
 *     cleaned like any other ignored file, and written again here afterwards;
 *   - setup runs again only when its inputs' hash changed or one of its outputs is gone.
 * The provider runs last, after dependencies and services (setup may need the database).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { gitRun } from '@wtpool/core';
import type { Config } from '@wtpool/config';
import { ensurePrivateDir, readJsonFile, writePrivateFile } from '@wtpool/lock';
import { listIncludes, syncIncludes, unchanged, type IncludeStamp } from './include.js';
import { runSetup, setupInputsHash, setupOutputs } from './setup-commands.js';
import type { ProviderContext, SlotProvider } from './provider.js';

export interface SlotConfigRecord {
  /** The worktree it describes (its `.git` file's inode): a re-created worktree starts afresh. */
  worktree?: number | null;
  /** HEAD of the slot when it was last brought up to date. */
  commit: string | null;
  includes: Record<string, IncludeStamp>;
  /** The last successful setup (null: never ran, or failed, or none is configured). */
  setup: { hash: string; at: string; outputs: Record<string, IncludeStamp> } | null;
}

/** The files the pool writes into a leased slot (pool's envfile.ts / worktree.ts): not setup's. */
const POOL_FILES = ['.env.worktree', '.pool-owner'];

export const slotConfigFile = (stateDir: string, slot: string) =>
  path.join(stateDir, 'slot-config', `${slot}.json`);

export async function readSlotConfig(stateDir: string, slot: string): Promise<SlotConfigRecord> {
  const rec = await readJsonFile<SlotConfigRecord>(slotConfigFile(stateDir, slot)).catch(
    () => undefined,
  );
  return rec ?? { commit: null, includes: {}, setup: null };
}

async function writeSlotConfig(stateDir: string, slot: string, rec: SlotConfigRecord) {
  const file = slotConfigFile(stateDir, slot);
  ensurePrivateDir(path.dirname(file));
  await writePrivateFile(file, JSON.stringify(rec, null, 1) + '\n');
}

/** Every file the slot's configuration holds (included, and setup's outputs), with its stamp. */
const recorded = (rec: SlotConfigRecord): [string, IncludeStamp][] => [
  ...Object.entries(rec.includes),
  ...Object.entries(rec.setup?.outputs ?? {}),
];

/**
 * The slot's configuration files nobody changed, as kept paths (`/<path>`, anchored at the
 * worktree's root), plus each directory all of whose files are such (git reports an ignored
 * directory as one entry). The pool adds these to `pool.keep` for a release of that slot.
 */
export async function keptPaths(stateDir: string, slot: string, dir: string): Promise<string[]> {
  const rec = await readSlotConfig(stateDir, slot);
  const kept = new Set<string>();
  for (const [rel, stamp] of recorded(rec))
    if (await unchanged(path.join(dir, rel), stamp)) kept.add(rel);
  if (!kept.size) return [];
  const dirs = new Set<string>();
  for (const rel of kept) {
    const parts = rel.split('/');
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
  }
  const covered: string[] = [];
  for (const d of [...dirs].sort()) {
    if (covered.some((c) => d.startsWith(`${c}/`))) continue;
    if (await onlyKept(dir, d, kept)) covered.push(d);
  }
  return [...[...kept].map((r) => `/${r}`), ...covered.map((d) => `/${d}`)];
}

/** Does directory `rel` hold kept files only (walked without following symlinks)? */
async function onlyKept(root: string, rel: string, kept: Set<string>): Promise<boolean> {
  let entries: string[];
  try {
    entries = await fs.readdir(path.join(root, rel));
  } catch {
    return false;
  }
  for (const e of entries) {
    const child = `${rel}/${e}`;
    if (kept.has(child)) continue;
    const st = await fs.lstat(path.join(root, child)).catch(() => null);
    if (!st?.isDirectory() || !(await onlyKept(root, child, kept))) return false;
  }
  return true;
}

async function headOf(dir: string): Promise<string | null> {
  const r = await gitRun(['rev-parse', '--verify', '-q', 'HEAD'], { cwd: dir });
  return r.code === 0 ? r.stdout.trim() : null;
}

/** Why setup must run (null: it is up to date). */
async function setupDue(dir: string, rec: SlotConfigRecord, hash: string): Promise<string | null> {
  if (!rec.setup) return 'first run';
  if (rec.setup.hash !== hash) return 'its inputs changed';
  for (const [rel, stamp] of Object.entries(rec.setup.outputs))
    if (!(await unchanged(path.join(dir, rel), stamp))) return `${rel} changed or is gone`;
  return null;
}

export type SyncReason = 'provision' | 'release' | 'acquire';

/**
 * Brings a slot's configuration up to date: the included files (at provision and release;
 * re-copied when their source changed), then setup when its inputs' hash changed or an output
 * is gone. An acquire that finds the slot on the commit it was brought up to date at does
 * nothing. A setup failure leaves the record without setup (the next attempt runs it again)
 * and is thrown: the pool marks the slot broken.
 */
export async function syncSlotConfig(
  config: Config,
  ctx: ProviderContext,
  why: SyncReason,
): Promise<void> {
  const { include, includeMode, setup, setupInputs, keep } = config.pool;
  const dir = ctx.names.path;
  const slot = ctx.names.id;
  const stateDir = ctx.repo.stateDir;
  const gitFile = (await fs.lstat(path.join(dir, '.git')).catch(() => null))?.ino ?? null;
  let rec = await readSlotConfig(stateDir, slot);
  if (rec.worktree !== gitFile)
    rec = { worktree: gitFile, commit: null, includes: {}, setup: null };
  const head = await headOf(dir);
  if (why === 'acquire' && head !== null && head === rec.commit) return;
  if (why !== 'acquire') {
    const { files, skipped } = await listIncludes(ctx.repo.mainRoot, include, keep);
    for (const s of skipped) ctx.warn(`${slot}: not included: ${s}`);
    const r = await syncIncludes(ctx.repo.mainRoot, dir, files, includeMode, rec.includes);
    for (const f of r.failed) ctx.warn(`${slot}: could not include ${f}`);
    rec.includes = r.stamps;
    if (r.written.length) await ctx.event('include', { slot, files: r.written, why });
  }
  if (!setup.length) {
    rec.setup = null;
  } else {
    const hash = await setupInputsHash(dir, setup, setupInputs);
    const due = await setupDue(dir, rec, hash);
    if (due) {
      rec.setup = null;
      try {
        const env = (await ctx.slotEnv?.()) ?? {};
        await runSetup(dir, setup, { slot, stateDir, env, progress: (m) => ctx.progress(m) });
      } catch (e) {
        rec.commit = null;
        await writeSlotConfig(stateDir, slot, rec);
        await ctx.event('setup', { slot, why, reason: due, ok: false });
        throw e;
      }
      const exclude = new Set([...Object.keys(rec.includes), ...POOL_FILES]);
      rec.setup = {
        hash,
        at: new Date().toISOString(),
        outputs: await setupOutputs(dir, keep, exclude),
      };
      await ctx.event('setup', { slot, why, reason: due, ok: true });
    }
  }
  rec.commit = head;
  await writeSlotConfig(stateDir, slot, rec);
}

export function slotConfigProvider(config: Config): SlotProvider {
  return {
    name: 'setup',
    provision: (ctx) => syncSlotConfig(config, ctx, 'provision'),
    refresh: (ctx, why) => syncSlotConfig(config, ctx, why),
    destroy: (ctx) => fs.rm(slotConfigFile(ctx.repo.stateDir, ctx.names.id), { force: true }),
  };
}
