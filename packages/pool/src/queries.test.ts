/**
 * Read-only queries (issue #11): `status`, `snapshot`, `scale status`, `rescue list` change
 * nothing, not even with an expired lease in the registry; the reclaim is left to mutating
 * commands and `doctor --fix`.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makeTempRepo, type TempRepo } from '@wtpool/testkit';
import { WorktreePool } from './pool.js';

const repos: TempRepo[] = [];
afterEach(async () => {
  await Promise.all(repos.splice(0).map((r) => r.cleanup()));
});

/** path → sha256 of content and mode, for every file under `root` (symlinks by target). */
async function hashTree(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (dir: string) => {
    for (const e of await fs.readdir(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isSymbolicLink()) out.set(p, `link:${await fs.readlink(p)}`);
      else {
        const st = await fs.stat(p);
        const h = createHash('sha256').update(await fs.readFile(p));
        out.set(p, `${(st.mode & 0o7777).toString(8)}:${h.digest('hex')}`);
      }
    }
  };
  await walk(root);
  return out;
}

describe('read-only queries', () => {
  it('status, snapshot and rescue list leave state files and worktrees byte-identical, an expired lease included', async () => {
    const repo = await makeTempRepo();
    repos.push(repo);
    await fs.writeFile(path.join(repo.dir, 'pool.config.yaml'), 'scale:\n  min: 2\n  max: 3\n');
    let now = Date.parse('2026-06-01T12:00:00Z');
    const pool = new WorktreePool({ repo: repo.dir }, { clock: () => now });
    await pool.initialize();
    const lease = await pool.lease({ agent: 'ag', task: 'expiring', ttlMs: 60_000 });
    await fs.writeFile(path.join(lease.path, 'wip.txt'), 'unsaved work\n');
    now += 60_001; // the lease is expired now
    const stateDir = pool.repo.stateDir;
    const worktrees = path.dirname(lease.path);
    const before = new Map([...(await hashTree(stateDir)), ...(await hashTree(worktrees))]);
    const gitBefore = await hashTree(path.join(repo.dir, '.git'));

    const st = await pool.getStatus();
    const snap = await pool.snapshot();
    expect(await pool.rescueList()).toEqual([]);
    await pool.keptBranches();

    // Shown as over, not acted on.
    expect(st.slots.find((s) => s.id === lease.slot)).toMatchObject({
      state: 'leased',
      lease: { agent: 'ag', over: 'expired' },
    });
    expect(snap.state.slots[lease.slot]!.state).toBe('leased');
    const after = new Map([...(await hashTree(stateDir)), ...(await hashTree(worktrees))]);
    expect(after).toEqual(before);
    expect(before.size).toBeGreaterThan(10); // the worktrees and the registry were really hashed
    expect([...before.keys()].some((p) => p.endsWith('wip.txt'))).toBe(true);
    expect(await hashTree(path.join(repo.dir, '.git'))).toEqual(gitBefore);

    // A mutating command reclaims it (its work saved to a rescue ref).
    expect((await pool.cleanup()).reclaimed).toEqual([lease.slot]);
    const [rescue] = await pool.rescueList();
    expect(await repo.git(['show', `${rescue!.ref}:wip.txt`])).toBe('unsaved work');
  });
});
