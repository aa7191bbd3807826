import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { GIT_ENV, freePort } from '@wtpool/testkit';
import { slotNames } from '@wtpool/config';
import { armHooks, createProviders, leaseSlot, releaseSlot, provisionSlot } from './index.js';
import { bandStore } from './band-store.js';
import { fixture, type Fixture } from './fixtures.testutil.js';

const execFileP = promisify(execFile);
const lease = { agent: 'a', task: 't', token: 1 };
let f: Fixture | undefined;
afterEach(async () => {
  await f?.cleanup();
  f = undefined;
});

/** A real linked worktree for slot n, as the pool makes it. */
async function addWorktree(fx: Fixture, n: number): Promise<string> {
  const wt = slotNames(fx.loaded.config, fx.loaded.repo, n).path;
  await fx.repo.git(['worktree', 'add', '-q', '--no-track', '-b', `pool/wt-${n}/x`, wt, 'main']);
  return wt;
}

const git = (cwd: string, args: string[]) =>
  execFileP('git', args, { cwd, env: { ...process.env, ...GIT_ENV } });

describe('hooks', () => {
  it('a fresh worktree of a husky repo has no hooks until armed; armed, a failing pre-commit hook blocks the commit', async () => {
    f = await fixture(
      {},
      {
        'hooks/pre-commit': 'echo "pre-commit ran" >&2\ngrep -qx pass gate.txt\n',
        '.gitignore': '',
        'gate.txt': 'pass\n',
      },
    );
    // What `husky hooks` does in the main checkout: hooks/_ with shims, git-ignored.
    const husky = path.join(f.repo.dir, 'hooks', '_');
    await fs.mkdir(husky, { recursive: true });
    await fs.writeFile(path.join(husky, '.gitignore'), '*\n');
    await fs.writeFile(
      path.join(husky, 'pre-commit'),
      '#!/usr/bin/env sh\nexec sh -e "$(dirname "$(dirname "$0")")/pre-commit" "$@"\n',
      { mode: 0o755 },
    );
    await f.repo.git(['config', 'core.hooksPath', 'hooks/_']);
    const wt = await addWorktree(f, 1);

    // Unarmed: the hook silently does not run (this is the bug arming fixes).
    await fs.writeFile(path.join(wt, 'gate.txt'), 'fail\n');
    await git(wt, ['commit', '-qam', 'unarmed']);

    const r = await armHooks(f.repo.dir, wt);
    expect(r).toMatchObject({ hooksPath: 'hooks/_', armed: true });
    expect((await git(wt, ['status', '--porcelain'])).stdout).toBe('');
    await fs.writeFile(path.join(wt, 'a.txt'), 'a\n');
    await git(wt, ['add', 'a.txt']);
    const blocked = await git(wt, ['commit', '-qm', 'blocked']).catch((e: { stderr: string }) => e);
    expect((blocked as { stderr: string }).stderr).toContain('pre-commit ran');
    expect((await git(wt, ['log', '-1', '--format=%s'])).stdout.trim()).toBe('unarmed');

    await fs.writeFile(path.join(wt, 'gate.txt'), 'pass\n');
    await git(wt, ['add', 'gate.txt']);
    const ok = await git(wt, ['commit', '-qm', 'passes']);
    expect(ok.stderr).toContain('pre-commit ran');
    expect(await armHooks(f.repo.dir, wt)).toMatchObject({ armed: false, reason: 'already armed' });
  });

  it('without core.hooksPath the shared hooks apply and nothing is copied', async () => {
    f = await fixture({});
    const wt = await addWorktree(f, 1);
    expect(await armHooks(f.repo.dir, wt)).toMatchObject({ hooksPath: null, armed: false });
  });
});

describe('env keys, ports, beads', () => {
  it('a lease returns the env keys of the enabled services; a failed one allocates nothing', async () => {
    f = await fixture(
      {
        redis: { url: inject('redisUrl').replace('redis://', 'redis://:pw@'), bandStart: 40 },
        ports: { base: 46000, stride: 10 },
      },
      { '.beads/config.yaml': 'issue-prefix: "proj"\n' },
    );
    await addWorktree(f, 3);
    const providers = await createProviders(f.loaded);
    expect(providers.map((p) => p.name)).toEqual(['hooks', 'deps', 'redis', 'ports', 'beads']);
    await provisionSlot(providers, f.ctx(3));
    const err = await leaseSlot(providers, f.ctx(3), lease).catch((e: unknown) => e);
    // The shared test Redis has no password: AUTH is refused → exit 6, nothing allocated.
    expect(err).toMatchObject({ exitCode: 6 });
    expect((err as Error).message).not.toContain(':pw@');
    expect((await bandStore(f.loaded.repo).read()).alloc).toEqual({});

    await fs.writeFile(
      path.join(f.repo.dir, 'pool.config.yaml'),
      JSON.stringify({
        redis: { url: inject('redisUrl'), bandStart: 40 },
        ports: { base: 46000, stride: 10 },
      }),
    );
    const g = await import('@wtpool/config').then((m) => m.loadConfig({ repo: f!.repo.dir }));
    const fixed = await createProviders(g);
    const ctx = { ...f.ctx(3), config: g.config, names: slotNames(g.config, g.repo, 3) };
    const env = await leaseSlot(fixed, ctx, lease);
    expect(env).toEqual({
      REDIS_DB: '40',
      REDIS_URL: `${inject('redisUrl')}/40`,
      PORT: '46030',
      PORT_RANGE_START: '46030',
      PORT_RANGE_END: '46039',
      BEADS_PREFIX: 'proj-wt-3',
      BD_ISSUE_PREFIX: 'proj-wt-3',
    });
    await releaseSlot(fixed, ctx);
    expect((await bandStore(g.repo).read()).alloc).toEqual({});
  });

  it('warns when a port of the block is already bound by another process', async () => {
    // A port the kernel says is free becomes the 5th port of wt-2's block; something binds it.
    let taken = await freePort();
    while (taken > 65000) taken = await freePort(); // the block must end below 65536
    const base = taken - 2 * 10 - 4;
    f = await fixture({ ports: { base, stride: 10 } });
    const squatter = net.createServer();
    await new Promise<void>((resolve, reject) => {
      squatter.once('error', reject);
      squatter.listen(taken, '127.0.0.1', resolve);
    });
    try {
      const providers = await createProviders(f.loaded);
      await leaseSlot(providers, f.ctx(2), lease);
      expect(f.warnings).toEqual([
        expect.stringMatching(
          new RegExp(`wt-2: port ${taken} of its block ${base + 20}-${base + 29}`),
        ),
      ]);
      await leaseSlot(providers, f.ctx(3), lease);
      expect(f.warnings).toHaveLength(1);
    } finally {
      squatter.close();
    }
  });
});
