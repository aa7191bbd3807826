/**
 * The lock library's guarantees, shown with real concurrent OS processes (test/fixtures/worker.mjs
 * runs the compiled library). These are the "must show" cases of the foundation issue.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { jitter, tempDir, until } from '@wtpool/testkit';

const WORKER = path.join(
  path.dirname(fileURLToPath(import.meta.url)),
  '../test/fixtures/worker.mjs',
);

interface Proc {
  child: ChildProcess;
  lines: Record<string, unknown>[];
  exited: Promise<number | null>;
  /** Resolves with the first line matching `pred`. */
  waitLine(pred: (l: Record<string, unknown>) => boolean): Promise<Record<string, unknown>>;
}

const live: ChildProcess[] = [];
afterEach(() => {
  for (const c of live.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
});

function worker(...args: string[]): Proc {
  const child = spawn(process.execPath, [WORKER, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  live.push(child);
  const lines: Record<string, unknown>[] = [];
  const waiters: Array<
    [(l: Record<string, unknown>) => boolean, (l: Record<string, unknown>) => void]
  > = [];
  let buf = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = JSON.parse(buf.slice(0, i)) as Record<string, unknown>;
      buf = buf.slice(i + 1);
      lines.push(line);
      for (const [pred, resolve] of waiters) if (pred(line)) resolve(line);
    }
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child,
    lines,
    exited,
    waitLine: (pred) =>
      new Promise((resolve) => {
        const found = lines.find(pred);
        if (found) resolve(found);
        else waiters.push([pred, resolve]);
      }),
  };
}

const readStore = (file: string) =>
  JSON.parse(readFileSync(file, 'utf8')) as { version: number; data: { n: number } };

describe('JsonStore under contention (real processes)', () => {
  it('16 processes × 200 increments give exactly 3200, and a concurrent reader never sees invalid JSON', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'state.json');
    const stop = path.join(dir, 'stop');
    const reader = worker('read-loop', file, stop);
    const writers = Array.from({ length: 16 }, () => worker('increment', file, '200'));
    const codes = await Promise.all(writers.map((w) => w.exited));
    writeFileSync(stop, '');
    await reader.exited;
    expect(codes.every((c) => c === 0)).toBe(true);
    const state = readStore(file);
    expect(state.data.n).toBe(3200);
    expect(state.version).toBe(3200);
    const r = reader.lines[0] as { reads: number; invalid: number; backwards: number };
    expect(r.reads).toBeGreaterThan(0);
    expect(r.invalid).toBe(0);
    expect(r.backwards).toBe(0);
  });
});

describe('crash safety (SIGKILL at random instants)', () => {
  it('leaves a valid file, loses no committed increment, and frees the lock for the next process', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'state.json');
    const stale = 3000;
    for (let round = 0; round < 4; round++) {
      const before = existsSync(file) ? readStore(file).data.n : 0;
      const victims = Array.from({ length: 4 }, () =>
        worker('increment', file, '100000', String(stale)),
      );
      // Wait until they are really writing (process start-up varies a lot on a loaded machine),
      // then kill them at a random instant.
      await until(
        `the victims write (round ${round})`,
        () => {
          // Victims that all died before writing would make this wait in vain: say so.
          if (victims.every((v) => v.child.exitCode !== null))
            throw new Error(
              `every victim exited before writing: ${victims.map((v) => v.child.exitCode).join(', ')}`,
            );
          return existsSync(file) && readStore(file).version > before;
        },
        { everyMs: 5, attempts: 12_000 },
      );
      await jitter(100);
      for (const v of victims) v.child.kill('SIGKILL');
      await Promise.all(victims.map((v) => v.exited));
      // The file parses and never went backwards.
      const after = readStore(file);
      expect(after.data.n).toBe(after.version);
      expect(after.data.n).toBeGreaterThanOrEqual(before);
      // A new process gets the lock within the stale period (its lock timeout): a dead holder's
      // lock is reclaimed at once when it recorded itself, else once it is stale.
      const next = worker('lock-once', file, String(stale), String(stale + 1000));
      expect(await next.exited).toBe(0);
      expect(next.lines[0]).toHaveProperty('gotLockAfterMs');
    }
    // And the store still works: one more increment lands on top of everything committed.
    const n = readStore(file).data.n;
    const one = worker('increment', file, '1', String(stale));
    expect(await one.exited).toBe(0);
    expect(readStore(file).data.n).toBe(n + 1);
  });
});

describe('stall (SIGSTOP past stale)', () => {
  it('lets another process proceed and rejects the stalled writer when it resumes', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'state.json');
    const stale = 2000;
    const holder = worker('hold', file, '1500', String(stale));
    await holder.waitLine((l) => l.locked === true);
    holder.child.kill('SIGSTOP');
    // Another process waits until the lock is stale (the stopped holder can't refresh it), then proceeds.
    const other = worker('increment', file, '1', String(stale));
    expect(await other.exited).toBe(0);
    expect(readStore(file).data.n).toBe(1);
    holder.child.kill('SIGCONT');
    expect(await holder.exited).toBe(1);
    const result = holder.lines.at(-1) as { error?: string };
    expect(['ERR_LOCK_COMPROMISED', 'ERR_STORE_CONFLICT']).toContain(result.error);
    // Its write (+1000) was rejected, not applied.
    expect(readStore(file).data.n).toBe(1);
  });
});

describe('createExclusive raced by 32 processes', () => {
  it('has exactly one winner, every time', async () => {
    for (let round = 0; round < 3; round++) {
      const dir = tempDir();
      const target = path.join(dir, 'lease.json');
      const barrier = path.join(dir, 'go');
      const racers = Array.from({ length: 32 }, (_, i) =>
        worker('exclusive', target, barrier, `p${i}`),
      );
      // Every racer has started and spins on the barrier before it opens.
      await Promise.all(racers.map((r) => r.waitLine((l) => l.ready === true)));
      writeFileSync(barrier, '');
      await Promise.all(racers.map((r) => r.exited));
      const results = racers.map(
        (r) => r.lines.find((l) => 'won' in l) as { won: boolean; id: string },
      );
      const winners = results.filter((r) => r.won);
      expect(results).toHaveLength(32);
      expect(winners).toHaveLength(1);
      expect(JSON.parse(readFileSync(target, 'utf8'))).toEqual({ id: winners[0]!.id });
    }
  });
});

describe('FencingCounter', () => {
  it('hands out strictly increasing, unique tokens across processes and restarts', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'fence.json');
    const first = await Promise.all(
      Array.from({ length: 4 }, () => worker('fence', file, '25')).map(
        async (w) => (await w.exited, w.lines[0] as { tokens: number[] }),
      ),
    );
    const all = first.flatMap((r) => r.tokens);
    expect(new Set(all).size).toBe(100);
    for (const r of first) expect(r.tokens).toEqual([...r.tokens].sort((a, b) => a - b));
    // A later process (a "restart") continues above everything handed out before.
    const later = worker('fence', file, '1');
    await later.exited;
    expect((later.lines[0] as { tokens: number[] }).tokens[0]).toBe(101);
  });
});

/** A pid that was alive a moment ago and is dead now. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '0']);
  await new Promise((r) => child.on('exit', r));
  return child.pid!;
}

const hostTag =
  os
    .hostname()
    .replace(/[^A-Za-z0-9-]/g, '_')
    .slice(0, 64) || 'host';

interface CriticalResult {
  done?: boolean;
  overlaps: number;
  leftovers: number;
  sections: number;
  error?: string;
}
const resultOf = (p: Proc) =>
  p.lines.find((l) => 'done' in l || 'error' in l) as unknown as CriticalResult;

describe('withLock: exclusion after a dead holder (issue #11)', () => {
  it('3 processes × 200 non-idempotent sections after a leftover lock of a dead pid: 0 overlaps, 0 crashes, 5 rounds', async () => {
    for (let round = 0; round < 5; round++) {
      const dir = tempDir();
      const target = path.join(dir, 'critical');
      const marker = path.join(dir, 'inside');
      const dead = await deadPid();
      const lockDir = `${target}.lock`;
      mkdirSync(lockDir);
      if (round % 2 === 0) {
        // The current layout: the dead holder's token, record inside.
        writeFileSync(
          path.join(lockDir, `held.${dead}.${hostTag}.1abc`),
          JSON.stringify({ pid: dead, host: os.hostname(), since: new Date().toISOString() }),
        );
      } else {
        // The layout of the bug report: an empty lock dir and a separate owner record of a
        // dead pid, the dir not refreshed for longer than `stale`.
        writeFileSync(
          `${lockDir}.owner`,
          JSON.stringify({ pid: dead, host: os.hostname(), since: new Date().toISOString() }),
        );
        const old = new Date(Date.now() - 60_000);
        utimesSync(lockDir, old, old);
      }
      const procs = Array.from({ length: 3 }, () =>
        worker('critical', target, '200', marker, '2000'),
      );
      const codes = await Promise.all(procs.map((p) => p.exited));
      const results = procs.map(resultOf);
      expect(results.map((r) => r.error)).toEqual([undefined, undefined, undefined]);
      expect(codes).toEqual([0, 0, 0]);
      expect(results.map((r) => [r.overlaps, r.leftovers, r.sections])).toEqual([
        [0, 0, 200],
        [0, 0, 200],
        [0, 0, 200],
      ]);
      expect(existsSync(marker)).toBe(false);
      // The lock is free and its directory holds exactly the one token.
      expect(readdirSync(lockDir)).toEqual(['free']);
    }
  });

  it('the same with holders SIGKILLed at random inside their sections: survivors finish, 0 overlaps', async () => {
    for (let round = 0; round < 3; round++) {
      const dir = tempDir();
      const target = path.join(dir, 'critical');
      const marker = path.join(dir, 'inside');
      const lockDir = `${target}.lock`;
      const survivors = Array.from({ length: 3 }, () =>
        worker('critical', target, '200', marker, '2000'),
      );
      const victims = new Map<number, Proc>();
      const addVictim = () => {
        const v = worker('critical', target, '1000000', marker, '2000');
        victims.set(v.child.pid!, v);
      };
      for (let i = 0; i < 3; i++) addVictim();
      let finished = false;
      const all = Promise.all(survivors.map((s) => s.exited)).then(() => (finished = true));
      let kills = 0;
      while (!finished) {
        await jitter(100, 20);
        // Kill the holder if it is a victim: read who holds the lock from its token.
        let names: string[] = [];
        try {
          names = readdirSync(lockDir);
        } catch {
          continue; // not made yet
        }
        const held = names.find((n) => n.startsWith('held.'));
        const v = held && victims.get(Number(held.split('.')[1]));
        if (!v) continue;
        v.child.kill('SIGKILL');
        victims.delete(v.child.pid!);
        kills++;
        addVictim();
      }
      await all;
      for (const v of victims.values()) v.child.kill('SIGKILL');
      const results = survivors.map(resultOf);
      expect(results.map((r) => r.error)).toEqual([undefined, undefined, undefined]);
      expect(survivors.map((s) => s.child.exitCode)).toEqual([0, 0, 0]);
      expect(results.map((r) => [r.overlaps, r.sections])).toEqual([
        [0, 200],
        [0, 200],
        [0, 200],
      ]);
      expect(kills).toBeGreaterThan(0);
      // A victim killed inside its section leaves its marker; each is found at most once.
      const leftovers = results.reduce((n, r) => n + r.leftovers, 0);
      expect(leftovers).toBeLessThanOrEqual(kills);
    }
  });
});
