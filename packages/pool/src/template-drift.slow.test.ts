/**
 * Drift inside the PostgreSQL template (issue 10, item 9): a table dropped by hand inside the
 * template is seen by `pool doctor` (schema fingerprint recorded at build), rebuilt by
 * `doctor --fix`, and the next slot database has the table again. Real PostgreSQL (the slow
 * project's shared server), real pool CLI. Build first (`pnpm -s build`).
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { urlWithPath } from '@wtpool/config';
import { makeTempRepo, runCli, type TempRepo } from '@wtpool/testkit';
import type { AcquireResult } from './types.js';
import type { DoctorReport } from './doctor.js';

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../bin/pool.js');
const repos: TempRepo[] = [];
const prefixes: string[] = [];

/** One SQL statement through psql (the pool package does not depend on pg): rows of one column. */
async function sql(url: string, text: string): Promise<string[]> {
  const { stdout } = await promisify(execFile)('psql', [
    '-X',
    '-q',
    '-t',
    '-A',
    '-v',
    'ON_ERROR_STOP=1',
    url,
    '-c',
    text,
  ]);
  return stdout.split('\n').filter(Boolean);
}

afterEach(async () => {
  const url = inject('pgUrl');
  for (const p of prefixes.splice(0)) {
    const dbs = await sql(url, `SELECT datname FROM pg_database WHERE datname LIKE '${p}\\_%'`);
    for (const datname of dbs) {
      await sql(url, `ALTER DATABASE "${datname}" IS_TEMPLATE false`);
      await sql(url, `DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`);
    }
  }
  await Promise.all(repos.splice(0).map((r) => r.cleanup()));
});

describe('template database drift', () => {
  it('a table dropped inside the template: doctor reports drift, --fix rebuilds, the next slot database has it', async () => {
    const url = inject('pgUrl');
    const prefix = `t${randomBytes(4).toString('hex')}`;
    prefixes.push(prefix);
    const repo = await makeTempRepo({
      files: {
        'db/001.sql':
          'CREATE TABLE items (id serial PRIMARY KEY, name text);\nCREATE TABLE users (id int PRIMARY KEY);\n',
      },
    });
    repos.push(repo);
    const migrate =
      'for f in db/*.sql; do psql -q -v ON_ERROR_STOP=1 "$DATABASE_URL" -f "$f" || exit 1; done';
    await fs.writeFile(
      path.join(repo.dir, 'pool.config.yaml'),
      JSON.stringify({
        scale: { min: 1, max: 1 },
        postgres: { url, dbPrefix: prefix, migrate, migrations: 'db/*.sql' },
      }),
    );
    const pool = (...args: string[]) =>
      runCli(BIN, [...args, '--repo', repo.dir], { cwd: repo.dir });
    expect((await pool('init')).code).toBe(0);
    const doctor = async (...extra: string[]) => {
      const r = await pool('doctor', '--json', ...extra);
      return r.json<DoctorReport>();
    };
    const d0 = await doctor();
    expect(d0.ok, JSON.stringify(d0)).toBe(true);
    expect(d0.problems.filter((p) => p.kind === 'template-drift')).toEqual([]);

    const [tpl] = await sql(
      url,
      `SELECT datname FROM pg_database WHERE datistemplate AND datname LIKE '${prefix}\\_tpl\\_%'`,
    );
    expect(tpl).toMatch(new RegExp(`^${prefix}_tpl_`));
    await sql(url, `ALTER DATABASE "${tpl}" ALLOW_CONNECTIONS true`);
    await sql(urlWithPath(url, tpl!), 'DROP TABLE users');
    await sql(url, `ALTER DATABASE "${tpl}" ALLOW_CONNECTIONS false`);

    const drifted = await doctor();
    const drift = drifted.problems.filter((p) => p.kind === 'template-drift');
    expect(drift).toHaveLength(1);
    expect(drift[0]!.detail).toContain(tpl!);
    expect(drifted.ok).toBe(false);

    const fixed = await doctor('--fix');
    expect(fixed.problems.find((p) => p.kind === 'template-drift')?.fixed).toBe(true);
    expect((await doctor()).problems).toEqual([]);

    const lease = (await pool('acquire', 'a', 'work', '--json')).json<AcquireResult>();
    const users = await sql(lease.env.DATABASE_URL!, "SELECT to_regclass('public.users')::text");
    expect(users).toEqual(['users']);
  });
});
