/**
 * Values that pass the type check but would break or endanger the pool (issue 10, item 8): each
 * exits 3 naming the key, with passwords redacted, and a refused config creates nothing.
 */
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeTempRepo } from '@wtpool/testkit';
import { loadConfig, validateConfig } from './index.js';
import { branchNameProblem } from './checks.js';

const err = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    return e as Error & { exitCode: number };
  }
  throw new Error('expected an error');
};

describe('value checks', () => {
  const bad: [string, unknown, RegExp][] = [
    [
      'pool.leaseTtl',
      { pool: { leaseTtl: 0 } },
      /pool\.leaseTtl must be a duration .* from 10s to 7d, got number 0/,
    ],
    ['pool.leaseTtl', { pool: { leaseTtl: '1s' } }, /pool\.leaseTtl must be/],
    [
      'monitor.interval',
      { monitor: { interval: 0 } },
      /monitor\.interval must be .* from 1s to 24d/,
    ],
    [
      'redis.url',
      { redis: { url: 'http://127.0.0.1:6379' } },
      /redis\.url must be a redis:\/\/ or rediss:\/\/ URL, got "http:\/\/127.0.0.1:6379" \(scheme http\)/,
    ],
    ['redis.url', { redis: { url: 'not a url' } }, /redis\.url must be .*\(not a URL\)/],
    [
      'postgres.url',
      { postgres: { url: 'postgres://u:pw@[::1/x' } },
      /postgres\.url must be a postgres:\/\/ or postgresql:\/\/ URL, got "postgres:\/\/u:\*\*\*@\[::1\/x" \(not a URL\)/,
    ],
    [
      'postgres.url',
      { postgres: { url: 'mysql://u:pw@h/db' } },
      /postgres\.url must be .*\(scheme mysql\)/,
    ],
    [
      'redis.bandStart',
      { redis: { bandStart: 100000 } },
      /redis\.bandStart must be an integer from 1 to 10000, got number 100000/,
    ],
    ['pool.base', { pool: { base: 'a..b' } }, /pool\.base must be a valid branch name, got "a..b"/],
    ['pool.keep', { pool: { keep: ['..'] } }, /pool\.keep must be paths inside the worktree/],
    ['pool.keep', { pool: { keep: ['node_modules', '../x'] } }, /pool\.keep must be paths inside/],
    ['pool.keep', { pool: { keep: ['/etc'] } }, /pool\.keep must be paths inside/],
    [
      'gates.build',
      { gates: { build: 'true' } },
      /gates\.build must be a command that builds, not the no-op "true"/,
    ],
  ];
  for (const [key, raw, message] of bad) {
    it(`refuses ${JSON.stringify(raw)} (exit 3, naming ${key})`, () => {
      const e = err(() => validateConfig(raw, 'pool.config.yaml'));
      expect(e.exitCode).toBe(3);
      expect(e.message).toMatch(message);
      expect(e.message).not.toContain(':pw@');
    });
  }

  it('accepts what is valid', () => {
    const c = validateConfig(
      {
        pool: { base: 'release/2.x', keep: ['node_modules', '.cache/'], leaseTtl: '10s' },
        postgres: { url: 'postgresql://u:pw@[::1]:5432/postgres' },
        redis: { url: 'rediss://127.0.0.1:6380/0', bandStart: 10000 },
        monitor: { interval: '1s' },
        gates: { format: 'true', test: 'true' },
      },
      'f',
    );
    expect(c.pool.leaseTtl).toBe(10_000);
    expect(c.gates.test).toBe('true');
  });

  it('follows git check-ref-format for branch names', () => {
    for (const ok of ['main', 'release/2.x', 'a-b_c', 'feat/x.y'])
      expect(branchNameProblem(ok)).toBeUndefined();
    for (const no of [
      'a..b',
      'a/.b',
      'a.lock',
      'a/',
      'a//b',
      'a.',
      'a@{1}',
      '@',
      'HEAD',
      '-x',
      'a b',
      'a~1',
      'a^',
      'a:b',
      'a?',
      'a*',
      'a[',
      'a\\b',
    ])
      expect(branchNameProblem(no), no).toBeDefined();
  });
});

describe('pool.root', () => {
  const roots = ['/', '.git', '.git/wtpool', '.', 'sub/dir', '/proc', '/proc/self/wt', '/sys/x'];
  it.each(roots)('%s exits 3 naming pool.root and creates no state dir', async (root) => {
    const repo = await makeTempRepo();
    try {
      writeFileSync(
        path.join(repo.dir, 'pool.config.yaml'),
        `pool:\n  root: ${JSON.stringify(root)}\n`,
      );
      const e = err(() => loadConfig({ repo: repo.dir, env: {} }));
      expect(e.exitCode).toBe(3);
      expect(e.message).toMatch(/pool\.root must be /);
      expect(existsSync(path.join(repo.dir, '.git', 'wtpool'))).toBe(false);
      // The same check applies to the environment override.
      const e2 = err(() => loadConfig({ repo: repo.dir, env: { WORKTREE_BASE_PATH: root } }));
      expect(e2.exitCode).toBe(3);
    } finally {
      await repo.cleanup();
    }
  });

  it('accepts a directory beside the checkout', async () => {
    const repo = await makeTempRepo();
    try {
      writeFileSync(path.join(repo.dir, 'pool.config.yaml'), 'pool:\n  root: ../slots\n');
      expect(loadConfig({ repo: repo.dir, env: {} }).config.pool.root).toBe('../slots');
    } finally {
      await repo.cleanup();
    }
  });
});
