/**
 * Refs under concurrency (issue #11, D66): 8 worker processes acquire and release in a loop
 * while other processes commit in their own worktrees and run `git pack-refs --all` and
 * `git gc --auto` over and over. No lease branch may be lost (a kept branch missing or moved),
 * resurrected (an empty branch back after its release deleted it, e.g. from a packed copy) or
 * shared (two live leases on one slot or branch); `git fsck` stays clean.
 */
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { GIT_ENV, makeTempRepo, type TempRepo } from '@wtpool/testkit';
import { WorktreePool } from './pool.js';

const WORKER = path.join(
  path.dirname(fileURLToPath(import.meta.url)),
  '../test/fixtures/refs-race-worker.mjs',
);

const repos: TempRepo[] = [];
afterEach(async () => {
  await Promise.all(repos.splice(0).map((r) => r.cleanup()));
});

function worker(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WORKER, ...args], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, ...GIT_ENV },
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

interface Line {
  op: 'got' | 'free' | 'churned' | 'error';
  pid: number;
  slot?: string;
  branch?: string;
  token?: number;
  head?: string;
  at?: string;
  commit?: string | null;
  commits?: number;
  error?: string;
}

describe('lease branches under pack-refs and gc --auto (8 workers, 2 churners)', () => {
  it('no branch lost, resurrected or shared; git fsck clean', { timeout: 900_000 }, async () => {
    const repo = await makeTempRepo();
    repos.push(repo);
    writeFileSync(
      path.join(repo.dir, 'pool.config.yaml'),
      'scale:\n  min: 4\n  max: 6\ndeps:\n  strategy: none\n',
    );
    await repo.git(['add', 'pool.config.yaml']);
    await repo.git(['commit', '-q', '-m', 'pool config']);
    const pool = new WorktreePool({ repo: repo.dir });
    await pool.initialize({ size: 4 });
    const base = await repo.git(['rev-parse', 'main']);
    // The churners commit on their own branches, in their own worktrees.
    const churnDirs = [1, 2].map((i) => path.join(repo.sandbox, `churn-${i}`));
    for (const [i, d] of churnDirs.entries())
      await repo.git(['worktree', 'add', '-q', '-b', `churn/${i}`, d, 'main']);
    const log = path.join(repo.sandbox, 'log.jsonl');
    const stop = path.join(repo.sandbox, 'stop');
    writeFileSync(log, '');
    const churners = churnDirs.map((d) => worker(['churn', d, stop, log]));
    const cycles = 12;
    const leasers = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        worker(['lease', repo.dir, String(cycles), log, `w${i}`]),
      ),
    );
    writeFileSync(stop, '');
    const churned = await Promise.all(churners);
    for (const w of [...leasers, ...churned]) expect(w.stderr).toBe('');
    expect([...leasers, ...churned].map((w) => w.code)).toEqual(Array(10).fill(0));

    const lines = readFileSync(log, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Line);
    expect(lines.filter((l) => l.op === 'error')).toEqual([]);
    // The churners really churned while the leases ran.
    const commits = lines.filter((l) => l.op === 'churned').map((l) => l.commits ?? 0);
    expect(commits).toHaveLength(2);
    expect(Math.min(...commits)).toBeGreaterThan(0);

    // Shared: never two live leases on one slot or one branch; every lease started on its
    // own new branch at the base, as git itself reports it.
    const liveSlot = new Map<string, number>();
    const liveBranch = new Set<string>();
    const seenBranches = new Set<string>();
    for (const l of lines) {
      if (l.op === 'got') {
        expect(liveSlot.get(l.slot!), `${l.slot} leased twice`).toBeUndefined();
        expect(seenBranches.has(l.branch!), `${l.branch} reused`).toBe(false);
        expect(l.head).toBe(`refs/heads/${l.branch}`);
        expect(l.at).toBe(base);
        liveSlot.set(l.slot!, l.pid);
        liveBranch.add(l.branch!);
        seenBranches.add(l.branch!);
      } else if (l.op === 'free') {
        expect(liveSlot.get(l.slot!)).toBe(l.pid);
        liveSlot.delete(l.slot!);
        liveBranch.delete(l.branch!);
      }
    }
    const frees = lines.filter((l) => l.op === 'free');
    expect(frees).toHaveLength(8 * cycles);

    // Lost / resurrected: what git has now, against what each release must have left.
    const refs = new Map(
      (await repo.git(['for-each-ref', '--format=%(refname) %(objectname)', 'refs/heads/pool/']))
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split(' ') as [string, string]),
    );
    for (const f of frees) {
      const ref = `refs/heads/${f.branch}`;
      if (f.commit) expect(refs.get(ref), `${ref} lost`).toBe(f.commit);
      else expect(refs.has(ref), `${ref} resurrected`).toBe(false);
    }
    expect(refs.size).toBe(frees.filter((f) => f.commit).length);
    // Every slot is back, detached at the base, clean.
    const st = await pool.getStatus();
    expect(st.slots.map((s) => s.state).every((s) => s === 'ready')).toBe(true);
    for (const s of st.slots) {
      await expect(repo.git(['symbolic-ref', '-q', 'HEAD'], s.path)).rejects.toThrow();
      expect(await repo.git(['rev-parse', 'HEAD'], s.path)).toBe(base);
      expect(await repo.git(['status', '--porcelain'], s.path)).toBe('');
    }
    expect(await repo.git(['fsck', '--no-progress', '--no-dangling'])).toBe('');
  });
});
