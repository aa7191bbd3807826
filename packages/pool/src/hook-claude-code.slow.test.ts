/**
 * Claude Code's worktree hooks through real processes (the bundled bin): payloads of each
 * spelling on stdin, exactly one absolute path on stdout, a lease that worktree-remove releases
 * with rescue, and a bounded wait on a full pool. Build first (`pnpm -s build`).
 */
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempRepo, runCli, type TempRepo } from '@wtpool/testkit';
import type { PoolStatus } from './types.js';

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../bin/pool.js');
let repo: TempRepo;

const hook = (event: 'worktree-create' | 'worktree-remove', payload: unknown, env = {}) =>
  runCli(BIN, ['hook', 'claude-code', event], {
    cwd: repo.dir,
    input: typeof payload === 'string' ? payload : JSON.stringify(payload),
    env,
  });
async function status(): Promise<PoolStatus> {
  const r = await runCli(BIN, ['status', '--json', '--repo', repo.dir], { cwd: repo.dir });
  expect(r.code, r.stderr).toBe(0);
  return r.json<PoolStatus>();
}

beforeAll(async () => {
  repo = await makeTempRepo();
  await fs.writeFile(path.join(repo.dir, 'pool.config.yaml'), 'scale:\n  min: 2\n  max: 2\n');
  const r = await runCli(BIN, ['init', '--repo', repo.dir], { cwd: repo.dir });
  expect(r.code, r.stderr).toBe(0);
});
afterAll(async () => {
  await repo?.cleanup();
});

describe('pool hook claude-code (real processes)', () => {
  it('worktree-create prints exactly one absolute path for either spelling; a full pool fails in bounded time with one line; worktree-remove releases with rescue', async () => {
    const created = await Promise.all([
      hook('worktree-create', {
        hook_event_name: 'WorktreeCreate',
        session_id: '0b6f3c9e-1111-4a2b-9c3d-aaaaaaaaaaaa',
        cwd: repo.dir,
        name: 'fix login bug',
      }),
      hook('worktree-create', {
        hook_event_name: 'WorktreeCreate',
        session_id: 'session/two',
        cwd: repo.dir,
        worktree_name: 'bright-running-fox',
      }),
    ]);
    const paths = created.map((r) => {
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.endsWith('\n')).toBe(true);
      const lines = r.stdout.split('\n').slice(0, -1);
      expect(lines).toHaveLength(1);
      expect(path.isAbsolute(lines[0]!)).toBe(true);
      expect(existsSync(path.join(lines[0]!, '.git'))).toBe(true);
      return lines[0]!;
    });
    expect(new Set(paths).size).toBe(2);

    const st = await status();
    const byPath = (p: string) => st.slots.find((s) => s.path === p)!;
    expect(byPath(paths[0]!).lease).toMatchObject({
      agent: 'claude-0b6f3c9e-1111-4a2b-9c3d-aaaaaaaaaaaa',
      task: 'fix login bug',
    });
    // The session id's slash is not a name character: it becomes a dash, never a path.
    expect(byPath(paths[1]!).lease).toMatchObject({
      agent: 'claude-session-two',
      task: 'bright-running-fox',
    });
    // No heartbeat follows a hook: the lease has the long hook TTL (24h by default).
    const l0 = byPath(paths[0]!).lease!;
    const ttl = Date.parse(l0.expiresAt) - Date.parse(l0.heartbeatAt);
    expect(ttl).toBe(24 * 3600_000);

    // The pool is full: a third session gives up after WTPOOL_HOOK_TIMEOUT, with one line.
    const full = await hook(
      'worktree-create',
      { session_id: 'third', cwd: repo.dir, name: 'waits' },
      { WTPOOL_HOOK_TIMEOUT: '1s' },
    );
    expect(full.code).toBe(75);
    expect(full.stdout).toBe('');
    expect(full.stderr.trim().split('\n')).toHaveLength(1);
    expect(full.stderr).toMatch(/^error: no slot became free within 1s .*WTPOOL_HOOK_TIMEOUT/);
    expect((await status()).queue).toEqual([]);

    // Another session cannot remove this session's slot; nothing changes.
    const foreign = await hook('worktree-remove', {
      session_id: 'someone-else',
      cwd: repo.dir,
      worktree_path: paths[0],
    });
    expect(foreign.code).toBe(5);
    expect(foreign.stdout).toBe('');
    const still = (await status()).slots.find((s) => s.path === paths[0])!;
    expect(still.lease?.token).toBe(l0.token);
    expect(still.lease?.agent).toBe(l0.agent);

    // Uncommitted work in the first slot: remove saves it to a rescue ref, then releases.
    await fs.writeFile(path.join(paths[0]!, 'draft.txt'), 'half done\n');
    const removed = await hook('worktree-remove', {
      hook_event_name: 'WorktreeRemove',
      session_id: '0b6f3c9e-1111-4a2b-9c3d-aaaaaaaaaaaa',
      cwd: repo.dir,
      worktree_path: paths[0],
    });
    expect(removed.code, removed.stderr).toBe(0);
    expect(removed.stdout).toBe('');
    const ref = /saved to (refs\/wtpool\/rescue\/\S+)/.exec(removed.stderr)?.[1];
    expect(ref, removed.stderr).toBeDefined();
    expect(await repo.git(['show', `${ref}:draft.txt`])).toBe('half done');
    const second = await hook('worktree-remove', {
      session_id: 'session/two',
      worktree_path: paths[1],
    });
    expect(second.code, second.stderr).toBe(0);
    const after = await status();
    expect(after.slots.map((s) => s.state)).toEqual(['ready', 'ready']);
    expect(existsSync(path.join(paths[0]!, 'draft.txt'))).toBe(false);

    // A payload that is not JSON is a usage error in one line.
    const junk = await hook('worktree-create', 'not json');
    expect(junk.code).toBe(2);
    expect(junk.stdout).toBe('');
    expect(junk.stderr.trim().split('\n')).toHaveLength(1);
  });
});
