/**
 * Secrets at rest (issue 10, item 5): a 0600 config holding database and Redis passwords is
 * cached, and the state, lease and event files written, without any group or other bit, in
 * directories of mode 0700. Real PostgreSQL and Redis, real `pool` processes.
 * Build first (`pnpm -s build`).
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, promises as fs, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, expect, inject, it } from 'vitest';
import { makeTempRepo, runCli, type TempRepo } from '@wtpool/testkit';

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../bin/pool.js');
const repos: TempRepo[] = [];
afterEach(async () => {
  await Promise.all(repos.splice(0).map((r) => r.cleanup()));
});

/** The URL with a password put in (the test servers trust loopback, so any password works). */
const withPassword = (url: string, pw: string) => {
  const u = new URL(url);
  u.username = u.username || 'postgres';
  u.password = pw;
  return u.toString();
};

it('init, acquire, heartbeat and release leave nothing in .git/wtpool readable by others', async () => {
  const repo = await makeTempRepo();
  repos.push(repo);
  const secret = 's3cr3t-pw';
  const dbPrefix = `priv${process.pid}`;
  const cfg = path.join(repo.sandbox, 'private.yaml');
  await fs.writeFile(
    cfg,
    [
      'scale:\n  min: 1\n  max: 2',
      `postgres:\n  url: ${JSON.stringify(withPassword(inject('pgUrl'), secret))}\n  dbPrefix: ${dbPrefix}`,
      `redis:\n  url: ${JSON.stringify(inject('redisUrl'))}`,
    ].join('\n') + '\n',
  );
  chmodSync(cfg, 0o600);
  // The test runs under the usual umask 022, which lets everyone read what is created with
  // default modes: the pool must set its modes itself.
  expect(process.umask() & 0o044).toBe(0);
  const pool = (...args: string[]) =>
    runCli(BIN, [...args, '--config', cfg, '--repo', repo.dir], {
      cwd: repo.dir,
    });
  let r = await pool('init', '--size', '1');
  expect(r.code, r.stderr).toBe(0);
  r = await pool('acquire', 'agent-1', 'task-1', '--json');
  expect(r.code, r.stderr).toBe(0);
  const lease = r.json<{ slot: string }>();
  expect((await pool('heartbeat', lease.slot, 'agent-1')).code).toBe(0);

  const stateDir = path.join(repo.dir, '.git', 'wtpool');
  const cache = path.join(stateDir, 'config-cache.json');
  expect(readFileSync(cache, 'utf8')).toContain(secret); // the cache does hold the password…
  expect(statSync(cache).mode & 0o777).toBe(0o600); // …so only its owner may read it
  const leased = execFileSync('find', [stateDir, '-perm', '/044'], { encoding: 'utf8' });
  expect(leased).toBe('');
  const files = execFileSync('find', [stateDir, '-type', 'f'], { encoding: 'utf8' });
  for (const f of ['state.json', `leases/${lease.slot}.json`, 'events.jsonl'])
    expect(files).toContain(path.join(stateDir, f));

  expect((await pool('release', lease.slot, 'agent-1')).code).toBe(0);
  expect(execFileSync('find', [stateDir, '-perm', '/044'], { encoding: 'utf8' })).toBe('');
  expect(statSync(stateDir).mode & 0o777).toBe(0o700);
  // The env file in the worktree holds DATABASE_URL too (0600 already, D60).

  // At scale.max, `scale out` is "pool full" (75), not a usage error (2).
  expect((await pool('scale', 'out')).code).toBe(0);
  const full = await pool('scale', 'out');
  expect(full.code, full.stderr).toBe(75);
  expect(full.stderr.split('\n')[0]).toBe('error: the pool is already at scale.max (2)');
  expect(execFileSync('find', [stateDir, '-perm', '/044'], { encoding: 'utf8' })).toBe('');
});
