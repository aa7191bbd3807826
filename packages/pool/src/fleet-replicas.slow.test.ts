/**
 * Replica acknowledgement of lease writes (store.replicas, docs/fleet.md): a real primary and a
 * real replica (`redis-server --replicaof`), a fleet of two hosts on the primary. Build first
 * (`pnpm -s build`): these spawn packages/pool/bin/pool.js.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { redisCommand } from '@wtpool/services';
import { freePort, startRedis, waitForPort, type RedisServer } from '@wtpool/testkit';
import { makeFleet, until, type Fleet, type Host } from './fleet.testutil.js';
import type { AcquireResult } from './types.js';

const fleets: Fleet[] = [];
const servers: RedisServer[] = [];
const procs: ChildProcess[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const p of procs.splice(0)) p.kill('SIGKILL');
  await Promise.all(fleets.splice(0).map((f) => f.cleanup()));
  await Promise.all(servers.splice(0).map((s) => s.stop()));
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A replica of `primary` on a free port, in the foreground (its ChildProcess is the server). */
async function startReplica(primary: RedisServer): Promise<{ proc: ChildProcess; port: number }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'wtpool-replica-'));
  dirs.push(dir);
  const port = await freePort();
  const proc = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--save',
      '',
      '--appendonly',
      'no',
      '--replicaof',
      '127.0.0.1',
      String(primary.port),
    ],
    { stdio: 'ignore' },
  );
  procs.push(proc);
  await waitForPort(port);
  await until('the replica in sync', async () =>
    /master_link_status:up/.test(
      String(await redisCommand(`redis://127.0.0.1:${port}`, 'INFO', 'replication')),
    ),
  );
  return { proc, port };
}

describe(
  'fleet: lease writes acknowledged by a replica (real primary + replica)',
  { timeout: 600_000 },
  () => {
    it('store.replicas 1: grants while the replica acknowledges; with it stopped every grant is refused with exit 6 and nothing is granted; back, grants again', async () => {
      const primary = await startRedis({ databases: 16 });
      servers.push(primary);
      const replica = await startReplica(primary);
      const fleet = await makeFleet({
        hosts: 2,
        storeUrl: `${primary.url}/0`,
        hostTtl: '2m',
        scale: '  min: 2\n  max: 2\n  step: 1',
        store: '  replicas: 1\n  replicaTimeout: 300ms',
      });
      fleets.push(fleet);
      const [a, b] = fleet.hosts as [Host, Host];
      for (const h of fleet.hosts) expect((await h.pool(['init'])).code, 'init').toBe(0);
      const held = await a.pool(['acquire', 'a1', 'x', '--json']);
      expect(held.code, held.stderr).toBe(0);
      // The grant is on the replica too (WAIT acknowledged it before the acquire returned).
      const k = (await redisCommand(
        `redis://127.0.0.1:${replica.port}`,
        'KEYS',
        '*:h:host-1:leases',
      )) as string[];
      expect(k).toHaveLength(1);
      const rec = (await redisCommand(
        `redis://127.0.0.1:${replica.port}`,
        'HGET',
        k[0]!,
        held.json<AcquireResult>().slot,
      )) as string;
      expect(JSON.parse(rec)).toMatchObject({
        agent: 'a1',
        token: held.json<AcquireResult>().token,
      });

      replica.proc.kill('SIGSTOP');
      try {
        for (const h of [a, b]) {
          const r = await h.pool(['acquire', `${h.id}-x`, 'x', '--json', '--no-wait']);
          expect(r.code, r.stdout).toBe(6);
          expect(r.json<{ error: { code: string; message: string } }>().error).toMatchObject({
            code: 'ERR_SERVICE_UNAVAILABLE',
            message: expect.stringMatching(/but 0 of 1 replicas acknowledged them/),
          });
        }
        // A waiting acquire does not try again after an unacknowledged grant (it was applied:
        // a second try would hold a second slot): it exits 6 at once, not at its timeout.
        const w = await b.pool(['acquire', 'b-wait', 'w', '--json', '--timeout', '10m']);
        expect(w.code, w.stdout).toBe(6);
      } finally {
        replica.proc.kill('SIGCONT');
      }
      // Nobody holds a lease granted while unacknowledged: the refused grants are taken back
      // (their claimers are gone), and the next acquires are served.
      for (const h of [b, a]) {
        const r = await h.pool(['acquire', `${h.id}-y`, 'y', '--json', '--timeout', '2m']);
        expect(r.code, r.stderr).toBe(0);
      }
      const agents = (
        await Promise.all(
          fleet.hosts.map(async (h) =>
            (await h.pool(['status', '--json'])).json<{
              slots: { lease: { agent: string } | null }[];
            }>(),
          ),
        )
      ).flatMap((s) => s.slots.flatMap((x) => (x.lease ? [x.lease.agent] : [])));
      expect(agents.sort()).toEqual(['a1', 'host-1-y', 'host-2-y']);
    });
  },
);
