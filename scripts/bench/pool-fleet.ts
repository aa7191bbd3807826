/**
 * `pnpm bench pool`, the lease-store part (issue 17, docs/fleet.md): in-process acquire+release
 * p50/p99 at 1 and 16 clients on the Redis lease store (a real redis-server on loopback) beside
 * the file store, same machine, same repository shape, bursts interleaved in one run.
 */
import { execFileSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { WorktreePool } from '@wtpool/pool';
import { fmtMs, percentile, scratch, time, type Row } from './harness.js';
import { GIT_ENV as TEST_GIT_ENV, startRedis } from '@wtpool/testkit';

const GIT_ENV = { ...process.env, ...TEST_GIT_ENV };

function repo(root: string, name: string, config: string): string {
  const dir = path.join(root, name);
  execFileSync('git', ['init', '-q', '-b', 'main', dir], { env: GIT_ENV });
  for (let i = 0; i < 200; i++) writeFileSync(path.join(dir, `f${i}.txt`), `${name} ${i}\n`);
  writeFileSync(path.join(dir, 'pool.config.yaml'), config);
  execFileSync('git', ['add', '-A'], { cwd: dir, env: GIT_ENV });
  execFileSync('git', ['commit', '-q', '-m', 'init'], { cwd: dir, env: GIT_ENV });
  return dir;
}

export async function leaseStoreRows(): Promise<Row[]> {
  const root = scratch('pool-store');
  const redis = await startRedis({ databases: 16 });
  try {
    const scale = 'scale:\n  min: 16\n  max: 16\n';
    const file = new WorktreePool({ repo: repo(root, 'file', scale) });
    const red = new WorktreePool({
      repo: repo(root, 'redis', `${scale}store:\n  backend: redis\n  url: ${redis.url}/0\n`),
    });
    await file.initialize({ size: 16 });
    await red.initialize({ size: 16 });
    const rows: Row[] = [];
    for (const clients of [1, 16]) {
      const rounds = clients === 1 ? 40 : 8;
      const s = { file: [] as number[], redis: [] as number[] };
      const burst = (pool: WorktreePool, into: number[], r: number) =>
        Promise.all(
          Array.from({ length: clients }, (_, c) =>
            time(async () => {
              const l = await pool.lease({ agent: `bench-${c}`, task: `round ${r}` });
              await pool.release({ slot: l.slot, agent: l.agent });
            }).then((ms) => into.push(ms)),
          ),
        );
      for (let r = 0; r < rounds; r++) {
        await burst(red, s.redis, r);
        await burst(file, s.file, r);
      }
      for (const p of [50, 99]) {
        const v = percentile(s.redis, p);
        const b = percentile(s.file, p);
        rows.push({
          what: `Redis lease store: acquire+release p${p}, ${clients} client${clients > 1 ? 's' : ''} (disk)`,
          value: fmtMs(v),
          baseline: `${fmtMs(b)} file store`,
          ratio: v / b,
        });
      }
    }
    return rows;
  } finally {
    await redis.stop();
    rmSync(root, { recursive: true, force: true });
  }
}
