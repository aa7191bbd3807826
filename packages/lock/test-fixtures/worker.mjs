/* global performance, setImmediate */
// A real OS process for the lock library's race tests. Uses the compiled library (dist/).
// Usage: node worker.mjs <mode> <args…>; prints one JSON line per event on stdout.
import { existsSync, linkSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { JsonStore, createExclusive, withLock, FencingCounter } from '../dist/index.js';

const [mode, file, ...rest] = process.argv.slice(2);
const say = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

/** Alive and not a zombie (a killed child its parent has not reaped yet is dead to us). */
function alive(pid) {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if (e.code !== 'EPERM') return false;
  }
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] !== 'Z';
  } catch {
    return false;
  }
}

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
    case 'critical': {
      // critical <target> <count> <marker> <stale>: `count` non-idempotent critical sections.
      // Each creates <marker> exclusively (content: our pid, complete when it appears), may
      // yield to the event loop, and removes it before leaving. A marker already there, or gone
      // when we remove it, is an overlap, unless its creator is dead (a holder the test killed
      // inside its section): then it is a leftover, removed and counted apart.
      const [count, marker, stale] = rest;
      const tmp = `${marker}.${process.pid}`;
      writeFileSync(tmp, String(process.pid));
      let overlaps = 0;
      let leftovers = 0;
      for (let i = 0; i < Number(count); i++) {
        await withLock(
          file,
          async () => {
            try {
              linkSync(tmp, marker);
            } catch (e) {
              if (e.code !== 'EEXIST') throw e;
              const owner = Number(readFileSync(marker, 'utf8'));
              if (alive(owner)) {
                overlaps++;
                say({ overlap: 'marker present', owner, section: i });
                return;
              }
              leftovers++;
              unlinkSync(marker);
              linkSync(tmp, marker);
            }
            if (i % 3 === 0) await new Promise((r) => setImmediate(r));
            if (i % 50 === 7) await sleep(30); // long enough to write the holder record
            try {
              unlinkSync(marker);
            } catch (e) {
              if (e.code !== 'ENOENT') throw e;
              overlaps++;
              say({ overlap: 'marker gone', section: i });
            }
          },
          { stale: Number(stale), timeout: 600000 },
        );
      }
      rmSync(tmp, { force: true });
      say({ done: true, overlaps, leftovers, sections: Number(count) });
      break;
    }
    default:
      throw new Error(`unknown mode ${mode}`);
  }
} catch (e) {
  say({ error: e.code ?? 'ERR', message: e.message });
  process.exitCode = 1;
}
