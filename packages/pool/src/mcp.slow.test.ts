/**
 * `pool mcp` as a real subprocess (the bundled bin) driven by the official MCP client over
 * stdio, on one small temp pool (2 slots, no services) shared by the tests of this file, which
 * run in order and each leave both slots ready. Build first (`pnpm -s build`).
 */
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { GIT_ENV, makeTempRepo, runCli, until, type TempRepo } from '@wtpool/testkit';
import type { AcquireResult, PoolStatus, ReleaseResult } from './types.js';

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../bin/pool.js');
let repo: TempRepo;
const sessions: Session[] = [];

interface Session {
  client: Client;
  transport: StdioClientTransport;
  stderr: () => string;
  call<T = Record<string, unknown>>(
    name: string,
    args: Record<string, unknown>,
    o?: { onprogress?: (p: { progress: number; message?: string }) => void; signal?: AbortSignal },
  ): Promise<{ ok: boolean; value: T; text: string }>;
}

async function session(): Promise<Session> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, ...GIT_ENV, CI: '1' }))
    if (v !== undefined && k !== 'INIT_CWD' && !k.startsWith('npm_')) env[k] = v;
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [BIN, 'mcp', '--repo', repo.dir],
    cwd: repo.dir,
    env,
    stderr: 'pipe',
  });
  let err = '';
  transport.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const client = new Client({ name: 'wtpool-test', version: '1.0.0' });
  await client.connect(transport);
  const s: Session = {
    client,
    transport,
    stderr: () => err,
    async call(name, args, o = {}) {
      const r = await client.callTool(
        { name, arguments: args },
        { timeout: 120_000, resetTimeoutOnProgress: true, ...o },
      );
      const text = r.content.map((c) => (c.type === 'text' ? c.text : '')).join('');
      return { ok: r.isError !== true, value: r.structuredContent as never, text };
    },
  };
  sessions.push(s);
  return s;
}

/** The pool as another process sees it (`pool status --json`, read-only). */
async function cliStatus(): Promise<PoolStatus> {
  const r = await runCli(BIN, ['status', '--json', '--repo', repo.dir], { cwd: repo.dir });
  expect(r.code, r.stderr).toBe(0);
  return r.json<PoolStatus>();
}
const slotOf = (st: PoolStatus, id: string) => st.slots.find((s) => s.id === id)!;

beforeAll(async () => {
  repo = await makeTempRepo();
  await fs.writeFile(path.join(repo.dir, 'pool.config.yaml'), 'scale:\n  min: 2\n  max: 2\n');
  const r = await runCli(BIN, ['init', '--repo', repo.dir], { cwd: repo.dir });
  expect(r.code, r.stderr).toBe(0);
});
afterEach(async () => {
  for (const s of sessions.splice(0)) await s.client.close().catch(() => undefined);
  // A failed test must not leave the shared pool full for the next one.
  for (const s of (await cliStatus()).slots) {
    if (!s.lease) continue;
    const argv = ['release', s.id, s.lease.agent, '--force', '--token', String(s.lease.token)];
    await runCli(BIN, [...argv, '--repo', repo.dir], { cwd: repo.dir });
  }
});
afterAll(async () => {
  await repo?.cleanup();
});

describe('pool mcp (real server, official client)', () => {
  it('lists the CLI tools; sessions get distinct slots; a blocked acquire hears its queue position and is granted the freed slot in priority order; a stale token changes nothing', async () => {
    const [a, b, c, d] = await Promise.all([session(), session(), session(), session()]);
    const names = (await a.client.listTools()).tools.map((t) => t.name).sort();
    expect(names).toEqual(
      ['acquire', 'attach', 'heartbeat', 'logs', 'release', 'rescue_list', 'status'].sort(),
    );

    const [la, lb] = await Promise.all([
      a.call<AcquireResult>('acquire', { agent: 'agent-a', task: 'first' }),
      b.call<AcquireResult>('acquire', { agent: 'agent-b', task: 'second' }),
    ]);
    expect(la.ok && lb.ok, la.text + lb.text).toBe(true);
    expect(new Set([la.value.slot, lb.value.slot]).size).toBe(2);
    for (const l of [la.value, lb.value]) {
      expect(existsSync(l.path)).toBe(true);
      expect(l.env.WTPOOL_LEASE_TOKEN).toBe(String(l.token));
      expect(Date.parse(l.expiresAt)).toBeGreaterThan(Date.now());
    }

    // c waits at priority 3, then d arrives at priority 0 and goes ahead of it.
    const heardC: string[] = [];
    const heardD: string[] = [];
    const pc = c.call<AcquireResult>(
      'acquire',
      { agent: 'agent-c', task: 'third', priority: 3 },
      { onprogress: (p) => heardC.push(p.message ?? '') },
    );
    await until('c queued', () => heardC.includes('waiting in the queue: position 1 of 1'));
    const pd = d.call<AcquireResult>(
      'acquire',
      { agent: 'agent-d', task: 'fourth', priority: 0 },
      { onprogress: (p) => heardD.push(p.message ?? '') },
    );
    await until('d ahead of c', () => heardD.includes('waiting in the queue: position 1 of 2'));
    await until('c told it moved back', () =>
      heardC.includes('waiting in the queue: position 2 of 2'),
    );

    // A wrong token is refused with the CLI's conflict (5) and nothing changes.
    const before = await cliStatus();
    const stale = await a.call<{ exitCode: number; error: { code: string; message: string } }>(
      'release',
      { slot: la.value.slot, agent: 'agent-a', token: la.value.token + 1000 },
    );
    expect(stale.ok).toBe(false);
    expect(stale.value.exitCode).toBe(5);
    expect(stale.value.error.message).toMatch(/stale/);
    const hb = await b.call<{ exitCode: number }>('heartbeat', {
      slot: lb.value.slot,
      agent: 'agent-b',
      token: lb.value.token + 1000,
    });
    expect(hb.value.exitCode).toBe(5);
    const after = await cliStatus();
    expect(slotOf(after, la.value.slot).lease?.token).toBe(la.value.token);
    expect(slotOf(after, lb.value.slot).lease?.token).toBe(lb.value.token);
    expect(after.queue.map((q) => q.agent)).toEqual(before.queue.map((q) => q.agent));
    expect(after.queue.map((q) => q.agent).sort()).toEqual(['agent-c', 'agent-d']);

    // a's slot goes to d (priority 0), b's then to c.
    const ra = await a.call<ReleaseResult>('release', {
      slot: la.value.slot,
      agent: 'agent-a',
      token: la.value.token,
    });
    expect(ra.ok, ra.text).toBe(true);
    const gd = await pd;
    expect(gd.ok, gd.text).toBe(true);
    expect(gd.value.slot).toBe(la.value.slot);
    expect(gd.value.token).toBeGreaterThan(la.value.token);
    const rb = await b.call('release', {
      slot: lb.value.slot,
      agent: 'agent-b',
      token: lb.value.token,
    });
    expect(rb.ok, rb.text).toBe(true);
    const gc = await pc;
    expect(gc.ok, gc.text).toBe(true);
    expect(gc.value.slot).toBe(lb.value.slot);

    for (const [s, l] of [
      [d, gd.value],
      [c, gc.value],
    ] as const) {
      const r = await s.call('release', { slot: l.slot, agent: l.agent, token: l.token });
      expect(r.ok, r.text).toBe(true);
    }
  });

  it('input is checked with the CLI messages; a cancelled acquire leaves no ticket and takes no slot', async () => {
    const [a, w] = await Promise.all([session(), session()]);
    const bad = await a.call<{ exitCode: number }>('acquire', { agent: 'no spaces', task: 't' });
    expect(bad.value.exitCode).toBe(2);
    expect(bad.text).toContain('invalid agent name "no spaces"');
    const ttl = await a.call<{ exitCode: number }>('acquire', {
      agent: 'x',
      task: 't',
      ttl: 'soon',
    });
    expect(ttl.value.exitCode).toBe(2);
    expect(ttl.text).toMatch(/invalid ttl: .*got string "soon"/);
    const pri = await a.call<{ exitCode: number }>('acquire', {
      agent: 'x',
      task: 't',
      priority: 9,
    });
    expect(pri.value.exitCode).toBe(2);
    expect(pri.text).toContain('priority must be 0 (most urgent) to 4, got 9');

    const held = await Promise.all([
      a.call<AcquireResult>('acquire', { agent: 'holder-1', task: 'one' }),
      a.call<AcquireResult>('acquire', { agent: 'holder-2', task: 'two' }),
    ]);
    const full = await a.call<{ exitCode: number }>('acquire', {
      agent: 'x',
      task: 't',
      wait: false,
    });
    expect(full.value.exitCode).toBe(75);

    const heard: string[] = [];
    const ac = new AbortController();
    const pending = w
      .call(
        'acquire',
        { agent: 'quitter', task: 'gives up' },
        {
          signal: ac.signal,
          onprogress: (p) => heard.push(p.message ?? ''),
        },
      )
      .then(
        () => 'answered',
        () => 'rejected',
      );
    await until('quitter queued', () => heard.length > 0);
    expect((await cliStatus()).queue.map((q) => q.agent)).toEqual(['quitter']);
    ac.abort();
    expect(await pending).toBe('rejected');
    await until('the ticket left the queue', async () => (await cliStatus()).queue.length === 0);

    // The freed slot is not granted to the cancelled request: it becomes ready.
    const first = held[0]!.value;
    const r = await a.call('release', { slot: first.slot, agent: first.agent, token: first.token });
    expect(r.ok, r.text).toBe(true);
    const st = await cliStatus();
    expect(slotOf(st, first.slot).state).toBe('ready');
    expect(st.slots.some((s) => s.lease?.agent === 'quitter')).toBe(false);
    const second = held[1]!.value;
    await a.call('release', { slot: second.slot, agent: second.agent, token: second.token });
  });

  it('a live session keeps its lease past the TTL; after SIGKILL, attach resumes it; a killed session with no successor loses it to reclaim, work rescued', async () => {
    const s1 = await session();
    const TTL = 3000; // beats every 1 s (TTL/3): three chances before an expiry
    const got = await s1.call<AcquireResult>('acquire', {
      agent: 'keeper',
      task: 'long work',
      ttl: TTL,
    });
    expect(got.ok, got.text).toBe(true);
    const lease = got.value;
    const firstExpiry = Date.parse(lease.expiresAt);

    // Live session: well past the first expiry, the lease is the same one, not over.
    await until('past the first TTL', () => Date.now() > firstExpiry + 1000);
    let st = slotOf(await cliStatus(), lease.slot);
    expect(st.lease?.token).toBe(lease.token);
    expect(st.lease?.over ?? null).toBeNull();
    expect(Date.parse(st.lease!.expiresAt)).toBeGreaterThan(firstExpiry);

    // Uncommitted work, then the session dies without a word; a successor (its harness
    // restarted the server) attaches before the TTL runs out and keeps the lease from now on.
    await fs.writeFile(path.join(lease.path, 'notes.txt'), 'work in progress\n');
    const s2 = await session();
    process.kill(s1.transport.pid!, 'SIGKILL');
    const wrong = await s2.call<{ exitCode: number }>('attach', {
      slot: lease.slot,
      token: lease.token + 1,
    });
    expect(wrong.value.exitCode).toBe(5);
    const att = await s2.call<AcquireResult & { attached: boolean }>('attach', {
      slot: lease.slot,
      token: lease.token,
    });
    expect(att.ok, att.text).toBe(true);
    expect(att.value).toMatchObject({
      slot: lease.slot,
      path: lease.path,
      agent: 'keeper',
      token: lease.token,
      attached: true,
    });
    expect(att.value.env.WTPOOL_LEASE_TOKEN).toBe(String(lease.token));
    const attachedExpiry = Date.parse(att.value.expiresAt);
    await until('past the attached TTL', () => Date.now() > attachedExpiry + 1000);
    st = slotOf(await cliStatus(), lease.slot);
    expect(st.lease?.token).toBe(lease.token);
    expect(st.lease?.over ?? null).toBeNull();

    // The successor dies too: nothing heartbeats any more, the lease runs out and is reclaimed.
    process.kill(s2.transport.pid!, 'SIGKILL');
    await until('the lease is over', async () => slotOf(await cliStatus(), lease.slot).lease?.over);
    const fix = await runCli(BIN, ['doctor', '--fix', '--json', '--repo', repo.dir], {
      cwd: repo.dir,
    });
    expect(fix.code, fix.stderr).toBe(0);
    expect(slotOf(await cliStatus(), lease.slot).state).toBe('ready');

    const s3 = await session();
    const late = await s3.call<{ exitCode: number }>('attach', {
      slot: lease.slot,
      token: lease.token,
    });
    expect(late.value.exitCode).toBe(5);
    const rescues = await s3.call<{ rescues: { ref: string; slot: string }[] }>('rescue_list', {
      slot: lease.slot,
    });
    expect(rescues.ok, rescues.text).toBe(true);
    expect(rescues.value.rescues.length).toBeGreaterThan(0);
    expect(rescues.value.rescues.every((r) => r.slot === lease.slot)).toBe(true);
    const saved = await repo.git(['show', `${rescues.value.rescues[0]!.ref}:notes.txt`]);
    expect(saved).toBe('work in progress');
  });
});
