/** Fleet configuration (docs/fleet.md): store.backend/url, fleet.host, host ids in database names. */
import { describe, expect, it } from 'vitest';
import { makeTempRepo } from '@wtpool/testkit';
import { fleetHost, fleetKeys, slotNames, templateDatabase, validateConfig } from './index.js';

const err = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    return e as Error & { exitCode: number };
  }
  throw new Error('expected an error');
};

const fleet = (host: string | null, extra: Record<string, unknown> = {}) =>
  validateConfig(
    { store: { backend: 'redis', url: 'redis://10.0.0.5:6379/0' }, fleet: { host }, ...extra },
    'pool.config.yaml',
  );

describe('fleet configuration', () => {
  it('keeps the file backend by default', () => {
    const c = validateConfig({}, 'x');
    expect(c.store).toEqual({
      backend: 'file',
      url: null,
      hostTtl: 120_000,
      replicas: 0,
      replicaTimeout: 2000,
    });
    expect(c.fleet).toEqual({ host: null });
  });

  it('refuses a bad fleet.host naming the key (exit 3)', () => {
    for (const bad of ['Upper', 'a_b', 'x'.repeat(33), '-lead', 'a.b']) {
      const e = err(() => fleet(bad));
      expect(e.exitCode).toBe(3);
      expect(e.message).toContain('fleet.host');
    }
    expect(fleet('x'.repeat(32)).fleet.host).toBe('x'.repeat(32));
  });

  it('needs store.url with backend redis, and a redis:// URL (exit 3)', () => {
    const e = err(() => validateConfig({ store: { backend: 'redis' } }, 'f.yaml'));
    expect(e.exitCode).toBe(3);
    expect(e.message).toContain('store.url');
    expect(err(() => validateConfig({ store: { url: 'http://x' } }, 'f')).message).toContain(
      'store.url',
    );
  });

  it('defaults the host id to the first hostname label, lowercased; refuses one that does not fit', () => {
    const c = fleet(null);
    expect(fleetHost(c, 'Build-07.ci.example.com')).toBe('build-07');
    const e = err(() => fleetHost(c, 'my_box'));
    expect(e.exitCode).toBe(3);
    expect(e.message).toContain('fleet.host');
    expect(fleetHost(fleet('box-a'), 'ignored')).toBe('box-a');
  });

  it('puts the host id in database names (fleet only), one-to-one and within 63 bytes', async () => {
    const repo = await makeTempRepo();
    try {
      const paths = {
        worktree: repo.dir,
        commonDir: `${repo.dir}/.git`,
        mainRoot: repo.dir,
        stateDir: `${repo.dir}/.git/wtpool`,
      };
      const plain = validateConfig({}, 'x');
      expect(slotNames(plain, paths, 3).database).toBe('app_wt3');
      expect(slotNames(fleet('box-a'), paths, 3).database).toBe('app_box_a_wt3');
      expect(templateDatabase(fleet('box-a'), 'ABCDEF0123456789')).toBe(
        'app_box_a_tpl_abcdef012345',
      );
      const long = { postgres: { dbPrefix: 'p'.repeat(40) } };
      const names = new Set<string>();
      for (const h of ['h'.repeat(32), `${'h'.repeat(31)}x`, `${'h'.repeat(30)}-x`]) {
        const db = slotNames(fleet(h, long), paths, 9999).database;
        expect(Buffer.byteLength(db)).toBeLessThanOrEqual(63);
        expect(db).toMatch(/^p{40}_h+[a-z0-9_]*_wt9999$/);
        names.add(db);
      }
      expect(names.size).toBe(3);
      // The key prefix names the repository by its root commit, the same in every clone.
      const root = await repo.git(['rev-list', '--max-parents=0', 'HEAD']);
      expect(fleetKeys(fleet('box-a'), paths)).toEqual({
        fleet: `wtpool:${root.slice(0, 12)}`,
        host: `wtpool:${root.slice(0, 12)}:h:box-a`,
        hostId: 'box-a',
      });
    } finally {
      await repo.cleanup();
    }
  });
});
