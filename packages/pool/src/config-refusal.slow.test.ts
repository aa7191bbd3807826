/**
 * Bad configuration values (issue 10, item 8) through the real `pool` CLI: exit 3 with a
 * one-line message naming the key (passwords redacted), and nothing created: no state dir, no
 * worktrees. Build first (`pnpm -s build`).
 */
import { chmodSync, existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { makeTempRepo, runCli } from '@wtpool/testkit';

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../bin/pool.js');

describe('a refused config creates nothing (pool CLI)', () => {
  // `..` and `../..` contain the checkout: slots would land beside the repository (issue 21).
  const roots = [
    '/',
    '.git',
    '.git/wtpool',
    '.',
    'sub/dir',
    '/proc',
    '/proc/self/wt',
    '..',
    '../..',
  ];
  it.each(roots)('pool.root %s exits 3 naming pool.root, via `pool init` too', async (root) => {
    const repo = await makeTempRepo();
    try {
      writeFileSync(
        path.join(repo.dir, 'pool.config.yaml'),
        `pool:\n  root: ${JSON.stringify(root)}\n`,
      );
      const r = await runCli(BIN, ['init', '--size', '1', '--repo', repo.dir], { cwd: repo.dir });
      expect(r.code, r.stderr).toBe(3);
      expect(r.stderr).toMatch(/pool\.root must be/);
      expect(existsSync(path.join(repo.dir, '.git', 'wtpool'))).toBe(false);
      expect(existsSync(path.join(repo.dir, '..', `${path.basename(repo.dir)}.worktrees`))).toBe(
        false,
      );
      expect(existsSync('/wt-1')).toBe(false);
      expect(readdirSync(repo.dir).sort()).toEqual(
        ['.git', 'README.md', 'pool.config.yaml'].sort(),
      );
    } finally {
      await repo.cleanup();
    }
  });

  const values = [
    'pool:\n  leaseTtl: 0\n',
    'monitor:\n  interval: 0\n',
    'redis:\n  url: http://127.0.0.1:6379\n',
    'redis:\n  url: not a url\n',
    'postgres:\n  url: "postgres://u:pw@[::1/x"\n',
    'redis:\n  bandStart: 100000\n',
    'pool:\n  base: a..b\n',
    "pool:\n  keep: ['..']\n",
    "pool:\n  keep: ['*']\n",
    'scale:\n  min: 0o7\n',
    'deps:\n  strategy: command\n',
    // An alias bomb: each level doubles; yaml refuses past its alias budget.
    'a: &a ["x","x","x","x","x","x","x","x","x"]\n' +
      Array.from({ length: 9 }, (_, i) => {
        const prev = i === 0 ? 'a' : String.fromCharCode(97 + i);
        const cur = String.fromCharCode(98 + i);
        return `${cur}: &${cur} [*${prev},*${prev},*${prev},*${prev},*${prev},*${prev},*${prev},*${prev},*${prev}]\n`;
      }).join(''),
  ];
  it.each(values)('%j exits 3 from `pool init` and creates nothing', async (yaml) => {
    const repo = await makeTempRepo();
    try {
      const cfg = path.join(repo.sandbox, 'secret.yaml');
      writeFileSync(cfg, yaml);
      chmodSync(cfg, 0o600);
      const r = await runCli(BIN, ['init', '--size', '1', '--config', cfg, '--repo', repo.dir], {
        cwd: repo.dir,
      });
      expect(r.code, r.stderr).toBe(3);
      expect(r.stderr.trim().split('\n')[0]).toMatch(/^(error: )?.*(must be|invalid YAML)/);
      expect(r.stderr).not.toContain(':pw@');
      expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
      expect(existsSync(path.join(repo.dir, '.git', 'wtpool'))).toBe(false);
      expect(existsSync(path.join(repo.dir, '..', `${path.basename(repo.dir)}.worktrees`))).toBe(
        false,
      );
      expect(statSync(cfg).mode & 0o777).toBe(0o600);
    } finally {
      await repo.cleanup();
    }
  });
});

describe('a Redis URL that is not redis:// (issue 12)', () => {
  it.each(['init', 'status', 'acquire'])(
    '`pool %s` with redis.url http://… exits 3 naming redis.url, not an internal error',
    async (command) => {
      const repo = await makeTempRepo();
      try {
        writeFileSync(
          path.join(repo.dir, 'pool.config.yaml'),
          'redis:\n  url: http://127.0.0.1:6379\n',
        );
        const args =
          command === 'acquire' ? [command, 'agent-1', 'task-1', '--no-wait'] : [command];
        const r = await runCli(BIN, [...args, '--repo', repo.dir], { cwd: repo.dir });
        expect(r.code, r.stderr).toBe(3);
        const first = r.stderr.trim().split('\n')[0]!;
        expect(first).toMatch(/redis\.url must be/);
        expect(first).toContain('http://127.0.0.1:6379');
        expect(r.stderr).not.toMatch(/internal error|physical max/);
        expect(existsSync(path.join(repo.dir, '.git', 'wtpool'))).toBe(false);
      } finally {
        await repo.cleanup();
      }
    },
  );
});

describe('the store and the flags (issue 21, items 9 and 12)', () => {
  it('--ttl 0 exits 2, a malformed store.url 3, an unreachable one 6; none creates anything', async () => {
    const repo = await makeTempRepo();
    try {
      const cfg = path.join(repo.dir, 'pool.config.yaml');
      const acquire = () =>
        runCli(BIN, ['acquire', 'a', 't', '--no-wait', '--repo', repo.dir], { cwd: repo.dir });
      const ttl = await runCli(BIN, ['acquire', 'a', 't', '--ttl', '0', '--repo', repo.dir], {
        cwd: repo.dir,
      });
      expect(ttl.code, ttl.stderr).toBe(2);
      expect(ttl.stderr).toMatch(/--ttl must be a duration .*from 10s to 7d/);
      writeFileSync(cfg, 'store:\n  backend: redis\n  url: "redis://"\n');
      const malformed = await acquire();
      expect(malformed.code, malformed.stderr).toBe(3);
      expect(malformed.stderr).toMatch(/store\.url must be/);
      // Port 1 on loopback: nothing listens there (a privileged port no test starts).
      writeFileSync(cfg, 'store:\n  backend: redis\n  url: redis://127.0.0.1:1/0\n');
      const unreachable = await acquire();
      expect(unreachable.code, unreachable.stderr).toBe(6);
      expect(existsSync(path.join(repo.dir, '..', `${path.basename(repo.dir)}.worktrees`))).toBe(
        false,
      );
    } finally {
      await repo.cleanup();
    }
  });
});

describe('pool.base (a repository whose branch is not main)', () => {
  it('init exits 3 naming pool.base and the branch to set, and creates no slot', async () => {
    const repo = await makeTempRepo();
    try {
      await repo.git(['branch', '-m', 'main', 'v1.x']);
      const init = () =>
        runCli(BIN, ['init', '--size', '1', '--repo', repo.dir], { cwd: repo.dir });
      const r = await init();
      expect(r.code, r.stderr).toBe(3);
      expect(r.stderr).toContain('pool.base is main, but this repository has no branch main');
      expect(r.stderr).toContain('set pool.base to v1.x in pool.config.yaml');
      const worktrees = path.join(repo.dir, '..', `${path.basename(repo.dir)}.worktrees`);
      expect(existsSync(worktrees)).toBe(false);
      writeFileSync(path.join(repo.dir, 'pool.config.yaml'), 'pool:\n  base: v1.x\n');
      const ok = await init();
      expect(ok.code, ok.stderr).toBe(0);
      expect(readdirSync(worktrees)).toEqual(['wt-1']);
    } finally {
      await repo.cleanup();
    }
  });
});
