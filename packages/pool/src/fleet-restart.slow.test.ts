/**
 * The fleet when its Redis goes away (docs/fleet.md "Redis unavailable, Redis restarted"), with
 * real processes: two hosts (clones of one origin) on a redis-server of this file's own, which
 * is SIGKILLed and restarted empty, or shut down past hostTtl and restarted with its data. Build first (`pnpm -s build`).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { promises as fs, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { redisCommand } from '@wtpool/services';
import { startRedis, type RedisServer } from '@wtpool/testkit';
import { BIN, makeFleet, until, type Fleet, type Host } from './fleet.testutil.js';
import type { FleetStatus } from './fleet.js';
import type { AcquireResult } from './types.js';

const fleets: Fleet[] = [];
const servers: RedisServer[] = [];
const runners: ChildProcess[] = [];
afterEach(async () => {
  for (const r of runners.splice(0)) {
    try {
      process.kill(-r.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await Promise.all(fleets.splice(0).map((f) => f.cleanup()));
  await Promise.all(servers.splice(0).map((s) => s.stop()));
});

const redisPid = (r: RedisServer) => Number(readFileSync(path.join(r.dir, 'redis.pid'), 'utf8'));

/** The fleet key prefix of a host's repository (its root commit, as fleetKeys names it). */
async function fleetPrefix(h: Host): Promise<string> {
  const { fleetRepoId } = await import('@wtpool/config');
  return `wtpool:${fleetRepoId({ worktree: h.dir, commonDir: `${h.dir}/.git`, mainRoot: h.dir, stateDir: `${h.dir}/.git/wtpool` })}`;
}

/** `pool run` on a host: a long command in its own process group that writes into its slot. */
function runIn(h: Host, agent: string, marks: string): ChildProcess {
  const r = spawn(
    process.execPath,
    [
      BIN,
      'run',
      agent,
      'work',
      '--ttl',
      '1h',
      '--repo',
      h.dir,
      '--',
      'sh',
      '-c',
      `echo "${agent} was here" > notes-${agent}.txt; echo "${agent} $WORKTREE_ID $REDIS_DB" >> ${marks}; sleep 600`,
    ],
    { cwd: h.dir, detached: true, stdio: 'ignore' },
  );
  runners.push(r);
  return r;
}

/** Two hosts of a fleet on a redis-server of their own (store and band), initialised. */
async function twoHosts(hostTtl: string, scale: string) {
  const own = await startRedis({ databases: 16 });
  servers.push(own);
  const fleet = await makeFleet({
    hosts: 2,
    storeUrl: `${own.url}/0`,
    redisUrl: own.url,
    hostTtl,
    scale,
  });
  fleets.push(fleet);
  const [a, b] = fleet.hosts as [Host, Host];
  for (const h of fleet.hosts) expect((await h.pool(['init'])).code).toBe(0);
  return { own, fleet, a, b };
}

describe('fleet: Redis away (real redis-server, processes, signals)', { timeout: 600_000 }, () => {
  it('restarted empty: old tokens refused, their work rescued, no Redis DB handed out twice, a waiting acquire waits through the outage', async () => {
    const { own, fleet, a, b } = await twoHosts('2m', '  min: 2\n  max: 3\n  step: 1');
    // Before: a lease on each host held by a CLI agent that leaves work in its slot, and one
    // held by `pool run` on host b.
    const before: (AcquireResult & { host: string })[] = [];
    for (const h of [a, b]) {
      const r = await h.pool(['acquire', `${h.id}-old`, 'old', '--json']);
      expect(r.code, r.stderr).toBe(0);
      const l = r.json<AcquireResult & { host: string }>();
      await fs.writeFile(path.join(l.path, 'unsaved.txt'), `work of ${l.agent}\n`);
      before.push(l);
    }
    const marks = path.join(fleet.origin.sandbox, 'runs.log');
    const run = runIn(b, 'b-runner', marks);
    const runLine = await until('b-runner working', async () => {
      const t = await fs.readFile(marks, 'utf8').catch(() => '');
      return t.trim().split('\n').find(Boolean);
    });
    const runExit = new Promise<number | null>((r) => run.on('exit', (code) => r(code)));
    const maxBefore = Math.max(...before.map((l) => l.token));
    const k = await fleetPrefix(a);
    const bandBefore = JSON.parse(
      (await redisCommand(`${own.url}/0`, 'HGET', `${k}:band`, 'doc')) as string,
    ) as { alloc: Record<string, string> };
    // Every slot of the fleet that has services holds one index (the elastic band may still be
    // provisioning a slot the runner's acquire grew).
    const held = Object.values(bandBefore.alloc);
    expect(new Set(held).size).toBe(held.length);
    for (const l of before) expect(bandBefore.alloc[l.env.REDIS_DB!]).toBe(`${l.host}/${l.slot}`);

    process.kill(redisPid(own), 'SIGKILL');
    await until('redis gone', async () => (await a.pool(['status', '--json'])).code === 6);
    // A waiting acquire started while Redis is down keeps trying (a --no-wait one exits 6).
    const waiter = a.pool(['acquire', 'a-waiter', 'w', '--json', '--timeout', '5m']);
    let waiterDone = false;
    void waiter.then(() => (waiterDone = true));
    for (let i = 0; i < 3; i++) {
      const down = await b.pool(['acquire', 'b-down', 'x', '--json', '--no-wait']);
      expect(down.code).toBe(6);
      expect(down.json<{ error: { code: string } }>().error.code).toBe('ERR_SERVICE_UNAVAILABLE');
    }
    expect(waiterDone).toBe(false);
    rmSync(path.join(own.dir, 'redis.pid'), { force: true });
    await own.start(); // empty: no persistence configured (the waiter re-fills it at once)

    // The old holders are refused (exit 5): Redis cannot prove their leases were not ended.
    for (const l of before) {
      const h = fleet.hosts.find((x) => x.id === l.host)!;
      const hb = await h.pool(['heartbeat', l.slot, l.agent, '--token', String(l.token), '--json']);
      expect(hb.code, hb.stderr).toBe(5);
      // While the lease's record stays (ended) it says why; once reclaimed, the token is stale.
      expect(hb.stdout).toMatch(/lost its state|is stale/);
      const rel = await h.pool(['release', l.slot, l.agent, '--token', String(l.token)]);
      expect(rel.code, rel.stderr).toBe(5);
    }
    // `pool run`'s heartbeat is refused too: it stops its command and exits with the lease lost.
    expect(await runExit).not.toBe(0);

    const w = await waiter;
    expect(w.code, w.stderr).toBe(0);
    const after = [w.json<AcquireResult & { host: string }>()];
    for (const [i, h] of [b, a, b, a].entries()) {
      const r = await h.pool(['acquire', `${h.id}-new${i}`, 'new', '--json']);
      expect(r.code, r.stderr).toBe(0);
      after.push(r.json());
    }
    // The floor (the re-seeded counter) is above every token handed out before the crash.
    expect(Number(await redisCommand(`${own.url}/0`, 'GET', `${k}:floor`))).toBeGreaterThan(
      maxBefore,
    );
    // No token reuse: every new token is above every token handed out before the crash.
    for (const l of after) expect(l.token).toBeGreaterThan(maxBefore);
    expect(new Set(after.map((l) => l.token)).size).toBe(after.length);
    // No double grant, no Redis DB on two live leases, and the band agrees with each lease.
    expect(new Set(after.map((l) => `${l.host}/${l.slot}`)).size).toBe(after.length);
    expect(new Set(after.map((l) => l.env.REDIS_DB)).size).toBe(after.length);
    const band = JSON.parse(
      (await redisCommand(`${own.url}/0`, 'HGET', `${k}:band`, 'doc')) as string,
    ) as { alloc: Record<string, string> };
    for (const l of after) expect(band.alloc[l.env.REDIS_DB!]).toBe(`${l.host}/${l.slot}`);
    // Every slot of the fleet holds at most one index, and each index one slot.
    const owners = Object.values(band.alloc);
    expect(new Set(owners).size).toBe(owners.length);

    // Nothing lost: each old holder's unsaved file is in a rescue ref on its host.
    const runnerSlot = runLine.split(' ')[1]!;
    const olds = [
      ...before.map((l) => ({
        host: l.host,
        slot: l.slot,
        file: 'unsaved.txt',
        text: `work of ${l.agent}\n`,
      })),
      { host: b.id, slot: runnerSlot, file: 'notes-b-runner.txt', text: 'b-runner was here\n' },
    ];
    for (const o of olds) {
      const h = fleet.hosts.find((x) => x.id === o.host)!;
      const list = await until(`rescue of ${o.host}/${o.slot}`, async () => {
        // An acquire's sweep or doctor reclaims the ended leases; doctor --fix forces it.
        await h.pool(['doctor', '--fix', '--json']);
        const rs = (await h.pool(['rescue', 'list', '--json'])).json<{
          rescues: { ref: string; slot: string }[];
        }>().rescues;
        return (
          rs.filter((r) => r.slot === o.slot).length > 0 && rs.filter((r) => r.slot === o.slot)
        );
      });
      const texts = await Promise.all(
        list.map((r) =>
          fleet.origin.git(['show', `${r.ref}:${o.file}`], h.dir).catch(() => undefined),
        ),
      );
      expect(texts.map((t) => (t === undefined ? t : `${t}\n`))).toContain(o.text);
    }
  });

  it('Redis away past hostTtl, back with its data: no live host is declared lost, running commands keep their leases', async () => {
    const { own, fleet, a, b } = await twoHosts('3s', '  min: 1\n  max: 2\n  step: 1');
    // Each host is alive through one `pool run` (its watch beats every hostTtl/3 = 1 s).
    const marks = path.join(fleet.origin.sandbox, 'runs.log');
    const runs = [runIn(a, 'a-runner', marks), runIn(b, 'b-runner', marks)];
    const exits = runs.map((r) => new Promise<number | null>((res) => r.on('exit', (c) => res(c))));
    await until('both runners working', async () => {
      const t = await fs.readFile(marks, 'utf8').catch(() => '');
      return t.trim().split('\n').filter(Boolean).length === 2;
    });
    const k = await fleetPrefix(a);
    // Redis goes away with its data saved (SHUTDOWN SAVE) and comes back with it 6 s later:
    // twice hostTtl, so every host's last beat is then older than hostTtl.
    execFileSync('redis-cli', ['-p', String(own.port), 'shutdown', 'save']);
    const stopped = Date.now();
    await until('redis gone', async () => (await a.pool(['status', '--json'])).code === 6);
    await until('6 s of outage', () => Date.now() - stopped > 6000, {
      attempts: 1000,
      everyMs: 20,
    });
    rmSync(path.join(own.dir, 'redis.pid'), { force: true });
    await own.start();
    // After it, both hosts beat again; give every host's housekeeping several looks (1 s each).
    const seen = await until('both hosts beat again after the outage', async () => {
      const h = (await redisCommand(`${own.url}/0`, 'HGETALL', `${k}:hosts`)) as string[];
      const t = (await redisCommand(`${own.url}/0`, 'TIME')) as string[];
      const now = Number(t[0]) * 1000 + Math.floor(Number(t[1]) / 1000);
      const beats = new Map<string, number>();
      for (let i = 0; i + 1 < h.length; i += 2) beats.set(h[i]!, Number(h[i + 1]));
      return [a.id, b.id].every((id) => now - (beats.get(id) ?? 0) < 1500) && now;
    });
    await until('3 s of housekeeping after the outage', async () => {
      const t = (await redisCommand(`${own.url}/0`, 'TIME')) as string[];
      return Number(t[0]) * 1000 - seen > 3000;
    });
    expect(await redisCommand(`${own.url}/0`, 'HGETALL', `${k}:lost`)).toEqual([]);
    const st = (await a.pool(['status', '--fleet', '--json'])).json<FleetStatus>();
    expect(st.hosts.map((h) => [h.id, h.state])).toEqual([
      [a.id, 'live'],
      [b.id, 'live'],
    ]);
    const leased = st.hosts.flatMap((h) =>
      h.slots.filter((s) => s.lease).map((s) => s.lease!.agent),
    );
    expect(leased.sort()).toEqual(['a-runner', 'b-runner']);
    for (const r of runs) expect(r.exitCode).toBe(null);
    for (const r of runs) process.kill(-r.pid!, 'SIGTERM');
    expect(await Promise.all(exits)).toEqual([143, 143]);
  });
});
