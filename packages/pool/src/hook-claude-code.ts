/**
 * Claude Code's worktree hooks (`pool hook claude-code worktree-create|worktree-remove`,
 * docs/agents.md, D343): thin adapters over acquire and release. Claude Code pipes a JSON
 * payload on stdin; worktree-create leases a slot for the session and prints only the slot's
 * absolute path on stdout; worktree-remove releases it with rescue (force: uncommitted work is
 * saved to a rescue ref first). Everything else goes to stderr, as one line.
 *
 * The hook process exits at once, so nothing heartbeats the lease: it is taken with a long TTL
 * (WTPOOL_HOOK_TTL, default 24h) and ends with worktree-remove, or after the TTL through the
 * normal reclaim (work rescued). `pool heartbeat` or the MCP `attach` tool renew it.
 */
import { realpathSync } from 'node:fs';
import path from 'node:path';
import { checkName } from '@wtpool/config';
import {
  conflictError,
  isWtpoolError,
  notFoundError,
  parseDuration,
  poolFullError,
  usageError,
} from '@wtpool/core';
import { ENV_FILE, readEnvFile } from './envfile.js';
import { WorktreePool } from './pool.js';
import type { AcquireResult, ReleaseResult } from './types.js';

/** The fields of the payload the hooks read; released Claude Code versions spell the name two ways. */
export interface HookPayload {
  session_id?: unknown;
  cwd?: unknown;
  name?: unknown;
  worktree_name?: unknown;
  worktree_path?: unknown;
}

export interface HookOptions {
  /** --repo: the repository (default: the payload's cwd, else the current directory). */
  repo?: string | undefined;
  config?: string | undefined;
  env?: NodeJS.ProcessEnv;
}

/** Default lease TTL of a hook lease (nothing heartbeats it) and the longest wait for a slot. */
export const HOOK_TTL_DEFAULT = '24h';
export const HOOK_TIMEOUT_DEFAULT = '60s';

/** Parses the payload: a JSON object, or a usage error saying what came instead. */
export function parsePayload(text: string): HookPayload {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw usageError(
      `the hook payload on stdin is not JSON: ${JSON.stringify(text.slice(0, 60))}`,
      {
        hint: 'Claude Code pipes a JSON object; see docs/agents.md',
      },
    );
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw usageError('the hook payload on stdin is not a JSON object');
  return v as HookPayload;
}

const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);

/** The agent name of a Claude Code session: `claude-<session_id>`, made a valid (checked) agent name. */
export function sessionAgent(sessionId: unknown): string {
  const sid = str(sessionId);
  if (!sid) throw usageError('the hook payload has no session_id');
  const name = `claude-${sid}`
    .replace(/[^A-Za-z0-9._@+-]/g, '-')
    .replace(/\.{2,}/g, '.')
    .slice(0, 64);
  return checkName(name, 'agent');
}

function openPool(p: HookPayload, o: HookOptions): WorktreePool {
  const repo = o.repo ?? str(p.cwd);
  return new WorktreePool({ repo, config: o.config });
}

/** worktree-create: leases a slot for the session; returns the lease (its path goes to stdout). */
export async function worktreeCreate(p: HookPayload, o: HookOptions = {}): Promise<AcquireResult> {
  const env = o.env ?? process.env;
  const agent = sessionAgent(p.session_id);
  const task = str(p.name) ?? str(p.worktree_name) ?? 'claude-code';
  const pool = openPool(p, o);
  pool.reporter = {
    progress: () => {},
    warn: (m) => process.stderr.write(`warning: ${m}\n`),
  };
  const timeout = env.WTPOOL_HOOK_TIMEOUT ?? HOOK_TIMEOUT_DEFAULT;
  try {
    return await pool.lease({
      agent,
      task,
      wait: true,
      ttlMs: parseDuration(env.WTPOOL_HOOK_TTL ?? HOOK_TTL_DEFAULT, 'WTPOOL_HOOK_TTL'),
      timeoutMs: parseDuration(timeout, 'WTPOOL_HOOK_TIMEOUT'),
    });
  } catch (e) {
    // The CLI's hint names --timeout; a hook has no flags, only its environment.
    if (isWtpoolError(e) && e.code === 'ERR_POOL_FULL' && /became free/.test(e.message))
      throw poolFullError(e.message, {
        hint: `raise WTPOOL_HOOK_TIMEOUT (now ${timeout}), or grow the pool (\`pool scale out\`, scale.max)`,
      });
    throw e;
  }
}

const real = (p: string) => {
  try {
    return realpathSync(p);
  } catch {
    return path.resolve(p);
  }
};

/**
 * worktree-remove: releases the lease of the slot at `worktree_path` with rescue. The lease
 * must be the session's (`claude-<session_id>`) and carry the token of the slot's env file, so
 * a slot reclaimed and leased to someone else meanwhile is never released by a late remove.
 */
export async function worktreeRemove(p: HookPayload, o: HookOptions = {}): Promise<ReleaseResult> {
  const where = str(p.worktree_path);
  if (!where) throw usageError('the hook payload has no worktree_path');
  const agent = sessionAgent(p.session_id);
  const pool = openPool(p, o);
  const target = real(where);
  const slot = Object.values((await pool.readState()).slots).find((s) => real(s.path) === target);
  if (!slot)
    throw notFoundError(`${where} is not a slot of the pool at ${pool.repo.mainRoot}`, {
      hint: 'only worktrees made by `pool hook claude-code worktree-create` are released here',
    });
  if (!slot.lease)
    throw notFoundError(`${slot.id} is not leased (state: ${slot.state}); nothing to release`);
  if (slot.lease.agent !== agent)
    throw conflictError(
      `${slot.id} is held by ${slot.lease.agent}, not by this session (${agent}); nothing was changed`,
      { hint: 'release it with `pool release` as its holder' },
    );
  const env = await readEnvFile(path.join(slot.path, ENV_FILE)).catch(
    () => ({}) as Record<string, string>,
  );
  const token = /^[1-9][0-9]*$/.test(env.WTPOOL_LEASE_TOKEN ?? '')
    ? Number(env.WTPOOL_LEASE_TOKEN)
    : slot.lease.token;
  return pool.release({ slot: slot.id, agent, token, force: true });
}

/** Reads all of stdin (the payload). */
export async function readStdin(): Promise<string> {
  if (process.stdin.isTTY)
    throw usageError('pipe the hook payload (JSON) on stdin', {
      hint: 'Claude Code runs this command as its WorktreeCreate / WorktreeRemove hook',
    });
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** What worktree-remove says on stderr (one line). */
export function describeRemove(r: ReleaseResult): string {
  return [
    `released ${r.slot}`,
    r.rescueRef ? `uncommitted work saved to ${r.rescueRef}` : '',
    r.kept ? `branch ${r.branch} kept (it has commits)` : '',
  ]
    .filter(Boolean)
    .join('; ');
}
