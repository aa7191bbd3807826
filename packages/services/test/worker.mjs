// A real OS process using the compiled @wtpool/services (build first), for race tests.
//   worker.mjs lease <repo> <slot> <events.jsonl>      lease one slot, print its env as JSON
//   worker.mjs release <repo> <slot> <events.jsonl>    release it
//   worker.mjs stress <repo> <slots> <cycles> <log>    random lease/release cycles
import { appendFileSync, mkdirSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig, slotNames } from '@wtpool/config';
import { createExclusive } from '@wtpool/lock';
import pg from 'pg';
import { createProviders, leaseSlot, releaseSlot } from '../dist/index.js';
import { redisPipeline } from '../dist/resp.js';

const [mode, repoDir, a, b, c] = process.argv.slice(2);
const loaded = loadConfig({ repo: repoDir });
const providers = await createProviders(loaded);
const names = (n) => {
  const x = slotNames(loaded.config, loaded.repo, n);
  mkdirSync(x.path, { recursive: true }); // the pool's worktree; a directory is enough here
  return x;
};
const ctx = (n, eventsFile) => ({
  config: loaded.config,
  repo: loaded.repo,
  names: names(n),
  event: async (type, details) =>
    appendFileSync(eventsFile, JSON.stringify({ type, ...details, pid: process.pid }) + '\n'),
  progress: () => {},
  warn: () => {},
});
const lease = { agent: 'worker', task: 't', token: 1 };

async function stress(slots, cycles, log) {
  const write = (o) => appendFileSync(log, JSON.stringify({ ...o, pid: process.pid }) + '\n');
  const leases = path.join(loaded.repo.stateDir, 'test-leases');
  await fs.mkdir(leases, { recursive: true });
  for (let done = 0; done < cycles;) {
    const n = 1 + Math.floor(Math.random() * slots);
    const file = path.join(leases, `wt-${n}`);
    if (!(await createExclusive(file, { pid: process.pid }))) continue; // someone holds the slot
    const cx = ctx(n, log.replace(/\.jsonl$/, '.events.jsonl'));
    try {
      const env = await leaseSlot(providers, cx, lease);
      write({ op: 'got', slot: n, redis: env.REDIS_DB, db: env.DATABASE_NAME, port: env.PORT });
      // The slot must come back pristine: no key, no row from the previous lease.
      const [size] = await redisPipeline(env.REDIS_URL, [['DBSIZE']]);
      const client = new pg.Client({ connectionString: env.DATABASE_URL });
      await client.connect();
      const rows = (await client.query('SELECT count(*)::int AS n FROM items')).rows[0].n;
      await client.query('INSERT INTO items (who) VALUES ($1)', [String(process.pid)]);
      await client.end();
      await redisPipeline(env.REDIS_URL, [['SET', 'mark', String(process.pid)]]);
      write({ op: 'state', slot: n, keys: size, rows });
      await sleep(Math.random() * 15);
      write({ op: 'free', slot: n, redis: env.REDIS_DB, db: env.DATABASE_NAME, port: env.PORT });
      await releaseSlot(providers, cx);
    } finally {
      await fs.rm(file, { force: true });
    }
    done++;
  }
}

try {
  if (mode === 'lease') {
    console.log(JSON.stringify(await leaseSlot(providers, ctx(Number(a), b), lease)));
  } else if (mode === 'release') {
    await releaseSlot(providers, ctx(Number(a), b));
  } else if (mode === 'stress') {
    await stress(Number(a), Number(b), c);
  } else throw new Error(`unknown mode ${mode}`);
} catch (e) {
  console.error(JSON.stringify({ code: e.code, exitCode: e.exitCode, message: e.message }));
  process.exitCode = e.exitCode ?? 1;
}
