/**
 * A slot ready for real work (issue 24), with the real CLI and real git, no services: a
 * repository with an ignored 0600 `.env` named by `.worktreeinclude`, a `pool.setup` that
 * writes a generated file from a tracked input, and named ports.
 * - after `init`, every slot has the `.env` (0600, same bytes), the generated file, distinct
 *   named ports and a distinct COMPOSE_PROJECT_NAME;
 * - a release keeps both (no refusal, no rescue) and does not run setup again (its log);
 *   after the input changes on the base, the next release runs it and the output follows;
 * - an agent's change to an included file is refused like any ignored file, rescued with
 *   --force, and the slot gets the main checkout's file back;
 * - a failing setup command leaves the slots broken naming it, and a blocking acquire fails
 *   fast (exit 3) instead of waiting out its timeout.
 * Build first (`pnpm -s build`): these spawn packages/pool/bin/pool.js.
 */
import { promises as fs, statSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempRepo, runCli, type TempRepo } from '@wtpool/testkit';
import type { AcquireResult, PoolStatus, ReleaseResult } from './types.js';

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../bin/pool.js');
const MONITOR = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../../monitor/bin/monitor.js',
);
const BASE = 42000;
const STRIDE = 10;
const ENV_TEXT = 'SECRET=s3cret\nAPI_KEY=k\n';

const config = (setup: string[]) =>
  [
    'scale:',
    '  min: 2',
    '  max: 2',
    'deps:',
    '  strategy: none',
    'ports:',
    `  base: ${BASE}`,
    `  stride: ${STRIDE}`,
    '  names: [web, api]',
    'pool:',
    '  setupInputs: [schema.txt]',
    '  setup:',
    ...setup.map((c) => `    - ${JSON.stringify(c)}`),
    '',
  ].join('\n');

const GENERATE =
  'mkdir -p generated && cat schema.txt > generated/out.txt && echo "web on $WEB_PORT"';

let repo: TempRepo;
const pool = (args: string[]) =>
  runCli(BIN, [...args, '--repo', repo.dir], { cwd: repo.dir, timeout: 300_000 });
/** How many times setup ran in a slot, by its log (`pool logs --setup`). */
const setupRuns = async (slot: string) => {
  const r = await pool(['logs', slot, '--setup', '--json']);
  expect(r.code, r.stderr).toBe(0);
  return (r.json<{ log: string }>().log.match(/: setup 1\/1: /g) ?? []).length;
};

beforeAll(async () => {
  repo = await makeTempRepo({
    files: {
      '.gitignore': '.env\ngenerated/\n',
      '.worktreeinclude': '.env\n',
      'schema.txt': 'schema v1\n',
    },
  });
  // The config is the main checkout's (not committed), so the test can change it later.
  await fs.writeFile(path.join(repo.dir, 'pool.config.yaml'), config([GENERATE]));
  await fs.writeFile(path.join(repo.dir, '.env'), ENV_TEXT, { mode: 0o600 });
  await fs.chmod(path.join(repo.dir, '.env'), 0o600);
});
afterAll(async () => {
  await repo?.cleanup();
});

describe('slot setup: included files, setup commands, named ports', () => {
  let slots: string[] = [];
  let leases: AcquireResult[] = [];

  it('init gives every slot the 0600 .env, the generated file, named ports and a compose project', async () => {
    const r = await pool(['init', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const st = r.json<PoolStatus>();
    expect(st.pool.ready).toBe(2);
    slots = st.slots.map((s) => s.path);
    for (const dir of slots) {
      const env = path.join(dir, '.env');
      expect(statSync(env).mode & 0o777).toBe(0o600);
      expect(await fs.readFile(env, 'utf8')).toBe(ENV_TEXT);
      expect(await fs.readFile(path.join(dir, 'generated/out.txt'), 'utf8')).toBe('schema v1\n');
    }
    leases = [];
    for (const agent of ['a1', 'a2']) {
      const a = await pool(['acquire', agent, 't', '--no-wait', '--json']);
      expect(a.code, a.stderr).toBe(0);
      leases.push(a.json<AcquireResult>());
    }
    const ids = leases.map((l) => Number(l.slot.slice(3)));
    for (const [i, l] of leases.entries()) {
      // Expected from the block layout alone: slot n owns BASE + n*STRIDE …
      expect(l.env.WEB_PORT).toBe(String(BASE + ids[i]! * STRIDE));
      expect(l.env.API_PORT).toBe(String(BASE + ids[i]! * STRIDE + 1));
      expect(l.env.PORT).toBe(l.env.WEB_PORT);
      expect(l.env.COMPOSE_PROJECT_NAME).toMatch(/^[a-z0-9][a-z0-9_-]*$/);
      const file = await fs.readFile(l.envFile, 'utf8');
      expect(file).toContain(`COMPOSE_PROJECT_NAME=${l.env.COMPOSE_PROJECT_NAME}\n`);
      expect(file).toContain(`API_PORT=${l.env.API_PORT}\n`);
    }
    const all = leases.flatMap((l) => [l.env.WEB_PORT, l.env.API_PORT]);
    expect(new Set(all).size).toBe(4);
    expect(new Set(leases.map((l) => l.env.COMPOSE_PROJECT_NAME)).size).toBe(2);
    // The setup command ran with the slot's env.
    const log = (await pool(['logs', leases[0]!.slot, '--setup', '--json'])).json<{
      log: string;
    }>();
    expect(log.log).toContain(`web on ${leases[0]!.env.WEB_PORT}`);
  });

  it('a release keeps them and runs setup again only when its input changed', async () => {
    const [l1, l2] = leases as [AcquireResult, AcquireResult];
    expect(await setupRuns(l1.slot)).toBe(1);
    const r1 = await pool(['release', l1.slot, 'a1', '--json']);
    expect(r1.code, r1.stderr).toBe(0);
    expect(r1.json<ReleaseResult>().rescueRef).toBeNull();
    expect(await setupRuns(l1.slot)).toBe(1);
    expect(await fs.readFile(path.join(l1.path, '.env'), 'utf8')).toBe(ENV_TEXT);
    expect(await fs.readFile(path.join(l1.path, 'generated/out.txt'), 'utf8')).toBe('schema v1\n');

    await repo.commit({ 'schema.txt': 'schema v2\n' }, 'schema v2');
    const r2 = await pool(['release', l2.slot, 'a2', '--json']);
    expect(r2.code, r2.stderr).toBe(0);
    expect(r2.json<ReleaseResult>().rescueRef).toBeNull();
    expect(await setupRuns(l2.slot)).toBe(2);
    expect(await fs.readFile(path.join(l2.path, 'generated/out.txt'), 'utf8')).toBe('schema v2\n');
    expect(statSync(path.join(l2.path, '.env')).mode & 0o777).toBe(0o600);
  });

  it("an agent's change to an included file is rescued, and the slot gets the main checkout's back", async () => {
    const a = await pool(['acquire', 'a3', 'edit env', '--no-wait', '--json']);
    expect(a.code, a.stderr).toBe(0);
    const l = a.json<AcquireResult>();
    await fs.writeFile(path.join(l.path, '.env'), 'SECRET=changed\n');
    const refused = await pool(['release', l.slot, 'a3', '--json']);
    expect(refused.code).toBe(5);
    expect(refused.stderr).toContain('.env');
    const r = await pool(['release', l.slot, 'a3', '--force', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const ref = r.json<ReleaseResult>().rescueRef;
    expect(ref).toBeTruthy();
    expect(await repo.git(['show', `${ref}:.env`])).toBe('SECRET=changed');
    // The generated file was not the agent's: not in the rescue.
    const saved = await repo.git(['ls-tree', '-r', '--name-only', ref!]);
    expect(saved.split('\n')).not.toContain('generated/out.txt');
    expect(await fs.readFile(path.join(l.path, '.env'), 'utf8')).toBe(ENV_TEXT);
    expect(statSync(path.join(l.path, '.env')).mode & 0o777).toBe(0o600);
  });

  it('a failing setup command breaks the slots naming it; a blocking acquire fails fast', async () => {
    const failing = 'echo "error: cannot reach the code generator" >&2; exit 4';
    await fs.writeFile(path.join(repo.dir, 'pool.config.yaml'), config([GENERATE, failing]));
    await pool(['refresh', '--json']);
    const st = (await pool(['status', '--json'])).json<PoolStatus>();
    expect(st.slots.map((s) => s.state)).toEqual(['broken', 'broken']);
    for (const s of st.slots) {
      expect(s.error).toContain(failing);
      expect(s.error).toContain('cannot reach the code generator');
    }
    // Blocking (no --no-wait) with a long timeout: it must fail at once, not wait.
    const a = await pool(['acquire', 'a4', 't', '--timeout', '10m', '--json']);
    expect(a.code).toBe(3);
    expect(a.stderr).toContain(failing);
  });

  it("a port of a block bound by a process that is not the slot's is reported by doctor and monitor status", async () => {
    // This test process (working in the project checkout) takes wt-1's API_PORT.
    const port = BASE + 1 * STRIDE + 1;
    const srv = net.createServer();
    await new Promise<void>((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(port, '127.0.0.1', resolve);
    });
    try {
      const want = `port ${port} (API_PORT) of wt-1's block ${BASE + STRIDE}-${BASE + 2 * STRIDE - 1} is bound by pid ${process.pid}`;
      const d = await pool(['doctor', '--json']);
      const problems = d.json<{ problems: { slot: string; detail: string }[] }>().problems;
      expect(problems.filter((p) => p.detail.includes('API_PORT'))).toEqual([
        expect.objectContaining({ slot: 'wt-1', detail: expect.stringContaining(want) }),
      ]);
      const m = await runCli(MONITOR, ['status', '--json', '--repo', repo.dir], { cwd: repo.dir });
      const alerts = m.json<{ alerts: { check: string; message: string }[] }>().alerts;
      expect(alerts.filter((a) => a.check === 'ports').map((a) => a.message)).toEqual([
        expect.stringContaining(want),
      ]);
    } finally {
      srv.close();
    }
  });
});
