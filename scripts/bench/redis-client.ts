/**
 * `pnpm bench redis-client`: the Redis client decision (D385) measured in one run. Interleaved
 * rounds (BENCH_ROUNDS, default 30), medians, load average printed:
 *   - `node -e 0` (the floor of any process);
 *   - node + the hand-written client (@wtpool/services/resp), bundled with esbuild as the CLIs
 *     are (D65), doing what a band lease does: SELECT (URL /db), PING, FLUSHDB;
 *   - node + ioredis, bundled the same way, doing the same in one pipeline;
 *   - the real CLI: `pool acquire --no-wait` and `pool release` on a pool whose `redis.url` is
 *     a real redis-server (each lease SELECTs and FLUSHes the slot's band DB).
 * The verdict row: what ioredis would add to one CLI acquire, against the 10 % bar of issue 22.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { GIT_ENV, startRedis } from '@wtpool/testkit';
import { fmtMs, interleave, median, report, scratch, type Row } from './harness.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SERVICES = path.join(ROOT, 'packages/services');
const BIN = path.join(ROOT, 'packages/pool/bin/pool.js');
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 30);

const must = (cmd: string, args: string[], cwd?: string): string => {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', env: { ...process.env, ...GIT_ENV } });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
};

/** Bundles the two clients' entry points into dir (ESM, node, everything inlined). */
async function bundleClients(dir: string): Promise<{ resp: string; ioredis: string }> {
  const req = createRequire(path.join(SERVICES, 'package.json'));
  const respPath = req.resolve('@wtpool/services/resp');
  const ioredisPath = req.resolve('ioredis');
  writeFileSync(
    path.join(dir, 'resp-entry.mjs'),
    `import { redisPipeline } from ${JSON.stringify(respPath)};\n` +
      `await redisPipeline(process.argv[2], [['PING'], ['FLUSHDB']]);\n`,
  );
  writeFileSync(
    path.join(dir, 'ioredis-entry.mjs'),
    `import Redis from ${JSON.stringify(ioredisPath)};\n` +
      `const r = new Redis(process.argv[2], { lazyConnect: true });\n` +
      `await r.connect(); await r.pipeline().ping().flushdb().exec(); r.disconnect();\n`,
  );
  const { build } = await import('esbuild');
  await build({
    absWorkingDir: ROOT,
    entryPoints: {
      resp: path.join(dir, 'resp-entry.mjs'),
      ioredis: path.join(dir, 'ioredis-entry.mjs'),
    },
    outdir: dir,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    logLevel: 'error',
    banner: {
      js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);",
    },
  });
  return { resp: path.join(dir, 'resp.mjs'), ioredis: path.join(dir, 'ioredis.mjs') };
}

export async function run(): Promise<void> {
  const redis = await startRedis({ databases: 64 });
  const root = scratch('redis-client');
  try {
    const { resp, ioredis } = await bundleClients(root);
    const url = `${redis.url}/5`;
    const node =
      (...args: string[]) =>
      () => {
        const r = spawnSync(process.execPath, args, { encoding: 'utf8' });
        if (r.status !== 0) throw new Error(`node ${args.join(' ')}: ${r.stderr}`);
      };
    // A pool of one slot whose band is the real server.
    const repo = path.join(root, 'repo');
    must('git', ['init', '-q', '-b', 'main', repo]);
    for (let i = 0; i < 50; i++) writeFileSync(path.join(repo, `f${i}.txt`), `file ${i}\n`);
    writeFileSync(
      path.join(repo, 'pool.config.yaml'),
      `scale:\n  min: 1\n  max: 1\ndeps:\n  strategy: none\nredis:\n  url: ${redis.url}\n  bandStart: 10\n`,
    );
    must('git', ['add', '-A'], repo);
    must('git', ['commit', '-qm', 'init'], repo);
    must(process.execPath, [BIN, 'init', '--size', '1', '--repo', repo]);
    let slot = '';
    const acquire = () => {
      slot = path.basename(
        must(process.execPath, [BIN, 'acquire', 'bench', 't', '--no-wait', '--repo', repo]),
      );
    };
    const release = () => {
      must(process.execPath, [BIN, 'release', slot, 'bench', '--repo', repo]);
    };
    const connections = () =>
      Number(
        /total_connections_received:(\d+)/.exec(
          execFileSync('redis-cli', ['-p', String(redis.port), 'INFO', 'stats'], {
            encoding: 'utf8',
          }),
        )?.[1],
      );
    // Warm every subject once (page cache, the slot's first provisioning), and check that the
    // CLI cycle really talks to the server (else the acquire row would measure nothing of Redis).
    for (const f of [node('-e', '0'), node(resp, url), node(ioredis, url)]) f();
    const before = connections();
    acquire();
    release();
    if (!(connections() > before)) throw new Error('pool acquire/release did not connect to Redis');
    const s = await interleave(ROUNDS, {
      bare: node('-e', '0'),
      resp: node(resp, url),
      ioredis: node(ioredis, url),
      acquire,
      release,
    });
    const [b, r, i, a, rel] = ['bare', 'resp', 'ioredis', 'acquire', 'release'].map((k) =>
      median(s[k]!),
    ) as [number, number, number, number, number];
    const added = i - r;
    const rows: Row[] = [
      { what: '`node -e 0`', value: fmtMs(b) },
      {
        what: 'node + bundled resp.ts: SELECT, PING, FLUSHDB',
        value: fmtMs(r),
        baseline: `${fmtMs(b)} (node -e 0)`,
        ratio: r / b,
      },
      {
        what: 'node + bundled ioredis: SELECT, PING, FLUSHDB',
        value: fmtMs(i),
        baseline: `${fmtMs(r)} (resp.ts)`,
        ratio: i / r,
      },
      {
        what: 'CLI `pool acquire --no-wait` (band on a real redis-server)',
        value: fmtMs(a),
        baseline: `${fmtMs(b)} (node -e 0)`,
        ratio: a / b,
      },
      {
        what: 'CLI `pool release` (band flushed)',
        value: fmtMs(rel),
        baseline: `${fmtMs(b)} (node -e 0)`,
        ratio: rel / b,
      },
      {
        what: 'ioredis − resp.ts per process, against one CLI acquire',
        value: fmtMs(added),
        baseline: `${fmtMs(a)} (CLI acquire)`,
        ratio: added / a,
        goal: 'ioredis if ≤ 0.10×',
      },
    ];
    report(
      `Redis client: hand-written vs ioredis, bundled, per process (${ROUNDS} interleaved rounds, medians)`,
      rows,
    );
  } finally {
    await redis.stop();
    rmSync(root, { recursive: true, force: true });
  }
}
