import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeTempRepo } from '@wtpool/testkit';
import {
  targetDir,
  loadConfig,
  validateConfig,
  slotNames,
  checkName,
  checkTask,
  checkDatabaseName,
  resolveRepo,
  defaultConfig,
} from './index.js';

const err = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    return e as Error & { exitCode: number };
  }
  throw new Error('expected an error');
};

describe('config validation', () => {
  it('fills defaults', () => {
    const c = validateConfig({}, 'x.yaml');
    expect(c.scale).toMatchObject({ min: 3, max: 10 });
    expect(c.pool.leaseTtl).toBe(7_200_000);
    expect(c.redis).toMatchObject({ url: null, floor: 20, step: 10, bandStart: 1 });
  });

  it('refuses an unknown key naming file and key (exit 3)', () => {
    const e = err(() => validateConfig({ scale: { mni: 3 } }, '/r/pool.config.yaml'));
    expect(e.exitCode).toBe(3);
    expect(e.message).toBe('/r/pool.config.yaml: unknown key scale.mni');
  });

  it('refuses a wrong type naming the expected type', () => {
    const e = err(() => validateConfig({ scale: { max: 'ten' } }, 'pool.config.yaml'));
    expect(e.message).toBe(
      'pool.config.yaml: scale.max must be an integer from 1 to 1000, got string "ten"',
    );
    expect(err(() => validateConfig({ pool: { leaseTtl: 'forever' } }, 'f')).message).toMatch(
      /pool.leaseTtl must be a duration/,
    );
    expect(err(() => validateConfig({ postgres: { dbPrefix: 'App; DROP' } }, 'f')).message).toMatch(
      /dbPrefix must be lowercase/,
    );
  });

  it('checks the slot-setup keys: port names (count ≤ stride, unique, safe), setup commands', () => {
    const c = validateConfig({ ports: { base: 5000, stride: 3, names: ['web', 'api_2'] } }, 'f');
    expect(c.ports.names).toEqual(['web', 'api_2']);
    expect(c.pool).toMatchObject({
      include: [],
      includeMode: 'copy',
      setup: [],
      setupInputs: null,
    });
    const tooMany = { ports: { base: 5000, stride: 2, names: ['a', 'b', 'c'] } };
    expect(err(() => validateConfig(tooMany, 'f')).message).toMatch(
      /ports.names must name at most ports.stride \(2\) ports, got 3 names/,
    );
    expect(err(() => validateConfig({ ports: { names: ['web', 'web'] } }, 'f')).message).toMatch(
      /ports.names must not list "web" twice/,
    );
    for (const bad of ['Web', 'a-b', '1x', 'x;rm'])
      expect(err(() => validateConfig({ ports: { names: [bad] } }, 'f')).exitCode).toBe(3);
    expect(err(() => validateConfig({ pool: { setup: ['  '] } }, 'f')).message).toMatch(
      /pool.setup must be a non-empty command/,
    );
    expect(err(() => validateConfig({ pool: { include: ['../x'] } }, 'f')).exitCode).toBe(3);
    expect(err(() => validateConfig({ pool: { includeMode: 'hardlink' } }, 'f')).exitCode).toBe(3);
  });

  it('applies environment overrides and validates them', () => {
    const c = validateConfig({ scale: { min: 1 } }, 'f', {
      WORKTREE_POOL_SIZE: '5',
      WORKTREE_POOL_ENABLED: 'false',
      DB_CONN_WARN: '7',
    });
    expect(c.scale.min).toBe(5);
    expect(c.pool.enabled).toBe(false);
    expect(c.monitor.thresholds.DB_CONN_WARN).toBe(7);
    expect(err(() => validateConfig({}, 'f', { WORKTREE_POOL_SIZE: 'lots' })).exitCode).toBe(3);
  });

  it("keeps a relative core.hooksPath (husky's armed copy) like node_modules; not an absolute or outside one", async () => {
    const repo = await makeTempRepo();
    try {
      const keep = () => loadConfig({ repo: repo.dir, env: {} }).config.pool.keep;
      expect(keep()).toEqual(['node_modules']);
      await repo.git(['config', 'core.hooksPath', '.husky/_']);
      expect(keep()).toEqual(['node_modules', '.husky/_']);
      await repo.git(['config', 'core.hooksPath', 'hooks/_/']);
      expect(keep()).toEqual(['node_modules', 'hooks/_']);
      await repo.git(['config', 'core.hooksPath', '/etc/hooks']);
      expect(keep()).toEqual(['node_modules']);
      await repo.git(['config', 'core.hooksPath', '../elsewhere']);
      expect(keep()).toEqual(['node_modules']);
      // another section's hooksPath is not core's
      await repo.git(['config', '--unset', 'core.hooksPath']);
      await repo.git(['config', 'other.hooksPath', 'x/_']);
      expect(keep()).toEqual(['node_modules']);
    } finally {
      await repo.cleanup();
    }
  });

  it('loads pool.config.yaml from the repository root, also from a subdirectory, and reports YAML errors', async () => {
    const repo = await makeTempRepo();
    try {
      writeFileSync(path.join(repo.dir, 'pool.config.yaml'), 'scale:\n  min: 2\n  max: 4\n');
      const loaded = loadConfig({ repo: repo.dir, env: {} });
      expect(loaded.config.scale).toMatchObject({ min: 2, max: 4 });
      expect(loaded.file).toBe(path.join(repo.dir, 'pool.config.yaml'));
      // Second load is served from the cache, and still sees a change of the file.
      writeFileSync(
        path.join(repo.dir, 'pool.config.yaml'),
        'scale:\n  min: 1\n  max: 4\n  extra: 1\n',
      );
      expect(err(() => loadConfig({ repo: repo.dir, env: {} })).message).toMatch(
        /unknown key scale.extra/,
      );
      writeFileSync(path.join(repo.dir, 'pool.config.yaml'), 'scale: [oops\n');
      expect(err(() => loadConfig({ repo: repo.dir, env: {} })).message).toMatch(/invalid YAML/);
    } finally {
      await repo.cleanup();
    }
  });
});

describe('repository discovery', () => {
  it('finds the common dir and main checkout from a linked worktree', async () => {
    const repo = await makeTempRepo();
    try {
      const wt = path.join(repo.sandbox, 'linked');
      await repo.git(['worktree', 'add', '-q', '--detach', wt]);
      const r = resolveRepo(path.join(wt));
      expect(r.worktree).toBe(wt);
      expect(r.mainRoot).toBe(repo.dir);
      expect(r.commonDir).toBe(path.join(repo.dir, '.git'));
      expect(r.stateDir).toBe(path.join(repo.dir, '.git', 'wtpool'));
      expect(err(() => resolveRepo('/')).exitCode).toBe(4);
    } finally {
      await repo.cleanup();
    }
  });
});

describe('targetDir', () => {
  it('trusts INIT_CWD only under a `pnpm <family>` script', () => {
    expect(targetDir('/x', { INIT_CWD: '/y', npm_lifecycle_event: 'pool' })).toBe('/x');
    expect(targetDir(undefined, { INIT_CWD: '/y', npm_lifecycle_event: 'pool' })).toBe('/y');
    expect(targetDir(undefined, { INIT_CWD: '/y', npm_lifecycle_event: 'test' })).toBe(
      process.cwd(),
    );
    expect(targetDir(undefined, { INIT_CWD: '/y' })).toBe(process.cwd());
  });
});

describe('the naming function', () => {
  const repo = {
    worktree: '/r/app',
    mainRoot: '/r/app',
    commonDir: '/r/app/.git',
    stateDir: '/r/app/.git/wtpool',
  };

  it('derives every name of a slot from one place', () => {
    const c = validateConfig({ ports: { base: 41000, stride: 10 }, beads: { prefix: 'app' } }, 'f');
    const n = slotNames(c, repo, 'wt-2');
    expect(n).toMatchObject({
      id: 'wt-2',
      n: 2,
      path: '/r/app.worktrees/wt-2',
      branchPrefix: 'pool/wt-2/',
      database: 'app_wt2',
      beadsPrefix: 'app-wt-2',
      ports: { start: 41020, end: 41029 },
      leaseFile: '/r/app/.git/wtpool/leases/wt-2.json',
    });
    expect(n.branch('task-17')).toBe('pool/wt-2/task-17');
    // A docker compose project name: the checkout's directory slugged, then the slot.
    expect(n.composeProject).toBe('app-wt-2');
    const odd = { ...repo, mainRoot: '/r/My App.Web' };
    expect(slotNames(c, odd, 'wt-3').composeProject).toBe('my-app-web-wt-3');
    expect(slotNames(c, { ...repo, mainRoot: '/r/__' }, 'wt-1').composeProject).toBe('wtpool-wt-1');
    expect(slotNames(c, repo, 2).database).toBe(slotNames(c, repo, 'wt-2').database);
  });

  it('refuses hostile agent names and slugs hostile tasks safely', () => {
    for (const bad of [
      '',
      '../etc',
      'a b',
      '$(rm -rf /)',
      'x\ny',
      'a'.repeat(300),
      '-rf',
      'a..b',
    ]) {
      expect(err(() => checkName(bad, 'agent')).exitCode).toBe(2);
    }
    expect(checkName('agent-1', 'agent')).toBe('agent-1');
    expect(checkTask('Fix ../../etc/passwd $(whoami)').slug).toBe('fix-etc-passwd-whoami');
    expect(checkTask('x'.repeat(150)).slug).toHaveLength(48);
    for (const bad of ['', '   ', 'a\nb', '$()', 'y'.repeat(300)])
      expect(err(() => checkTask(bad)).exitCode).toBe(2);
  });

  it('validates database names (63 bytes, [a-z0-9_])', () => {
    expect(checkDatabaseName('app_wt12')).toBe('app_wt12');
    expect(err(() => checkDatabaseName('a'.repeat(64))).exitCode).toBe(3);
    expect(err(() => checkDatabaseName('app"; drop')).exitCode).toBe(3);
    expect(defaultConfig().postgres.dbPrefix).toBe('app');
  });
});
