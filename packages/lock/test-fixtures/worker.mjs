/* global performance */
// A real OS process for the lock library's race tests. Uses the compiled library (dist/).
// Usage: node worker.mjs <mode> <args…>; prints one JSON line per event on stdout.
import { existsSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { JsonStore, createExclusive, withLock, FencingCounter } from '../dist/index.js';

const [mode, file, ...rest] = process.argv.slice(2);
const say = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

async function waitFor(path) {
  while (!existsSync(path)) await sleep(1);
}

try {
  switch (mode) {
    case 'increment': {
      // increment <file> <count> [stale]
      const store = new JsonStore(file, {
        initial: { n: 0 },
        stale: Number(rest[1] ?? 20000),
        timeout: 120000,
      });
      for (let i = 0; i < Number(rest[0]); i++) await store.update((d) => void d.n++);
      say({ done: true });
      break;
    }
    case 'increment-timed': {
      // increment-timed <file> <count> <barrier>: wait for the barrier, then time the updates
      const store = new JsonStore(file, { initial: { n: 0 }, timeout: 120000 });
      await waitFor(rest[1]);
      const start = performance.timeOrigin + performance.now();
      for (let i = 0; i < Number(rest[0]); i++) await store.update((d) => void d.n++);
      say({ start, end: performance.timeOrigin + performance.now() });
      break;
    }
    case 'hold': {
      // hold <file> <holdMs> <stale>: one update whose critical section lasts holdMs
      const store = new JsonStore(file, {
        initial: { n: 0 },
        stale: Number(rest[1]),
        conflictRetries: 0,
      });
      await store.update(async (d) => {
        say({ locked: true, pid: process.pid });
        await sleep(Number(rest[0]));
        d.n += 1000;
      });
      say({ committed: true });
      break;
    }
    case 'exclusive': {
      // exclusive <target> <barrier> <id>
      await waitFor(rest[0]);
      const won = await createExclusive(file, { id: rest[1] });
      say({ won, id: rest[1] });
      break;
    }
    case 'read-loop': {
      // read-loop <file> <stopFile>: parse the raw file until stopFile exists
      let reads = 0;
      let invalid = 0;
      let lastVersion = -1;
      let backwards = 0;
      while (!existsSync(rest[0])) {
        let text;
        try {
          text = readFileSync(file, 'utf8');
        } catch {
          continue; // not created yet
        }
        reads++;
        try {
          const v = JSON.parse(text);
          if (v.version < lastVersion) backwards++;
          lastVersion = v.version;
        } catch {
          invalid++;
        }
      }
      say({ reads, invalid, backwards, lastVersion });
      break;
    }
    case 'fence': {
      // fence <counterFile> <count>
      const c = new FencingCounter(file);
      const tokens = [];
      for (let i = 0; i < Number(rest[0]); i++) tokens.push(await c.next());
      say({ tokens });
      break;
    }
    case 'lock-once': {
      // lock-once <target> <stale> <timeout>
      const started = Date.now();
      await withLock(file, () => undefined, { stale: Number(rest[0]), timeout: Number(rest[1]) });
      say({ gotLockAfterMs: Date.now() - started });
      break;
    }
    default:
      throw new Error(`unknown mode ${mode}`);
  }
} catch (e) {
  say({ error: e.code ?? 'ERR', message: e.message });
  process.exitCode = 1;
}
