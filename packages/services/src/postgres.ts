/**
 * PostgreSQL per slot: a template database built once per migrations hash (under a lock that
 * concurrent provisioners respect, marked IS_TEMPLATE only after the migrations succeeded), and
 * one database per slot cloned from it with CREATE DATABASE … TEMPLATE … CONNECTION LIMIT.
 * Release drops the slot database WITH (FORCE) and clones it again.
 *
 * Every identifier in SQL comes from slotNames()/templateDatabase(), is validated again by
 * checkDatabaseName() and double-quoted by quoteIdent(); values travel as query parameters.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { failure, redact, serviceUnavailableError, errno, trustExtraCaCerts } from '@wtpool/core';
import type { Config, LoadedConfig } from '@wtpool/config';
import { checkDatabaseName, templateDatabase, urlWithPath } from '@wtpool/config';
import { ensurePrivateDir, withLock } from '@wtpool/lock';
import type pg from 'pg';
import type { ProviderContext, SlotProvider } from './provider.js';
import { lastLine, runCaptured } from './exec.js';

/** "name" for SQL, only for names that pass checkDatabaseName (so no quote can be inside). */
export function quoteIdent(name: string): string {
  return `"${checkDatabaseName(name).replace(/"/g, '""')}"`;
}

/** 'text' for SQL literals where a parameter cannot be used (COMMENT ON). */
export function quoteLiteral(text: string): string {
  if (text.includes('\0')) throw failure('ERR_INTERNAL', 'NUL in SQL literal');
  return `'${text.replace(/'/g, "''")}'`;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function isConnectionError(e: unknown): boolean {
  const code = errno(e);
  if (code && /^E[A-Z]+$/.test(code)) return true; // ECONNREFUSED, ENOTFOUND, ETIMEDOUT…
  if (code && (code.startsWith('08') || code.startsWith('57P'))) return true; // connection, shutdown
  const msg = e instanceof Error ? e.message : '';
  return /Connection terminated|timeout expired|connect ECONN/i.test(msg);
}

function unavailable(url: string, e: unknown) {
  const why = errno(e) ?? (e instanceof Error ? e.message.split('\n')[0] : String(e));
  return serviceUnavailableError(`PostgreSQL at ${redact(url)} is unreachable: ${redact(why!)}`, {
    hint: 'start PostgreSQL (or fix postgres.url in pool.config.yaml), then retry',
    cause: e,
  });
}

let pgModule: Promise<typeof pg> | undefined;
// pg is loaded only when PostgreSQL is configured and used.
const loadPg = () =>
  (pgModule ??= import('pg').then((m) => (m as unknown as { default: typeof pg }).default));

/** Runs fn with an admin connection; connection failures become exit 6. */
export async function withAdmin<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const { Client } = await loadPg();
  await trustExtraCaCerts(); // a TLS connection trusts NODE_EXTRA_CA_CERTS (D386)
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  client.on('error', () => {}); // a dropped connection surfaces on the next query
  try {
    await client.connect();
  } catch (e) {
    throw unavailable(url, e);
  }
  try {
    return await fn(client);
  } catch (e) {
    if (isConnectionError(e)) throw unavailable(url, e);
    throw e;
  } finally {
    await client.end().catch(() => {});
  }
}

/** Hash of the migration files (paths and contents) and the migrate command. */
export async function migrationsHash(config: Config, root: string): Promise<string> {
  const h = createHash('sha256');
  h.update(`migrate:${config.postgres.migrate ?? ''}\0`);
  if (config.postgres.migrations) {
    const { glob } = await import('tinyglobby');
    const files = (
      await glob(config.postgres.migrations, {
        cwd: root,
        onlyFiles: true,
        ignore: ['**/node_modules/**', '**/.git/**'],
      })
    ).sort();
    for (const f of files) {
      h.update(`${f}\0`);
      h.update(await fs.readFile(path.join(root, f)));
      h.update('\0');
    }
  }
  return h.digest('hex');
}

interface DbRow {
  datname: string;
  datistemplate: boolean;
  comment: string | null;
}

async function dbInfo(c: pg.Client, name: string): Promise<DbRow | undefined> {
  const r = await c.query<DbRow>(
    `SELECT datname, datistemplate, shobj_description(oid, 'pg_database') AS comment
       FROM pg_database WHERE datname = $1`,
    [name],
  );
  return r.rows[0];
}

async function terminateBackends(c: pg.Client, name: string): Promise<void> {
  await c.query(
    'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
    [name],
  );
}

export async function dropDatabase(c: pg.Client, name: string): Promise<void> {
  const info = await dbInfo(c, name);
  if (!info) return;
  if (info.datistemplate) await c.query(`ALTER DATABASE ${quoteIdent(name)} IS_TEMPLATE false`);
  await c.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`);
}

/**
 * The schema of a database as one checksum: tables, columns (type, nullability, default),
 * constraints, indexes, views and functions of every non-system schema. Recorded when the
 * template is built; `pool doctor` recomputes it to see drift inside the template (D150).
 */
const FINGERPRINT_SQL = `
SELECT x FROM (
  SELECT 'table ' || n.nspname || '.' || c.relname || ' ' || c.relkind::text AS x
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relkind IN ('r','v','m','S','p','f')
  UNION ALL
  SELECT 'column ' || n.nspname || '.' || c.relname || '.' || a.attname || ' ' ||
         format_type(a.atttypid, a.atttypmod) || ' ' || a.attnotnull::text || ' ' ||
         coalesce(pg_get_expr(d.adbin, d.adrelid), '')
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
   WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r','v','m','p','f')
  UNION ALL
  SELECT 'constraint ' || n.nspname || '.' || c.relname || '.' || k.conname || ' ' ||
         pg_get_constraintdef(k.oid)
    FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
  UNION ALL
  SELECT 'index ' || schemaname || '.' || indexname || ' ' || indexdef FROM pg_indexes
  UNION ALL
  SELECT 'function ' || n.nspname || '.' || p.proname || '(' ||
         pg_get_function_identity_arguments(p.oid) || ') ' || md5(coalesce(p.prosrc, ''))
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
) s
WHERE x !~ '^[a-z]+ (pg_catalog|information_schema|pg_toast)\\.'
ORDER BY x`;

/** The schema checksum of the database `c` is connected to. */
export async function schemaFingerprint(c: pg.Client): Promise<string> {
  const r = await c.query<{ x: string }>(FINGERPRINT_SQL);
  const h = createHash('sha256');
  for (const { x } of r.rows) h.update(`${x}\n`);
  return h.digest('hex');
}

/** Runs fn connected to database `db` of the same server (connection failures are exit 6). */
async function withDatabase<T>(url: string, db: string, fn: (c: pg.Client) => Promise<T>) {
  return withAdmin(urlWithPath(url, db), fn);
}

/** The template's comment: its schema fingerprint and the id of the build that made it. */
const TEMPLATE_COMMENT = /^wtpool-template fingerprint=([0-9a-f]{64}) build=([0-9a-z]+)$/;
const templateComment = (fp: string, build: string) =>
  `wtpool-template fingerprint=${fp} build=${build}`;

export interface TemplateResult {
  name: string;
  hash: string;
  built: boolean;
}

/**
 * The template for the current migrations, built if missing. Fast path: one query when it
 * exists. Otherwise, under a lock in the state dir: drop a half-built leftover, create, migrate
 * with DATABASE_URL pointing at it, then mark it IS_TEMPLATE (and closed to connections, so
 * nobody can be connected to it while cloning).
 */
export async function ensureTemplate(
  loaded: Pick<LoadedConfig, 'config' | 'repo'>,
  hooks: Partial<Pick<ProviderContext, 'event' | 'progress'>> = {},
): Promise<TemplateResult> {
  const { config, repo } = loaded;
  const url = config.postgres.url!;
  const hash = await migrationsHash(config, repo.mainRoot);
  const name = templateDatabase(config, hash);
  const ready = async (c: pg.Client) => (await dbInfo(c, name))?.datistemplate === true;
  if (await withAdmin(url, ready)) return { name, hash, built: false };
  ensurePrivateDir(repo.stateDir);
  return withLock(
    path.join(repo.stateDir, 'postgres-template'),
    () =>
      withAdmin(url, async (c) => {
        // Second line of defence behind the file lock (which a builder stopped past its stale
        // period loses): a session advisory lock, held by the server for as long as this
        // connection lives, so two builds of one template never overlap.
        await c.query('SELECT pg_advisory_lock(hashtext($1))', [`wtpool-template:${name}`]);
        if (await ready(c)) return { name, hash, built: false };
        hooks.progress?.(`building PostgreSQL template ${name}…`);
        await dropDatabase(c, name); // a half-built leftover of a crashed or failed build
        await c.query(`CREATE DATABASE ${quoteIdent(name)}`);
        if (config.postgres.migrate) {
          // postgres.migrate is the operator's command from pool.config.yaml; the URL goes in the env.
          const res = await runCaptured('sh', ['-c', config.postgres.migrate], {
            cwd: repo.mainRoot,
            env: { ...process.env, DATABASE_URL: urlWithPath(url, name) },
          });
          if (res.code !== 0) {
            await dropDatabase(c, name);
            throw failure(
              'ERR_MIGRATE',
              `postgres.migrate failed (exit ${res.code}) on template ${name}: ${redact(lastLine(res.output))}`,
              { hint: 'fix the migrations or postgres.migrate; the template was dropped' },
            );
          }
        }
        const fp = await withDatabase(url, name, schemaFingerprint);
        const build = `${Date.now().toString(36)}${process.pid.toString(36)}`;
        await c.query(
          `COMMENT ON DATABASE ${quoteIdent(name)} IS ${quoteLiteral(templateComment(fp, build))}`,
        );
        await terminateBackends(c, name);
        await c.query(
          `ALTER DATABASE ${quoteIdent(name)} IS_TEMPLATE true ALLOW_CONNECTIONS false`,
        );
        await dropStaleTemplates(c, name.slice(0, name.lastIndexOf('_tpl_')), name);
        await hooks.event?.('template-build', { template: name, hash });
        return { name, hash, built: true };
      }),
    { purpose: `building PostgreSQL template ${name}`, timeout: 30 * 60_000 },
  );
}

/**
 * Drops the templates of earlier migrations (best effort: one still being cloned from is left
 * for the next build). Slot databases cloned from them are re-cloned at their next lease.
 */
async function dropStaleTemplates(c: pg.Client, prefix: string, keep: string): Promise<void> {
  const r = await c.query<{ datname: string }>(
    `SELECT datname FROM pg_database WHERE datistemplate AND datname LIKE $1 AND datname <> $2`,
    [`${prefix}\\_tpl\\_%`, keep],
  );
  for (const { datname } of r.rows) {
    await dropDatabase(c, datname).catch(() => {});
  }
}

/** A slot database's comment: the template and the template build it was cloned from. */
const marker = (template: string, comment: string | null) => {
  const build = comment ? TEMPLATE_COMMENT.exec(comment)?.[2] : undefined;
  return build ? `wtpool:${template}@${build}` : `wtpool:${template}`;
};

export interface TemplateDrift {
  template: string;
  /** Recorded at build time (null: built by a version that did not record one). */
  recorded: string | null;
  /** Computed now, on a throwaway clone of the template. */
  actual: string;
}

/**
 * Compares the template's schema with the fingerprint recorded when it was built, on a
 * throwaway clone (the template itself accepts no connections). Null: no template yet, or no
 * drift.
 */
export async function checkTemplate(
  loaded: Pick<LoadedConfig, 'config' | 'repo'>,
): Promise<TemplateDrift | null> {
  const { config, repo } = loaded;
  const url = config.postgres.url!;
  const name = templateDatabase(config, await migrationsHash(config, repo.mainRoot));
  const probe = checkDatabaseName(
    `${config.postgres.dbPrefix}_tplchk_${process.pid}_${Math.floor(Math.random() * 1e6)}`,
  );
  return withAdmin(url, async (c) => {
    const info = await dbInfo(c, name);
    if (!info?.datistemplate) return null;
    const recorded = (info.comment && TEMPLATE_COMMENT.exec(info.comment)?.[1]) || null;
    await c.query(`CREATE DATABASE ${quoteIdent(probe)} TEMPLATE ${quoteIdent(name)}`);
    try {
      const actual = await withDatabase(url, probe, schemaFingerprint);
      return actual === recorded ? null : { template: name, recorded, actual };
    } finally {
      await dropDatabase(c, probe);
    }
  });
}

/** Drops the current template and builds it again from the migrations (`doctor --fix`). */
export async function rebuildTemplate(
  loaded: Pick<LoadedConfig, 'config' | 'repo'>,
  hooks: Partial<Pick<ProviderContext, 'event' | 'progress'>> = {},
): Promise<TemplateResult> {
  const { config, repo } = loaded;
  const name = templateDatabase(config, await migrationsHash(config, repo.mainRoot));
  await withLock(path.join(repo.stateDir, 'postgres-template'), () =>
    withAdmin(config.postgres.url!, (c) => dropDatabase(c, name)),
  );
  return ensureTemplate(loaded, hooks);
}

/** (Re)creates the slot database from the template. */
export async function cloneDatabase(
  c: pg.Client,
  db: string,
  template: string,
  connectionLimit: number,
  mark: string = marker(template, null),
): Promise<void> {
  await dropDatabase(c, db);
  for (let attempt = 0; ; attempt++) {
    await terminateBackends(c, template);
    try {
      await c.query(
        `CREATE DATABASE ${quoteIdent(db)} TEMPLATE ${quoteIdent(template)} CONNECTION LIMIT ${Math.trunc(connectionLimit)}`,
      );
      break;
    } catch (e) {
      // 55006: "source database is being accessed by other users": someone connected between.
      if (errno(e) !== '55006' || attempt >= 20) throw e;
      await sleep(50 + Math.random() * 100);
    }
  }
  await c.query(`COMMENT ON DATABASE ${quoteIdent(db)} IS ${quoteLiteral(mark)}`);
}

export function postgresProvider(config: Config): SlotProvider {
  const url = config.postgres.url!;
  const env = (db: string) => ({ DATABASE_NAME: db, DATABASE_URL: urlWithPath(url, db) });
  /** Makes sure the slot database exists and comes from the current template. */
  const ensure = async (ctx: ProviderContext, reset: boolean) => {
    const tpl = await ensureTemplate(ctx, ctx);
    const db = ctx.names.database;
    await withAdmin(url, async (c) => {
      // The marker names the template build: a rebuilt template re-clones every slot.
      const want = marker(tpl.name, (await dbInfo(c, tpl.name))?.comment ?? null);
      const info = await dbInfo(c, db);
      if (!reset && info?.comment === want) return;
      await cloneDatabase(c, db, tpl.name, config.postgres.connectionLimit, want);
    });
  };
  return {
    name: 'postgres',
    provision: (ctx) => ensure(ctx, false),
    async lease(ctx) {
      await ensure(ctx, false);
      return env(ctx.names.database);
    },
    env: async (ctx) => env(ctx.names.database),
    release: (ctx) => ensure(ctx, true),
    destroy: (ctx) => withAdmin(url, (c) => dropDatabase(c, ctx.names.database)),
    async check(ctx) {
      const tpl = templateDatabase(config, await migrationsHash(config, ctx.repo.mainRoot));
      const [info, tplInfo] = await withAdmin(url, (c) =>
        Promise.all([dbInfo(c, ctx.names.database), dbInfo(c, tpl)]),
      );
      if (!info) return [`database ${ctx.names.database} of ${ctx.names.id} is missing`];
      if (info.comment !== marker(tpl, tplInfo?.comment ?? null)) {
        return [`database ${ctx.names.database} was not cloned from the current template ${tpl}`];
      }
      return [];
    },
  };
}
