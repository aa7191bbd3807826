/**
 * Everything the leak detector and cleanup need from the pool, in one place: its registry,
 * its git helpers (rescue, worktree removal, branch deletion, under its git locks) and its
 * event log. TEMPORARY: until dev/pool is merged these are minimal stand-ins following the
 * state format of /work/wt/pool (types.ts); they are replaced by the pool's exports.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promises as fs } from 'node:fs';
import { JsonStore, pidAlive } from '@wtpool/lock';
import type { LoadedConfig } from '@wtpool/config';

export interface ProcRef {
  pid: number;
  start: number | null;
  host: string;
}

export interface PoolLease {
  agent: string;
  task: string;
  branch: string;
  priority: number;
  token: number;
  acquiredAt: string;
  heartbeatAt: string;
  ttlMs: number;
  expiresAt: string;
  host: string;
  holder: ProcRef | null;
  claimer: ProcRef;
}

export interface PoolSlot {
  id: string;
  n: number;
  state: string;
  path: string;
  branch: string | null;
  lease: PoolLease | null;
}

export interface PoolState {
  slots: Record<string, PoolSlot>;
  queue: Array<{
    agent: string;
    task: string;
    priority: number;
    enqueuedAt: string;
    waiter: ProcRef;
  }>;
  kept: Array<{ branch: string }>;
}

export async function readPoolState(loaded: LoadedConfig): Promise<PoolState | null> {
  const store = new JsonStore<PoolState | null>(path.join(loaded.repo.stateDir, 'state.json'), {
    initial: null,
  });
  return store.read();
}

export function procAlive(p: ProcRef): boolean {
  return pidAlive(p.pid);
}

/** Why a lease is over (expired, holder dead), or null. */
export function leaseOver(lease: PoolLease, now: number): string | null {
  if (now - Date.parse(lease.heartbeatAt) > lease.ttlMs) return 'expired';
  if (lease.holder && !procAlive(lease.holder)) return 'holder-dead';
  return null;
}

export function git(
  args: string[],
  cwd: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) =>
    execFile(
      'git',
      args,
      { cwd, maxBuffer: 64 << 20, env: { ...process.env, GIT_TERMINAL_PROMPT: '0' } },
      (err, stdout, stderr) => {
        if (err && typeof err.code !== 'number') return reject(err);
        resolve({ code: err ? Number(err.code) : 0, stdout, stderr });
      },
    ),
  );
}

export async function appendEvent(
  stateDir: string,
  type: string,
  details: Record<string, unknown>,
): Promise<void> {
  await fs.mkdir(stateDir, { recursive: true });
  await fs.appendFile(
    path.join(stateDir, 'events.jsonl'),
    JSON.stringify({ ts: new Date().toISOString(), type, pid: process.pid, ...details }) + '\n',
  );
}

export interface WorktreeEntry {
  path: string;
  head: string | null;
  branch: string | null;
  prunable: boolean;
}

/** `git worktree list --porcelain`. */
export async function listWorktrees(mainRoot: string): Promise<WorktreeEntry[]> {
  const out = (await git(['worktree', 'list', '--porcelain'], mainRoot)).stdout;
  const result: WorktreeEntry[] = [];
  for (const block of out.split('\n\n')) {
    const lines = block.split('\n').filter(Boolean);
    const wt = lines.find((l) => l.startsWith('worktree '));
    if (!wt) continue;
    const get = (k: string) =>
      lines.find((l) => l.startsWith(k + ' '))?.slice(k.length + 1) ?? null;
    result.push({
      path: wt.slice('worktree '.length),
      head: get('HEAD'),
      branch: get('branch'),
      prunable: lines.some((l) => l.startsWith('prunable')),
    });
  }
  return result;
}

/** The pool operations cleanup-leaks performs. */
export interface PoolOps {
  /** Reclaims every lease that is over (rescue, reset, providers released); the slots reclaimed. */
  reclaimExpired(): Promise<string[]>;
  /** Recreates the worktrees of registered slots whose directory is gone. */
  recreateMissing(slots: string[]): Promise<void>;
  /** Does removing this worktree lose anything (uncommitted changes, commits no ref holds)? */
  needsRescue(dir: string, branch: string | null): Promise<boolean>;
  saveRescue(dir: string, refPrefix: string, message: string): Promise<string>;
  removeWorktree(mainRoot: string, dir: string): Promise<void>;
  deleteBranch(mainRoot: string, branch: string): Promise<void>;
  commitsAhead(mainRoot: string, base: string, ref: string): Promise<number>;
  event(type: string, details: Record<string, unknown>): Promise<void>;
}

async function gitOk(args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<string> {
  const saved = { ...process.env };
  Object.assign(process.env, env);
  try {
    const r = await git(args, cwd);
    if (r.code !== 0) throw new Error(`git ${args.join(' ')} failed: ${r.stderr.trim()}`);
    return r.stdout.trim();
  } finally {
    process.env = saved;
  }
}

export async function poolOps(loaded: LoadedConfig): Promise<PoolOps> {
  const { repo } = loaded;
  return {
    async reclaimExpired() {
      throw new Error('reclaiming leases needs @wtpool/pool (not merged yet)');
    },
    async recreateMissing() {
      throw new Error('recreating worktrees needs @wtpool/pool (not merged yet)');
    },
    async needsRescue(dir) {
      if ((await gitOk(['status', '--porcelain', '--untracked-files=all'], dir)) !== '')
        return true;
      const head = await gitOk(['rev-parse', 'HEAD'], dir);
      return (await gitOk(['for-each-ref', '--count=1', '--contains', head, 'refs/'], dir)) === '';
    },
    async saveRescue(dir, refPrefix, message) {
      const tmpIndex = path.join(repo.commonDir, `wtpool-rescue-${process.pid}.index`);
      try {
        const env = { GIT_INDEX_FILE: tmpIndex };
        await gitOk(['read-tree', 'HEAD'], dir, env);
        await gitOk(['add', '-A'], dir, env);
        const tree = await gitOk(['write-tree'], dir, env);
        const commit = await gitOk(['commit-tree', tree, '-p', 'HEAD', '-m', message], dir);
        const ref = `${refPrefix}${new Date().toISOString().replace(/[:.]/g, '-')}`;
        await gitOk(['update-ref', ref, commit, ''], dir);
        return ref;
      } finally {
        await fs.rm(tmpIndex, { force: true });
      }
    },
    async removeWorktree(mainRoot, dir) {
      await git(['worktree', 'remove', '--force', '--force', dir], mainRoot);
      await fs.rm(dir, { recursive: true, force: true });
      await git(['worktree', 'prune'], mainRoot);
    },
    async deleteBranch(mainRoot, branch) {
      await gitOk(['branch', '-q', '-D', branch], mainRoot);
    },
    async commitsAhead(mainRoot, base, ref) {
      return Number(await gitOk(['rev-list', '--count', `${base}..${ref}`], mainRoot));
    },
    event: (type, details) => appendEvent(repo.stateDir, type, details),
  };
}
