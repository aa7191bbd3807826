import { readFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startPostgres, type PostgresServer } from '@wtpool/testkit';
import { urlWithPath } from '@wtpool/config';
import { createProviders, leaseSlot, releaseSlot } from './index.js';
import { ensureTemplate, quoteIdent, withAdmin } from './postgres.js';
import { fixture, uniquePrefix, type Fixture } from './fixtures.testutil.js';

const lease = { agent: 'a', task: 't', token: 1 };

// The migrate command counts its runs in migrate.log and applies every .sql file with psql.
const MIGRATE =
  'echo run >> migrate.log && for f in db/*.sql; do psql -q -v ON_ERROR_STOP=1 "$DATABASE_URL" -f "$f" || exit 1; done';

async function query<T extends pg.QueryResultRow>(url: string, sql: string, args: unknown[] = []) {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<T>(sql, args)).rows;
  } finally {
    await c.end();
  }
}

const databases = (url: string, prefix: string) =>
  query<{ datname: string }>(
    url,
    "SELECT datname FROM pg_database WHERE datname LIKE $1 || '\\_%' ORDER BY 1",
    [prefix],
  ).then((r) => r.map((x) => x.datname));

async function pgFixture(url: string): Promise<Fixture> {
  const dbPrefix = uniquePrefix();
  return fixture(
    { postgres: { url, dbPrefix, migrate: MIGRATE, migrations: 'db/*.sql', connectionLimit: 3 } },
    { 'db/001.sql': 'CREATE TABLE items (id serial PRIMARY KEY, who text);\n' },
  );
}

describe('PostgreSQL template databases (shared server)', () => {
  let f: Fixture;
  const url = () => inject('pgUrl');
  const runs = () =>
    readFileSync(path.join(f.repo.dir, 'migrate.log'), 'utf8').trim().split('\n').length;
  beforeAll(async () => {
    f = await pgFixture(url());
  });
  afterAll(async () => {
    await f?.cleanup();
  });

  it('clones the slot database from the template with its connection limit; release resets it', async () => {
    const providers = await createProviders(f.loaded);
    const env = await leaseSlot(providers, f.ctx(2), lease);
    expect(env).toMatchObject({
      DATABASE_NAME: `${f.prefix}_wt2`,
      DATABASE_URL: urlWithPath(url(), `${f.prefix}_wt2`),
    });
    const [info] = await query<{ datconnlimit: number; datistemplate: boolean }>(
      url(),
      'SELECT datconnlimit, datistemplate FROM pg_database WHERE datname = $1',
      [env.DATABASE_NAME],
    );
    expect(info).toEqual({ datconnlimit: 3, datistemplate: false });
    await query(env.DATABASE_URL!, "INSERT INTO items (who) VALUES ('lease-1')");
    expect(await query(env.DATABASE_URL!, 'SELECT who FROM items')).toEqual([{ who: 'lease-1' }]);

    await releaseSlot(providers, f.ctx(2));
    // Same schema as the template, the row written during the lease is gone.
    expect(await query(env.DATABASE_URL!, 'SELECT who FROM items')).toEqual([]);
    const tpl = await ensureTemplate(f.loaded);
    expect(tpl.built).toBe(false);
    const [t] = await query<{ datistemplate: boolean; datallowconn: boolean }>(
      url(),
      'SELECT datistemplate, datallowconn FROM pg_database WHERE datname = $1',
      [tpl.name],
    );
    expect(t).toEqual({ datistemplate: true, datallowconn: false });
    expect(runs()).toBe(1);
  });

  it('unchanged migrations reuse the template (no migration run); a changed file builds a new one', async () => {
    const providers = await createProviders(f.loaded);
    const before = await ensureTemplate(f.loaded);
    const runsBefore = runs();
    await leaseSlot(providers, f.ctx(3), lease);
    await releaseSlot(providers, f.ctx(3));
    expect(runs()).toBe(runsBefore);

    await f.repo.commit({ 'db/002.sql': 'ALTER TABLE items ADD COLUMN note text;\n' });
    const env = await leaseSlot(providers, f.ctx(3), lease);
    expect(runs()).toBe(runsBefore + 1);
    const after = await ensureTemplate(f.loaded);
    expect(after.name).not.toBe(before.name);
    // The stale template is dropped once nothing clones from it.
    expect(await databases(url(), f.prefix)).not.toContain(before.name);
    // The slot database was re-cloned from the new template: it has the new column.
    await query(env.DATABASE_URL!, "INSERT INTO items (who, note) VALUES ('x', 'y')");
    await releaseSlot(providers, f.ctx(3));
  });

  it('concurrent provisioners build the template once', async () => {
    const g = await pgFixture(url());
    try {
      const providers = await createProviders(g.loaded);
      await Promise.all([1, 2, 3, 4].map((n) => leaseSlot(providers, g.ctx(n), lease)));
      const lines = readFileSync(path.join(g.repo.dir, 'migrate.log'), 'utf8').trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(await databases(url(), g.prefix)).toHaveLength(5); // 4 slots + 1 template
      for (const n of [1, 2, 3, 4])
        await providers.find((p) => p.name === 'postgres')!.destroy!(g.ctx(n));
      expect(await databases(url(), g.prefix)).toHaveLength(1);
    } finally {
      await g.cleanup();
    }
  });

  it('a half-built template (left by a crash) is dropped and rebuilt', async () => {
    const g = await pgFixture(url());
    try {
      const tplName = (await import('@wtpool/config')).templateDatabase(
        g.loaded.config,
        await (await import('./postgres.js')).migrationsHash(g.loaded.config, g.repo.dir),
      );
      // Leftover: exists, not a template, holds garbage.
      await withAdmin(url(), (c) => c.query(`CREATE DATABASE ${quoteIdent(tplName)}`));
      await query(urlWithPath(url(), tplName), 'CREATE TABLE garbage (x int)');
      const tpl = await ensureTemplate(g.loaded);
      expect(tpl).toMatchObject({ name: tplName, built: true });
      const env = await leaseSlot(await createProviders(g.loaded), g.ctx(1), lease);
      const tables = await query<{ tablename: string }>(
        env.DATABASE_URL!,
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
      );
      expect(tables).toEqual([{ tablename: 'items' }]);
    } finally {
      await g.cleanup();
    }
  });

  it('a failing migration leaves no template behind and fails with the reason', async () => {
    const g = await fixture({
      postgres: { url: url(), dbPrefix: uniquePrefix(), migrate: 'echo boom >&2; exit 3' },
    });
    try {
      const err = await leaseSlot(await createProviders(g.loaded), g.ctx(1), lease).catch(
        (e: unknown) => e,
      );
      expect(err).toMatchObject({ code: 'ERR_MIGRATE' });
      expect((err as Error).message).toMatch(/exit 3.*boom/);
      expect(await databases(url(), g.prefix)).toEqual([]);
    } finally {
      await g.cleanup();
    }
  });
});

describe('PostgreSQL down (own server)', () => {
  let server: PostgresServer;
  let f: Fixture;
  beforeAll(async () => {
    server = await startPostgres();
    f = await pgFixture(server.url.replace('postgres@', 'postgres:pw@'));
  });
  afterAll(async () => {
    await f?.cleanup();
    await server?.stop();
  });

  it('stopped: lease exits 6 with a one-line redacted reason and leaves nothing; started again: works', async () => {
    const providers = await createProviders(f.loaded);
    await server.pause();
    const err = await leaseSlot(providers, f.ctx(1), lease).catch((e: unknown) => e);
    expect(err).toMatchObject({ exitCode: 6 });
    const msg = (err as Error).message;
    expect(msg).not.toContain('\n');
    expect(msg).not.toContain(':pw@');
    expect(msg).toMatch(
      /PostgreSQL at postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:\d+\/postgres is unreachable/,
    );

    await server.start();
    expect(await databases(server.url, f.prefix)).toEqual([]);
    const env = await leaseSlot(providers, f.ctx(1), lease);
    expect(await query(env.DATABASE_URL!, 'SELECT count(*)::int AS n FROM items')).toEqual([
      { n: 0 },
    ]);
  });
});
