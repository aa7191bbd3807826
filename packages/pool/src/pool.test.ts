/**
 * WorktreePool as a library, on real temp repositories: leases, release that never loses work,
 * kept branches, self-healing, identities, expiry, scaling, refresh and doctor.
 */
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makeTempRepo, until, type TempRepo } from '@wtpool/testkit';
import { WorktreePool, doctor } from './pool.js';
import { readEvents } from './events.js';
import { readEnvFile } from './envfile.js';

const repos: TempRepo[] = [];
afterEach(async () => {
  await Promise.all(repos.splice(0).map((r) => r.cleanup()));
});

/** A clock that stands still until the test moves it forward (instead of sleeping). */
function testClock() {
  let t = Date.parse('2026-06-01T12:00:00Z');
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

/** A temp repo with a pool; `clock` (tests of TTLs and idle time) replaces the real one. */
async function setup(
  yaml = 'scale:\n  min: 2\n  max: 4\n',
  files?: Record<string, string>,
  clock?: ReturnType<typeof testClock>,
) {
  const repo = await makeTempRepo(files ? { files } : {});
  repos.push(repo);
  // pool-redis.slow.test.ts runs these scenarios again on the Redis lease store.
  await fs.writeFile(
    path.join(repo.dir, 'pool.config.yaml'),
    yaml + (process.env.WTPOOL_TEST_STORE_YAML ?? ''),
  );
  const pool = new WorktreePool({ repo: repo.dir }, clock ? { clock: clock.now } : {});
  return { repo, pool, clock: clock! };
}

describe('WorktreePool', () => {
  it('initializes ready slots at the base and leases a fresh branch with a lease file and marker', async () => {
    const { repo, pool } = await setup();
    const status = await pool.initialize();
    expect(status.pool).toMatchObject({ size: 2, ready: 2, leased: 0 });
    const base = await repo.git(['rev-parse', 'main']);
    for (const s of status.slots) expect(await repo.git(['rev-parse', 'HEAD'], s.path)).toBe(base);

    const lease = await pool.lease({ agent: 'agent-1', task: 'Task 17: fix login', priority: 1 });
    expect(lease).toMatchObject({
      slot: 'wt-1',
      agent: 'agent-1',
      priority: 1,
      branch: 'pool/wt-1/task-17-fix-login',
    });
    expect(await repo.git(['rev-parse', '--abbrev-ref', 'HEAD'], lease.path)).toBe(lease.branch);
    const leaseFile = JSON.parse(
      await fs.readFile(path.join(repo.dir, '.git/wtpool/leases/wt-1.json'), 'utf8'),
    );
    expect(leaseFile).toMatchObject({ slot: 'wt-1', agent: 'agent-1', token: lease.token });
    const marker = JSON.parse(await fs.readFile(path.join(lease.path, '.pool-owner'), 'utf8'));
    expect(marker).toMatchObject({ agent: 'agent-1', token: lease.token });
    // One writer: the file holds exactly the env the acquire returned (no service configured).
    expect(lease.env).toEqual({
      WORKTREE_ID: 'wt-1',
      POOL_STATE_DIR: pool.repo.stateDir,
      WTPOOL_LEASE_TOKEN: String(lease.token),
    });
    expect(await readEnvFile(lease.envFile)).toEqual(lease.env);
    expect((await fs.stat(lease.envFile)).mode & 0o777).toBe(0o600);
    // The marker and env file never show up as changes (info/exclude).
    expect(await repo.git(['status', '--porcelain'], lease.path)).toBe('');

    const second = await pool.lease({ agent: 'agent-2', task: 'other' });
    expect(second.slot).toBe('wt-2');
    expect(second.token).toBeGreaterThan(lease.token);
    const st = await pool.getStatus();
    expect(st.pool).toMatchObject({ size: 2, leased: 2, ready: 0, waiters: 0 });
    expect(st.slots[0]!.lease).toMatchObject({ agent: 'agent-1', token: lease.token, priority: 1 });
    await expect(pool.lease({ agent: 'agent-3', task: 'x', wait: false })).rejects.toMatchObject({
      exitCode: 75,
    });
  });

  it('refuses a dirty release (exit 5) and changes nothing; --force rescues tracked and untracked work first', async () => {
    const { repo, pool } = await setup('scale:\n  min: 1\n  max: 2\n', {
      'a.txt': 'one\n',
      '.gitignore': 'node_modules\nbuild\n',
    });
    await pool.initialize();
    const lease = await pool.lease({ agent: 'ag', task: 'edit' });
    await fs.writeFile(path.join(lease.path, 'a.txt'), 'changed\n');
    await fs.writeFile(path.join(lease.path, 'new.txt'), 'untracked\n');
    await fs.mkdir(path.join(lease.path, 'node_modules/dep'), { recursive: true });
    await fs.writeFile(path.join(lease.path, 'node_modules/dep/index.js'), 'cache\n');
    await fs.mkdir(path.join(lease.path, 'build'));
    await fs.writeFile(path.join(lease.path, 'build/out.js'), 'artifact\n');
    const before = JSON.stringify((await pool.readState()).slots);

    await expect(pool.release({ slot: 'wt-1', agent: 'ag' })).rejects.toMatchObject({
      exitCode: 5,
    });
    expect(JSON.stringify((await pool.readState()).slots)).toBe(before);
    expect(await fs.readFile(path.join(lease.path, 'a.txt'), 'utf8')).toBe('changed\n');
    expect(await fs.readFile(path.join(lease.path, 'new.txt'), 'utf8')).toBe('untracked\n');
    expect(await pool.rescueList()).toEqual([]);

    await expect(
      pool.release({ slot: 'wt-1', agent: 'someone-else', force: true }),
    ).rejects.toMatchObject({ exitCode: 5 });
    const r = await pool.release({ slot: 'wt-1', agent: 'ag', force: true });
    expect(r.rescueRef).toMatch(/^refs\/wtpool\/rescue\/wt-1\//);
    expect(await repo.git(['show', `${r.rescueRef}:a.txt`])).toBe('changed');
    expect(await repo.git(['show', `${r.rescueRef}:new.txt`])).toBe('untracked');
    // Back to the base: tracked change gone, untracked gone, ignored build output gone, node_modules kept.
    expect(await fs.readFile(path.join(lease.path, 'a.txt'), 'utf8')).toBe('one\n');
    expect(existsSync(path.join(lease.path, 'new.txt'))).toBe(false);
    expect(existsSync(path.join(lease.path, 'build'))).toBe(false);
    expect(existsSync(path.join(lease.path, 'node_modules/dep/index.js'))).toBe(true);
    expect(existsSync(path.join(repo.dir, '.git/wtpool/leases/wt-1.json'))).toBe(false);
    // The empty branch is deleted; the slot is ready again.
    expect(await repo.git(['branch', '--list', r.branch])).toBe('');
    expect((await pool.getStatus()).slots[0]).toMatchObject({ state: 'ready', lease: null });
    const types = (await readEvents(pool.repo.stateDir)).map((e) => e.type);
    expect(types).toEqual(expect.arrayContaining(['rescue', 'release']));
    expect(types.indexOf('rescue')).toBeLessThan(types.indexOf('release'));
  });

  it('keeps a branch with commits for integration and never reuses a branch name for another lease', async () => {
    const { repo, pool } = await setup('scale:\n  min: 1\n  max: 1\n');
    await pool.initialize();
    const first = await pool.lease({ agent: 'ag', task: 'feature' });
    await repo.commit({ 'f.txt': 'work\n' }, 'work', first.path);
    const r = await pool.release({ slot: first.slot, agent: 'ag' });
    expect(r).toMatchObject({ kept: true, rescueRef: null, branch: 'pool/wt-1/feature' });
    expect(await repo.git(['rev-parse', '--verify', 'refs/heads/pool/wt-1/feature'])).toMatch(
      /^[0-9a-f]{40}$/,
    );
    const kept = await pool.keptBranches();
    expect(kept.map((k) => k.branch)).toEqual(['pool/wt-1/feature']);
    expect(kept[0]).toMatchObject({ agent: 'ag', task: 'feature', slot: 'wt-1' });

    const again = await pool.lease({ agent: 'other', task: 'feature' });
    expect(again.branch).not.toBe(first.branch);
    expect(again.branch.startsWith('pool/wt-1/feature-')).toBe(true);
    // The new branch starts at the base, not at the kept work.
    expect(await repo.git(['rev-parse', 'HEAD'], again.path)).toBe(
      await repo.git(['rev-parse', 'main']),
    );
    expect(existsSync(path.join(again.path, 'f.txt'))).toBe(false);
  });

  it('recreates a slot whose worktree was deleted or pruned (self-healing)', async () => {
    const { repo, pool } = await setup('scale:\n  min: 2\n  max: 2\n');
    const st = await pool.initialize();
    await fs.rm(st.slots[0]!.path, { recursive: true, force: true });
    await fs.rm(st.slots[1]!.path, { recursive: true, force: true });
    await repo.git(['worktree', 'prune']);
    // acquire finds wt-1 gone, recreates it and leases another or it; never an endless error.
    const lease = await pool.lease({ agent: 'ag', task: 't', timeoutMs: 60_000 });
    expect(existsSync(path.join(lease.path, '.git'))).toBe(true);
    // init recreates the rest.
    const after = await pool.initialize();
    expect(after.pool).toMatchObject({ size: 2, broken: 0 });
    for (const s of after.slots) expect(existsSync(path.join(s.path, '.git'))).toBe(true);
    const wts = await repo.git(['worktree', 'list', '--porcelain']);
    expect(wts.match(/^worktree /gm)?.length).toBe(3);
  });

  it('retries a broken slot from acquire with a growing backoff; init retries it at once', async () => {
    const { pool } = await setup('scale:\n  min: 1\n  max: 1\n');
    const [slot] = (await pool.initialize()).slots;
    // A real failure: the slot's directory is replaced by something that is not a worktree.
    await fs.rm(slot!.path, { recursive: true, force: true });
    await fs.mkdir(slot!.path);
    await fs.writeFile(path.join(slot!.path, 'squatter.txt'), 'not yours');
    const full = { agent: 'ag', task: 't', wait: false };
    // Found missing → provision fails (broken, retry due at once) → retried once more → broken again.
    await expect(pool.lease(full)).rejects.toMatchObject({ exitCode: 75 });
    const broken = (await pool.readState()).slots['wt-1']!;
    expect(broken).toMatchObject({ state: 'broken', failures: 2, errorCode: 'ERR_SLOT_PATH' });
    expect(Date.parse(broken.retryAt!)).toBeGreaterThan(Date.now());
    const errors = async () =>
      (await readEvents(pool.repo.stateDir)).filter((e) => e.type === 'error');
    expect(await errors()).toHaveLength(2);
    // Within the backoff an acquire does not try again (no new attempt, no new error).
    await expect(pool.lease(full)).rejects.toMatchObject({ exitCode: 75 });
    expect(await errors()).toHaveLength(2);
    // Fixed by hand: init re-provisions broken slots whatever their backoff.
    await fs.rm(slot!.path, { recursive: true, force: true });
    expect((await pool.initialize()).pool).toMatchObject({ ready: 1, broken: 0 });
    expect((await pool.readState()).slots['wt-1']).toMatchObject({ failures: 0, retryAt: null });
    expect((await pool.lease(full)).slot).toBe('wt-1');
  });

  it('prefers the slot an identity used last', async () => {
    const { pool } = await setup('scale:\n  min: 3\n  max: 3\n');
    await pool.initialize();
    const a = await pool.lease({ agent: 'ag', task: 't1' });
    const b = await pool.lease({ agent: 'ag2', task: 't2', identity: 'reviewer' });
    expect(b.slot).toBe('wt-2');
    await pool.release({ slot: a.slot, agent: 'ag' });
    await pool.release({ slot: b.slot, agent: 'ag2' });
    const c = await pool.lease({ agent: 'ag3', task: 't3', identity: 'reviewer' });
    expect(c.slot).toBe('wt-2');
    const d = await pool.lease({ agent: 'ag4', task: 't4' });
    expect(d.slot).toBe('wt-1');
  });

  it('renews with heartbeat, checks the holder, and reclaims an expired lease with its work rescued', async () => {
    const { repo, pool, clock } = await setup(
      'scale:\n  min: 1\n  max: 1\n',
      undefined,
      testClock(),
    );
    await pool.initialize();
    const long = await pool.lease({ agent: 'ag', task: 't', ttlMs: 60_000 });
    clock.advance(1000);
    const hb = await pool.heartbeat({ slot: long.slot, agent: 'ag' });
    expect(Date.parse(hb.expiresAt)).toBeGreaterThan(Date.parse(long.expiresAt));
    expect((await pool.readState()).slots['wt-1']!.lease!.heartbeatAt).toBe(hb.heartbeatAt);
    await expect(pool.heartbeat({ slot: long.slot, agent: 'intruder' })).rejects.toMatchObject({
      exitCode: 5,
    });
    await expect(pool.heartbeat({ slot: 'wt-9', agent: 'ag' })).rejects.toMatchObject({
      exitCode: 4,
    });
    expect((await pool.getStatus()).slots[0]!.state).toBe('leased');
    await pool.release({ slot: long.slot, agent: 'ag' });

    // A lease not renewed within its TTL: status shows it as over, the next mutating command
    // (here the housekeeping pass) reclaims it.
    const lease = await pool.lease({ agent: 'ag', task: 't', ttlMs: 200 });
    await fs.writeFile(path.join(lease.path, 'wip.txt'), 'unsaved\n');
    clock.advance(200);
    expect((await pool.getStatus()).slots[0]!.lease).toMatchObject({ over: null });
    clock.advance(1);
    const looked = await pool.getStatus();
    expect(looked.slots[0]).toMatchObject({ state: 'leased', lease: { over: 'expired' } });
    expect(await pool.cleanup()).toMatchObject({ reclaimed: ['wt-1'] });
    const st = await pool.getStatus();
    expect(st.slots[0]).toMatchObject({ state: 'ready', lease: null });
    const rescues = await pool.rescueList();
    expect(rescues).toHaveLength(1);
    expect(await repo.git(['show', `${rescues[0]!.ref}:wip.txt`])).toBe('unsaved');
    const reclaim = (await readEvents(pool.repo.stateDir)).find((e) => e.type === 'reclaim');
    expect(reclaim).toMatchObject({
      slot: 'wt-1',
      reason: 'expired',
      token: lease.token,
      rescueRef: rescues[0]!.ref,
    });
    await expect(pool.release({ slot: lease.slot, agent: 'ag' })).rejects.toMatchObject({
      exitCode: 4,
    });
  });

  it('withLease releases in finally, saving what fn left behind', async () => {
    const { repo, pool } = await setup('scale:\n  min: 1\n  max: 1\n');
    await pool.initialize();
    await expect(
      pool.withLease('crashy', async (l) => {
        await fs.writeFile(path.join(l.path, 'half.txt'), 'half done\n');
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect((await pool.getStatus()).pool).toMatchObject({ ready: 1, leased: 0 });
    const [rescue] = await pool.rescueList();
    expect(await repo.git(['show', `${rescue!.ref}:half.txt`])).toBe('half done');
    expect(await pool.withLease({ task: 'ok', agent: 'me' }, (l) => l.slot)).toBe('wt-1');
  });

  it('withLease heartbeats while fn runs, like `pool run`: this process holds it, named by agent', async () => {
    const { pool } = await setup('scale:\n  min: 1\n  max: 1\n');
    await pool.initialize();
    const seen = await pool.withLease({ task: 'long work', ttlMs: 3000 }, async (l) => {
      const first = (await pool.readState()).slots[l.slot]!.lease!;
      // Wait (on the registry, not on a timer of ours) until a heartbeat renewed the lease.
      const lease = await until('a heartbeat renewed the lease', async () => {
        const now = (await pool.readState()).slots[l.slot]!.lease!;
        return now.heartbeatAt !== first.heartbeatAt && now;
      });
      expect(l.signal.aborted).toBe(false);
      return { first, lease };
    });
    expect(Date.parse(seen.lease.expiresAt)).toBeGreaterThan(Date.parse(seen.first.expiresAt));
    expect(seen.lease.holder?.pid).toBe(process.pid); // if this process dies, it is reclaimed at once
    // Default agent: $WTPOOL_AGENT, else <script>-<pid> (here the test runner's script).
    expect(seen.lease.agent).toMatch(new RegExp(`^[A-Za-z0-9][A-Za-z0-9._@+-]*-${process.pid}$`));
    expect((await pool.getStatus()).pool).toMatchObject({ ready: 1, leased: 0 });
  });

  it('scales out and in by step, retires idle slots above min, never past max', async () => {
    const { pool, clock } = await setup(
      'scale:\n  min: 1\n  max: 4\n  step: 2\n  idleShrinkAfter: 300ms\n',
      undefined,
      testClock(),
    );
    await pool.initialize();
    expect((await pool.scaleOut()).added).toEqual(['wt-2', 'wt-3']);
    expect((await pool.scaleOut()).added).toEqual(['wt-4']);
    await expect(pool.scaleOut()).rejects.toMatchObject({ exitCode: 75 });
    const held = await pool.lease({ agent: 'ag', task: 't' });
    expect((await pool.scaleIn()).removed).toEqual(['wt-4', 'wt-3']);
    clock.advance(299);
    expect((await pool.cleanup()).retired).toEqual([]);
    clock.advance(1);
    expect((await pool.cleanup()).retired).toEqual(['wt-2']); // idle for 300ms; leased wt-1 kept
    const st = await pool.getStatus();
    expect(st.slots.map((s) => s.id)).toEqual([held.slot]);
    const types = (await readEvents(pool.repo.stateDir)).map((e) => e.type);
    expect(types.filter((t) => t === 'shrink')).toHaveLength(3);
  });

  it('refresh moves ready slots to the new base; doctor finds and fixes drift', async () => {
    const { repo, pool } = await setup('scale:\n  min: 2\n  max: 3\n');
    const st = await pool.initialize();
    // Someone committed in a ready (detached) slot: refresh must not drop that commit.
    const stray = await repo.commit({ 'stray.txt': 'stray\n' }, 'stray commit', st.slots[0]!.path);
    const next = await repo.commit({ 'b.txt': 'b\n' }, 'advance main');
    expect((await pool.refresh()).refreshed).toEqual(['wt-1', 'wt-2']);
    for (const s of st.slots) expect(await repo.git(['rev-parse', 'HEAD'], s.path)).toBe(next);
    const [saved] = await pool.rescueList();
    expect(await repo.git(['rev-parse', `${saved!.ref}^`])).toBe(stray);

    await fs.rm(st.slots[1]!.path, { recursive: true, force: true });
    const orphan = path.join(path.dirname(st.slots[0]!.path), 'stray');
    await repo.git(['worktree', 'add', '--detach', orphan, 'main']);
    await fs.writeFile(path.join(orphan, 'stray-work.txt'), 'keep me\n');
    await fs.mkdir(path.join(repo.dir, '.git/wtpool/leases'), { recursive: true });
    await fs.writeFile(path.join(repo.dir, '.git/wtpool/leases/wt-7.json'), '{"token": 99}');
    const found = await doctor(pool, { fix: false });
    expect(found.ok).toBe(false);
    expect(found.problems.map((p) => p.kind).sort()).toEqual([
      'missing-worktree',
      'orphan-worktree',
      'prunable-worktree',
      'stale-lease-file',
    ]);
    const fixed = await doctor(pool, { fix: true });
    expect(fixed.ok).toBe(true);
    expect(existsSync(path.join(st.slots[1]!.path, '.git'))).toBe(true);
    expect(existsSync(orphan)).toBe(false);
    const rescue = (await pool.rescueList()).find((r) => r.ref.includes('orphan-stray'));
    expect(await repo.git(['show', `${rescue!.ref}:stray-work.txt`])).toBe('keep me');
    expect((await doctor(pool, { fix: false })).problems).toEqual([]);
  });
});
