/**
 * Bad configs (issue 21, item 12) and bad durations (item 9): each exits 3 naming the key. The
 * YAML cases go through the real file parser and loader in a temp repository; the rest through
 * validateConfig. The CLI-level cases (exit codes of the real binary) are in
 * pool/src/config-refusal.slow.test.ts, the flag cases in pool/src/cli-flags.test.ts.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir } from '@wtpool/testkit';
import {
  SCHEMA,
  isLeaf,
  keyOption,
  loadConfig,
  validateConfig,
  type Leaf,
  type Schema,
} from './index.js';

const failure = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    return e as Error & { exitCode: number };
  }
  throw new Error('expected a refusal');
};

describe('values refused with exit 3 naming the key', () => {
  // [key named, raw config]; the message must read `<source>: <key> must be …`.
  const cases: [string, Record<string, unknown>][] = [
    ['pool.keep', { pool: { keep: ['*'] } }],
    ['pool.keep', { pool: { keep: ['node_modules', 'cache/*'] } }],
    ['pool.keep', { pool: { keep: ['!x'] } }],
    ['pool.disposable', { pool: { disposable: ['*'] } }],
    ['pool.disposable', { pool: { disposable: ['dist', 'out?'] } }],
    ['pool.leaseTtl', { pool: { leaseTtl: '99999999999999999999d' } }],
    ['pool.leaseTtl', { pool: { leaseTtl: 0 } }],
    ['pool.leaseTtl', { pool: { leaseTtl: '0s' } }],
    ['pool.leaseTtl', { pool: { leaseTtl: '0ms' } }],
    ['pool.leaseTtl', { pool: { leaseTtl: '00' } }],
    ['pool.leaseTtl', { pool: { leaseTtl: '-1s' } }],
    ['pool.leaseTtl', { pool: { leaseTtl: '1ms' } }],
    ['pool.leaseTtl', { pool: { leaseTtl: '1e99' } }],
    ['pool.leaseTtl', { pool: { leaseTtl: 1e99 } }],
    ['pool.leaseTtl', { pool: { leaseTtl: '8d' } }],
    ['pool.waitTimeout', { pool: { waitTimeout: '-1s' } }],
    ['pool.waitTimeout', { pool: { waitTimeout: '25d' } }],
    ['scale.idleShrinkAfter', { scale: { idleShrinkAfter: '0s' } }],
    ['store.hostTtl', { store: { hostTtl: '1s' } }],
    ['redis.bandStart', { redis: { bandStart: 0 } }],
    ['monitor.thresholds.FD_WARN_PCT', { monitor: { thresholds: { FD_WARN_PCT: 1000 } } }],
    ['monitor.thresholds.FD_WARN_PCT', { monitor: { thresholds: { FD_WARN_PCT: 100.5 } } }],
    ['gates.paths."["', { gates: { paths: { '[': { build: 'tsc -b' } } } }],
    ['gates.paths."src/[ab"', { gates: { paths: { 'src/[ab': { test: 'vitest' } } } }],
    ['gates.paths."src\\\\"', { gates: { paths: { 'src\\': { test: 'vitest' } } } }],
    ['deps.command', { deps: { strategy: 'command' } }],
    ['deps.command', { deps: { strategy: 'command', command: '' } }],
    ['deps.command', { deps: { strategy: 'command', command: '   ' } }],
    ['scale', { scale: null }],
    ['monitor.thresholds', { monitor: { thresholds: null } }],
    ['store.url', { store: { backend: 'redis', url: 'redis://' } }],
    ['store.url', { store: { backend: 'redis', url: 'redis:10.0.0.5' } }],
    ['store.url', { store: { backend: 'redis', url: 'redis://10.0.0.5:6379/zero' } }],
    ['store.url', { store: { backend: 'redis', url: 'redis://10.0.0.5:99999' } }],
    ['store.url', { store: { backend: 'redis', url: 'http://10.0.0.5:6379' } }],
    ['store.url', { store: { backend: 'redis' } }],
    ['redis.url', { redis: { url: 'redis://:pw@' } }],
    ['monitor.thresholds.DISK_WARN', { monitor: { thresholds: { DISK_WARN: 10, DISK_ERROR: 5 } } }],
  ];
  it.each(cases)('%s: %j', (key, raw) => {
    const e = failure(() => validateConfig(raw, 'pool.config.yaml'));
    expect(e.exitCode).toBe(3);
    const escaped = key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    expect(e.message).toMatch(new RegExp(`^pool\\.config\\.yaml: ${escaped} must be `));
    expect(e.message).not.toContain(':pw@');
  });

  // The same values one step inside their bounds are accepted (the bounds are not off by one).
  it.each([
    [
      { pool: { leaseTtl: '10s' } },
      (c: ReturnType<typeof validateConfig>) => c.pool.leaseTtl,
      10_000,
    ],
    [
      { pool: { leaseTtl: '7d' } },
      (c: ReturnType<typeof validateConfig>) => c.pool.leaseTtl,
      7 * 86_400_000,
    ],
    [{ pool: { waitTimeout: 0 } }, (c: ReturnType<typeof validateConfig>) => c.pool.waitTimeout, 0],
    [{ redis: { bandStart: 1 } }, (c: ReturnType<typeof validateConfig>) => c.redis.bandStart, 1],
    [
      { monitor: { thresholds: { FD_WARN_PCT: 100 } } },
      (c: ReturnType<typeof validateConfig>) => c.monitor.thresholds.FD_WARN_PCT,
      100,
    ],
    [
      { deps: { strategy: 'command', command: 'make deps' } },
      (c: ReturnType<typeof validateConfig>) => c.deps.command,
      'make deps',
    ],
  ])('accepts %j', (raw, get, want) => {
    expect(get(validateConfig(raw, 'f'))).toBe(want);
  });

  it('reads environment overrides with the same coercers, naming the variable and the key', () => {
    const e = failure(() => validateConfig({}, 'f', { WORKTREE_POOL_SIZE: '0o7' }));
    expect(e.exitCode).toBe(3);
    expect(e.message).toMatch(/^environment WORKTREE_POOL_SIZE: scale\.min must be an integer/);
    expect(failure(() => validateConfig({}, 'f', { FD_WARN_PCT: '1000' })).message).toMatch(
      /FD_WARN_PCT: monitor\.thresholds\.FD_WARN_PCT must be a number from 0 to 100/,
    );
    expect(validateConfig({}, 'f', { WORKTREE_POOL_SIZE: '4' }).scale.min).toBe(4);
  });
});

describe('config files refused with exit 3 naming the key (real parser and loader)', () => {
  const sandbox = tempDir('wtpool-refusals-');
  const repoDir = path.join(sandbox, 'home', 'me', 'repo');
  mkdirSync(path.join(repoDir, '.git'), { recursive: true });
  afterAll(() => rmSync(sandbox, { recursive: true, force: true }));

  const load = (yaml: string) => {
    writeFileSync(path.join(repoDir, 'pool.config.yaml'), yaml);
    return loadConfig({ repo: repoDir, env: {} });
  };

  it.each([
    ['scale.min', 'scale:\n  min: 0o7\n'],
    ['scale.max', 'scale:\n  max: 0x10\n'],
    ['scale', 'scale:\n'],
    ['pool.leaseTtl', 'pool:\n  leaseTtl: 99999999999999999999d\n'],
    ['pool.leaseTtl', 'pool:\n  leaseTtl: 0\n'],
    ['pool.keep', "pool:\n  keep: ['*']\n"],
    ['gates.paths', "gates:\n  paths:\n    '[': { build: tsc -b }\n"],
    ['pool.root', "pool:\n  root: '..'\n"],
    ['pool.root', "pool:\n  root: '../..'\n"],
    ['pool.root', "pool:\n  root: '../../elsewhere'\n"],
    ['pool.root', `pool:\n  root: ${JSON.stringify(path.join(sandbox, 'home'))}\n`],
  ])('%s: %j', (key, yaml) => {
    const e = failure(() => load(yaml));
    expect(e.exitCode).toBe(3);
    expect(e.message).toContain(`${key}`);
    expect(e.message).toMatch(/must be/);
  });

  it.each([
    ['../pool', path.join(sandbox, 'home', 'me', 'pool')],
    [path.join(sandbox, 'fast-disk'), path.join(sandbox, 'fast-disk')],
  ])('accepts pool.root %s (beside the checkout, or absolute elsewhere)', (root, want) => {
    const { config } = load(`pool:\n  root: ${JSON.stringify(root)}\n`);
    expect(path.resolve(repoDir, config.pool.root!)).toBe(want);
  });

  it('checks pool.root from the environment too, with no config file', () => {
    rmSync(path.join(repoDir, 'pool.config.yaml'), { force: true });
    const e = failure(() => loadConfig({ repo: repoDir, env: { WORKTREE_BASE_PATH: '..' } }));
    expect(e.exitCode).toBe(3);
    expect(e.message).toMatch(/pool\.root must be a directory that does not contain the checkout/);
  });
});

describe('the schema is the one source', () => {
  const leaves: [string, Leaf][] = [];
  const walk = (s: Schema, prefix: string) => {
    for (const [k, v] of Object.entries(s)) {
      if (isLeaf(v)) leaves.push([`${prefix}${k}`, v]);
      else walk(v, `${prefix}${k}.`);
    }
  };
  walk(SCHEMA, '');

  it.each(leaves)('%s: its default validates, and null only where it is nullable', (key, leaf) => {
    expect(leaf.default === null).toBe(leaf.nullable === true);
    expect(leaf.description.length).toBeGreaterThan(10);
  });

  it('a flag of a key takes its type, bounds and default from the schema', () => {
    const ttl = keyOption('pool.leaseTtl', { name: 'ttl', description: 'lease lifetime' });
    expect(ttl).toMatchObject({ name: 'ttl', type: 'duration', min: '10s', max: '7d' });
    expect(ttl.description).toBe('lease lifetime (default: pool.leaseTtl, 2h; from 10s to 7d)');
    expect(failure(() => keyOption('pool.nope', { name: 'x', description: 'x' })).exitCode).toBe(3);
  });
});
