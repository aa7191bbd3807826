/**
 * Token fencing (issue 10, items 3 and 4) with real processes and real signals: a stale
 * process's heartbeat and release are refused by token whatever the agent name, and a
 * `pool run` stopped past its TTL loses its command when another agent takes the slot.
 * Build first (`pnpm -s build`): these spawn packages/pool/bin/pool.js.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readProcStat } from '@wtpool/core';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { makeTempRepo, runCli, until, type TempRepo } from '@wtpool/testkit';
import type { AcquireResult, PoolStatus } from './types.js';

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../bin/pool.js');
const repos: TempRepo[] = [];
const children: ChildProcess[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) {
    if (c.exitCode === null && c.signalCode === null && c.pid) {
      try {
        process.kill(-c.pid, 'SIGKILL');
      } catch {
        c.kill('SIGKILL');
      }
    }
  }
  await Promise.all(repos.splice(0).map((r) => r.cleanup()));
});

async function setup(yaml = 'scale:\n  min: 1\n  max: 1\n') {
  const repo = await makeTempRepo();
  repos.push(repo);
  await fs.writeFile(path.join(repo.dir, 'pool.config.yaml'), yaml);
  const pool = (args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) =>
    runCli(BIN, [...args, '--repo', repo.dir], { cwd: opts.cwd ?? repo.dir, env: opts.env });
  expect((await pool(['init'])).code).toBe(0);
  return { repo, pool };
}

const procGone = (pid: number) => ['Z', undefined].includes(readProcStat(pid)?.state);

describe('lease fencing by token (real processes)', () => {
  it('a stale token is refused (exit 5) for heartbeat and release --force, the live lease untouched', async () => {
    const { pool } = await setup();
    const holder = spawn('sleep', ['600'], { stdio: 'ignore' });
    children.push(holder);
    const first = await pool(['acquire', 'A', 'one', '--holder-pid', String(holder.pid), '--json']);
    expect(first.code, first.stderr).toBe(0);
    const t1 = first.json<AcquireResult>();
    // The env file carries the token of the lease it belongs to.
    expect(await fs.readFile(t1.envFile, 'utf8')).toContain(`WTPOOL_LEASE_TOKEN=${t1.token}\n`);
    holder.kill('SIGKILL');
    await new Promise((r) => holder.on('exit', r));

    // A acquires again: the dead holder's lease is reclaimed, A gets the same slot, token t2.
    const second = await pool(['acquire', 'A', 'two', '--no-wait', '--json']);
    expect(second.code, second.stderr).toBe(0);
    const t2 = second.json<AcquireResult>();
    expect(t2.slot).toBe(t1.slot);
    expect(t2.token).toBeGreaterThan(t1.token);
    await fs.writeFile(path.join(t2.path, 'live.txt'), 'the live lease is working\n');
    await fs.writeFile(path.join(t2.path, 'README.md'), 'live edit\n');

    const hb = await pool(['heartbeat', t1.slot, 'A', '--token', String(t1.token)]);
    expect(hb.code, hb.stderr).toBe(5);
    expect(hb.stderr).toContain('stale');
    const rel = await pool(['release', t1.slot, 'A', '--force', '--token', String(t1.token)]);
    expect(rel.code, rel.stderr).toBe(5);
    // The stale process's env (as `pool run` and `.env.worktree` give it) fences the same way.
    const env = { WORKTREE_ID: t1.slot, WTPOOL_LEASE_TOKEN: String(t1.token) };
    expect((await pool(['release', t1.slot, 'A', '--force'], { env })).code).toBe(5);
    expect((await pool(['heartbeat', t1.slot, 'A'], { env })).code).toBe(5);

    expect(await fs.readFile(path.join(t2.path, 'live.txt'), 'utf8')).toBe(
      'the live lease is working\n',
    );
    expect(await fs.readFile(path.join(t2.path, 'README.md'), 'utf8')).toBe('live edit\n');
    const st = (await pool(['status', '--json'])).json<PoolStatus>();
    expect(st.slots[0]!.state).toBe('leased');
    expect(st.slots[0]!.lease!.token).toBe(t2.token);

    // Inside the worktree without a token (the env file on disk is never read for it), the
    // agent name decides: A holds the live lease.
    const hbLive = await pool(['heartbeat', t2.slot, 'A', '--json'], { cwd: t2.path });
    expect(hbLive.code, hbLive.stderr).toBe(0);
    expect(hbLive.json<{ token: number }>().token).toBe(t2.token);
  });

  it('`pool run` stopped past its TTL while another agent takes the slot: its command is stopped, writes nothing after the takeover, exit 5', async () => {
    const { pool, repo } = await setup();
    // The command: its pid, then one line per 50 ms appended to a file in its cwd.
    const writer =
      "const fs=require('fs');fs.writeFileSync('pid.txt',String(process.pid));" +
      "setInterval(()=>fs.appendFileSync('lines.txt',Date.now()+'\\n'),50)";
    const run = spawn(
      process.execPath,
      [
        BIN,
        'run',
        'A',
        'long',
        '--ttl',
        '10s',
        '--repo',
        repo.dir,
        '--',
        process.execPath,
        '-e',
        writer,
      ],
      { cwd: repo.dir, stdio: ['ignore', 'pipe', 'pipe'], detached: true },
    );
    children.push(run);
    let stderr = '';
    run.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const exited = new Promise<number | null>((r) => run.on('exit', (c) => r(c)));
    const st0 = await until('leased', async () => {
      const s = (await pool(['status', '--json'])).json<PoolStatus>();
      return s.slots[0]?.lease ? s : undefined;
    });
    const dir = st0.slots[0]!.path;
    const childPid = await until('command started', async () =>
      Number(await fs.readFile(path.join(dir, 'pid.txt'), 'utf8').catch(() => '0')),
    );
    await until('lines written', () => existsSync(path.join(dir, 'lines.txt')));

    // Freeze the holder and its command (both process groups), past the lease's expiry.
    process.kill(-run.pid!, 'SIGSTOP');
    process.kill(-childPid, 'SIGSTOP');
    const expires = Date.parse(
      (await pool(['status', '--json'])).json<PoolStatus>().slots[0]!.lease!.expiresAt,
    );
    await until('lease expired', () => Date.now() > expires + 200);

    const taken = await pool(['acquire', 'B', 'other', '--no-wait', '--json']);
    expect(taken.code, taken.stderr).toBe(0);
    const b = taken.json<AcquireResult>();
    expect(b.path).toBe(dir);
    // The reclaim saved A's file and stopped its command before handing the slot to B.
    expect(existsSync(path.join(dir, 'lines.txt'))).toBe(false);
    expect(procGone(childPid)).toBe(true);

    process.kill(-run.pid!, 'SIGCONT');
    expect(await exited).toBe(5);
    expect(stderr).toMatch(/lost the lease of wt-1 .*was stopped/);
    expect(procGone(childPid)).toBe(true);
    // Nothing written into B's worktree after the takeover.
    expect(existsSync(path.join(dir, 'lines.txt'))).toBe(false);
    const st = (await pool(['status', '--json'])).json<PoolStatus>();
    expect(st.slots[0]!.lease!.agent).toBe('B');
    expect(st.slots[0]!.lease!.token).toBe(b.token);
  });
});
