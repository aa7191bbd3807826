/**
 * The fleet band after Redis lost it (docs/fleet.md): each host registers its own allocations
 * from its local mirror, over the placeholders the first host brought back, and an index a
 * registered host holds is never taken from it — the late host is told instead. Real redis-server
 * (the suite's), one fleet key per test; hosts are RedisBandStore instances with their own state
 * directories, as separate machines have.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { defaultConfig, type RepoPaths } from '@wtpool/config';
import { RedisBandStore } from './fleet-band.js';
import { redisCommand } from './resp.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A host of one fleet (`repoId`), with its band mirror as given. */
function host(repoId: string, id: string, mirror: object): RedisBandStore {
  const root = mkdtempSync(path.join(os.tmpdir(), `wtpool-band-${id}-`));
  dirs.push(root);
  const stateDir = path.join(root, '.git', 'wtpool');
  mkdirSync(stateDir, { recursive: true });
  writeFileSync(path.join(stateDir, 'fleet-repo-id'), `${repoId}\n`);
  // The JsonStore's file: a versioned document.
  writeFileSync(
    path.join(stateDir, 'fleet-band.json'),
    JSON.stringify({ version: 1, updatedAt: new Date().toISOString(), data: mirror }),
  );
  const repo: RepoPaths = {
    worktree: root,
    commonDir: path.join(root, '.git'),
    mainRoot: root,
    stateDir,
  };
  const config = defaultConfig();
  config.store = { ...config.store, backend: 'redis', url: inject('redisUrl'), hostTtl: 60_000 };
  config.fleet = { host: id };
  return new RedisBandStore(inject('redisUrl'), config, repo);
}

describe('the fleet band restored after Redis lost it', () => {
  it('hosts take their own indexes back over placeholders; a held index goes to nobody else', async () => {
    const repoId = randomBytes(6).toString('hex');
    // Host a's copy is stale about b: it still has b/wt-1 on 1, not b/wt-2 on 3.
    const a = host(repoId, 'a', {
      current: 8,
      physical: 16,
      alloc: { '1': 'b/wt-1', '2': 'a/wt-1' },
      hosts: { a: true, b: true },
    });
    const b = host(repoId, 'b', {
      current: 8,
      physical: 16,
      alloc: { '1': 'b/wt-1', '3': 'b/wt-2', '2': 'a/wt-1' },
      hosts: { a: true, b: true },
    });
    // c registered first of all with a stale copy in which 4 was c's; a took 4 since.
    const c = host(repoId, 'c', { current: 8, physical: 16, alloc: { '4': 'c/wt-1' } });

    expect(await a.register()).toEqual([]);
    let d = await a.read();
    expect(d.alloc).toEqual({ '1': 'b/wt-1', '2': 'a/wt-1' });
    // Until b has registered (or hostTtl passed), b's indexes are placeholders: a allocates
    // nothing meanwhile (update waits), so nobody can take 3.
    expect(await b.register()).toEqual([]);
    d = await a.read();
    expect(d.alloc).toEqual({ '1': 'b/wt-1', '2': 'a/wt-1', '3': 'b/wt-2' });
    // a, registered, takes 4; c comes late claiming 4 from its copy: c is told, a keeps it.
    await a.update((x) => {
      x.alloc['4'] = 'a/wt-2';
    });
    expect(await c.register()).toEqual([{ index: 4, owner: 'c/wt-1' }]);
    d = await a.read();
    expect(d.alloc['4']).toBe('a/wt-2');
    const doc = JSON.parse(
      (await redisCommand(inject('redisUrl'), 'HGET', c.key, 'doc')) as string,
    ) as { hosts: Record<string, boolean> };
    expect(Object.keys(doc.hosts).sort()).toEqual(['a', 'b', 'c']);
    await redisCommand(inject('redisUrl'), 'DEL', c.key);
  });
});
