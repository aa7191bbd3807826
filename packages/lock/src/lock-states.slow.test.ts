/**
 * The lock never admits two holders whatever records its directory holds (issue 21 item 3).
 * A property test: generated lock-directory states (records of dead and live owners, of another
 * host, `free` markers, partial writes, junk names, a tokenless directory), then real processes
 * (test/fixtures/worker.mjs, compiled library) run non-idempotent critical sections on it.
 * The seed is printed on failure; WTPOOL_STRESS_RUNS raises the number of generated states.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { tempDir } from '@wtpool/testkit';

const WORKER = path.join(
  path.dirname(fileURLToPath(import.meta.url)),
  '../test/fixtures/worker.mjs',
);
const hostTag =
  os
    .hostname()
    .replace(/[^A-Za-z0-9-]/g, '_')
    .slice(0, 64) || 'host';
const STALE = 2000;

const live: Array<{ kill(sig: NodeJS.Signals): void; exitCode: number | null }> = [];
afterEach(() => {
  for (const c of live.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
});

interface Result {
  done?: boolean;
  overlaps: number;
  leftovers: number;
  sections: number;
  error?: string;
}

/** `critical` workers: `sections` non-idempotent sections each; their results and exit codes. */
async function critical(target: string, procs: number, sections: number) {
  const marker = `${target}.inside`;
  const runs = Array.from({ length: procs }, () => {
    const child = spawn(
      process.execPath,
      [WORKER, 'critical', target, String(sections), marker, String(STALE)],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    live.push(child);
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    return new Promise<{ code: number | null; result: Result | undefined }>((resolve) =>
      child.on('close', (code) => {
        const lines = out
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as Result);
        resolve({ code, result: lines.find((l) => 'done' in l || 'error' in l) });
      }),
    );
  });
  return Promise.all(runs);
}

/** A pid that was alive a moment ago and is dead now. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '0']);
  await new Promise((r) => child.on('exit', r));
  return child.pid!;
}

/** A live process that never touches the lock (its record is a fake, until it is stale). */
function livePid(): number {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], {
    stdio: 'ignore',
  });
  live.push(child);
  return child.pid!;
}

/** mulberry32: a small seeded PRNG, so a failing state can be regenerated from its seed. */
function prng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PARTIAL = ['', '{"pid":', '{"pid":1,"host":"x","since":"2020', '\0\0\0', 'not json'];

/** Writes one generated state into `<target>.lock`; returns what it wrote, for the report. */
async function generate(target: string, rnd: () => number): Promise<string[]> {
  const dir = `${target}.lock`;
  const pick = <T>(xs: T[]) => xs[Math.floor(rnd() * xs.length)]!;
  const wrote: string[] = [];
  if (rnd() < 0.1) return ['(no lock directory)'];
  mkdirSync(dir, { mode: 0o700 });
  const put = (name: string, content: string) => {
    writeFileSync(path.join(dir, name), content);
    wrote.push(`${name}${content ? '' : ' (empty)'}`);
  };
  const content = (pid: number) =>
    rnd() < 0.5
      ? JSON.stringify({ pid, host: os.hostname(), since: new Date().toISOString() })
      : pick(PARTIAL);
  if (rnd() < 0.6) put('free', rnd() < 0.8 ? '' : pick(PARTIAL));
  const dead = Math.floor(rnd() * 3);
  for (let i = 0; i < dead; i++) {
    const pid = await deadPid();
    put(`held.${pid}.${hostTag}.d${i}${Math.floor(rnd() * 1e6)}`, content(pid));
  }
  if (rnd() < 0.25) {
    const pid = livePid();
    put(`held.${pid}.${hostTag}.live${Math.floor(rnd() * 1e6)}`, content(pid));
  }
  if (rnd() < 0.15) put(`held.1.other-host-${Math.floor(rnd() * 100)}.x1`, content(1));
  // Partial writes and junk: names that are not tokens must be left alone, never used.
  if (rnd() < 0.3) put(`held.${await deadPid()}`, '');
  if (rnd() < 0.3) put(`free.tmp-${Math.floor(rnd() * 1e5)}`, pick(PARTIAL));
  if (rnd() < 0.2) put('held.x.y.z', '');
  if (!wrote.length && rnd() < 0.7) {
    // Tokenless: an old-style lock, not refreshed for longer than `stale`.
    const old = new Date(Date.now() - 60_000);
    utimesSync(dir, old, old);
    wrote.push('(tokenless, old)');
  }
  return wrote;
}

const tokens = (dir: string) =>
  readdirSync(dir)
    .filter((n) => n === 'free' || /^held\.\d+\.[^.]+\.[^.]+$/.test(n))
    .sort();

describe('withLock: exclusion whatever the lock directory holds (property test, real processes)', () => {
  it('generated states of dead/live/foreign records, free markers and partial writes: 0 overlaps', async () => {
    const runs = Number(process.env.WTPOOL_STRESS_RUNS ?? 8);
    const base = Number(process.env.WTPOOL_LOCK_SEED ?? Date.now() % 1e9);
    for (let i = 0; i < runs; i++) {
      const seed = base + i;
      const dir = tempDir();
      const target = path.join(dir, 'critical');
      const state = await generate(target, prng(seed));
      const results = await critical(target, 3, 25);
      const where = `seed ${seed}, state ${JSON.stringify(state)}`;
      expect(
        results.map((r) => [r.code, r.result?.error, r.result?.overlaps, r.result?.sections]),
        where,
      ).toEqual(results.map(() => [0, undefined, 0, 25]));
      // Exactly one token is left, `free`: every extra record was removed, none used twice.
      expect(tokens(`${target}.lock`), where).toEqual(['free']);
    }
  });

  it("a dead owner's record and a `free` file together: 3 processes × 200 sections, 0 overlaps", async () => {
    const rounds = Number(process.env.WTPOOL_STRESS_RUNS ?? 5);
    for (let round = 0; round < rounds; round++) {
      const dir = tempDir();
      const target = path.join(dir, 'critical');
      const lockDir = `${target}.lock`;
      mkdirSync(lockDir, { mode: 0o700 });
      const dead = await deadPid();
      writeFileSync(
        path.join(lockDir, `held.${dead}.${hostTag}.1abc`),
        JSON.stringify({ pid: dead, host: os.hostname(), since: new Date().toISOString() }),
      );
      writeFileSync(path.join(lockDir, 'free'), '');
      const results = await critical(target, 3, 200);
      expect(
        results.map((r) => [r.code, r.result?.error, r.result?.overlaps, r.result?.sections]),
      ).toEqual([
        [0, undefined, 0, 200],
        [0, undefined, 0, 200],
        [0, undefined, 0, 200],
      ]);
      expect(tokens(lockDir)).toEqual(['free']);
    }
  });
});
