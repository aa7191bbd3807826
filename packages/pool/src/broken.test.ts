/**
 * Broken slots and growth (issue #11): a pool whose slots break does not grow into more broken
 * slots, and an acquire says why nothing is ready and what to run, instead of "pool full".
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '@wtpool/config';
import { makeTempRepo, type TempRepo } from '@wtpool/testkit';
import { readEvents } from './events.js';
import { WorktreePool } from './pool.js';
import { formatStatus } from './status.js';

const repos: TempRepo[] = [];
afterEach(async () => {
  await Promise.all(repos.splice(0).map((r) => r.cleanup()));
});

async function setup(yaml: string) {
  // A package.json: the deps step (deps.command) runs in every new slot.
  const repo = await makeTempRepo({ files: { 'package.json': '{"name":"x","private":true}\n' } });
  repos.push(repo);
  await fs.writeFile(path.join(repo.dir, 'pool.config.yaml'), yaml);
  const pool = new WorktreePool({ repo: repo.dir });
  const progress: string[] = [];
  pool.reporter = { progress: (m) => progress.push(m), warn: () => {} };
  return { repo, pool, progress };
}

describe('broken slots and growth', () => {
  it('with 3 of 4 slots broken by a failing setup command, a blocking acquire does not grow the pool and says why', async () => {
    const other = await makeTempRepo(); // a place for the switch file, outside the pool's repo
    repos.push(other);
    const failFlag = path.join(other.sandbox, 'deps-fail');
    const { pool, progress } = await setup(
      `scale:\n  min: 1\n  max: 8\n  step: 1\ndeps:\n  strategy: command\n  command: test ! -e ${failFlag}\n`,
    );
    await pool.initialize();
    await fs.writeFile(failFlag, '');
    // explicit: made, then broken; each scale out says so (exit 1 naming the slot and its log)
    for (let i = 0; i < 3; i++) {
      await expect(pool.scaleOut()).rejects.toMatchObject({
        exitCode: 1,
        message: expect.stringMatching(
          /^pool scale out: no slot is ready; 1 broken \(wt-\d\): deps.command/,
        ),
      });
    }
    const st = await pool.getStatus();
    expect(st.slots.map((s) => s.state)).toEqual(['ready', 'broken', 'broken', 'broken']);
    expect(st.pool.growthStopped?.reason).toMatch(
      /^3 of 4 slots are broken \(wt-2, wt-3, wt-4; wt-2: deps.command/,
    );
    expect(formatStatus(st)).toContain('growth stopped: 3 of 4 slots are broken');
    expect(formatStatus(st)).toContain('fix: fix the cause, then run `pool doctor --fix`');

    const held = await pool.lease({ agent: 'a', task: 'holds the good slot', wait: false });
    expect(held.slot).toBe('wt-1');
    // --no-wait: names the broken slots and the repair, not "no free slot: 1 of 4 leased".
    const noWait = pool.lease({ agent: 'b', task: 'x', wait: false });
    await expect(noWait).rejects.toMatchObject({
      exitCode: 75,
      message: expect.stringMatching(
        /^no ready slot: 3 of 4 slots are broken \(wt-2, wt-3, wt-4; wt-2: deps.command/,
      ),
      hint: expect.stringContaining('pool doctor --fix'),
    });
    // Blocking: waits without growing, says why on the way and when it gives up.
    const grows = async () =>
      (await readEvents(pool.repo.stateDir)).filter((e) => e.type === 'grow').length;
    const grownBefore = await grows(); // init and the three scale outs
    const blocking = pool.lease({ agent: 'c', task: 'y', timeoutMs: 1500 });
    await expect(blocking).rejects.toMatchObject({
      exitCode: 75,
      message: expect.stringMatching(/the pool did not grow: 3 of 4 slots are broken/),
      hint: expect.stringContaining('pool doctor --fix'),
    });
    expect(progress.some((m) => /^waiting in the queue: position 1 of 1, /.test(m))).toBe(true);
    expect(
      progress.some((m) => m.includes('the pool does not grow: 3 of 4 slots are broken')),
    ).toBe(true);
    const after = await pool.readState();
    expect(Object.keys(after.slots).sort()).toEqual(['wt-1', 'wt-2', 'wt-3', 'wt-4']);
    expect(await grows()).toBe(grownBefore);
    expect(after.queue).toEqual([]); // the waiter left the queue

    // Repaired: doctor --fix retries them, the breaker closes, the pool grows again on demand.
    await fs.rm(failFlag);
    await pool.doctor({ fix: true });
    const fixed = await pool.getStatus();
    expect(fixed.pool).toMatchObject({ ready: 3, broken: 0, growthStopped: null });
  });

  it('a slot broken by a configuration error (exit 3): a blocking acquire fails at once with that reason', async () => {
    // The config loader refuses `strategy: command` without a command (exit 3 naming the key,
    // D323); a pool handed such a config in code must still fail fast on it.
    const { repo } = await setup('scale:\n  min: 1\n  max: 4\n');
    const loaded = loadConfig({ repo: repo.dir });
    const pool = new WorktreePool({
      ...loaded,
      config: { ...loaded.config, deps: { strategy: 'command', command: null } },
    });
    // init says no slot is ready, with the configuration's exit code
    await expect(pool.initialize()).rejects.toMatchObject({
      exitCode: 3,
      message: expect.stringContaining('deps.strategy is command but deps.command is empty'),
    });
    const st = await pool.readState();
    expect(st.slots['wt-1']).toMatchObject({ state: 'broken', errorExit: 3 });
    // No timeout would end this wait: only failing fast ends it.
    await expect(
      pool.lease({ agent: 'a', task: 'x', timeoutMs: 24 * 3600_000 }),
    ).rejects.toMatchObject({
      exitCode: 3,
      message: expect.stringMatching(
        /^no usable slot: wt-1 is broken by a configuration error: deps.strategy is command but deps.command is empty/,
      ),
      hint: expect.stringContaining('pool doctor --fix'),
    });
    const after = await pool.readState();
    expect(Object.keys(after.slots)).toEqual(['wt-1']); // no growth into the same error
    expect(after.queue).toEqual([]);
  });

  it('a service that is down: init exits 6, the pool does not grow, --no-wait says which service', async () => {
    // A closed loopback port: PostgreSQL refuses the connection (no server needed).
    const { pool } = await setup(
      'scale:\n  min: 1\n  max: 4\npostgres:\n  url: postgres://u:pw@127.0.0.1:9/app\n',
    );
    await expect(pool.initialize()).rejects.toMatchObject({
      exitCode: 6,
      message: expect.stringMatching(
        /^pool init: no slot is ready; 1 broken \(wt-1\): PostgreSQL at/,
      ),
    });
    await expect(pool.lease({ agent: 'a', task: 'x', wait: false })).rejects.toMatchObject({
      exitCode: 6,
      message: expect.stringMatching(
        /^no usable slot: wt-1 is broken: PostgreSQL at postgres:\/\/u:\*\*\*@/,
      ),
    });
    const st = await pool.getStatus();
    expect(st.pool.growthStopped?.reason).toMatch(/^1 of 1 slots are broken \(wt-1: PostgreSQL/);
    expect(Object.keys((await pool.readState()).slots)).toEqual(['wt-1']);
  });
});
