/**
 * `pnpm bench monitor`: (1) one `monitor status` sweep over a pool of 30 slots with
 * PostgreSQL and Redis (10 of them leased by live holders), in-process and as the CLI,
 * against `node -e 0`; (2) the hard-link-aware disk measurement against `du -sb` over the
 * same tree (the pool root, node_modules hard-linked into every slot), on disk and on tmpfs,
 * cold (no records) and warm (D200: directory records reused); (3) a pool of 5 slots shaped like
 * the real one (a ~63,000-entry node_modules hard-linked into each: ~316,000 entries):
 * the measure cold and warm against `du -sb`, and `monitor status` without and with the records
 * in the state dir.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { promises as fs, rmSync } from 'node:fs';
import path from 'node:path';
import { loadConfig } from '@wtpool/config';
import { collectHealth, measureTree } from '@wtpool/monitor';
import { diskRecordsDir } from '@wtpool/services';
import { WorktreePool } from '@wtpool/pool';
import { makeTempRepo, PROJECT_ROOT, startPostgres, startRedis } from '@wtpool/testkit';
import { fmtMs, interleave, median, report, scratch, time, type Row } from './harness.js';

const SLOTS = 30;
const ROUNDS = 10;
const BIN = path.join(PROJECT_ROOT, 'packages/monitor/bin/monitor.js');
const POOL = path.join(PROJECT_ROOT, 'packages/pool/bin/pool');

/** A fake dependency tree: `dirs` directories of `files` small files. */
async function makeDeps(dir: string, dirs = 40, files = 50): Promise<void> {
  for (let d = 0; d < dirs; d++) {
    const sub = path.join(dir, `pkg-${d}`);
    await fs.mkdir(sub, { recursive: true });
    for (let f = 0; f < files; f++)
      await fs.writeFile(path.join(sub, `f${f}.js`), 'x'.repeat(200 + f * 10));
  }
}

/** node_modules hard-linked into each of `targets` (what the pool's hardlink strategy does). */
function linkInto(src: string, targets: string[]): void {
  for (const t of targets) execFileSync('cp', ['-al', src, path.join(t, 'node_modules')]);
}

function du(dir: string): number {
  return Number(execFileSync('du', ['-sb', dir], { encoding: 'utf8' }).split('\t')[0]);
}

/** Lets the tree's directories age past RACY_MS, so that their records can be reused. */
const settle = () => new Promise((r) => setTimeout(r, 2500));

async function diskRows(root: string, where: string): Promise<Row[]> {
  await settle();
  const cold = await measureTree(root);
  const theirs = du(root);
  const warmBytes = (await measureTree(root, { cache: cold.cache })).bytes;
  const s = await interleave(ROUNDS, {
    cold: () => measureTree(root),
    warm: () => measureTree(root, { cache: cold.cache }),
    du: () => du(root),
  });
  const b = median(s.du!);
  const eq = (n: number) => (n === theirs ? 'bytes equal' : `DIFFER ${n} vs ${theirs}`);
  return [
    {
      what: `disk: measureTree cold vs du -sb, ${where} (${cold.inodes} inodes; ${eq(cold.bytes)})`,
      value: fmtMs(median(s.cold!)),
      baseline: `${fmtMs(b)} (du -sb)`,
      ratio: median(s.cold!) / b,
    },
    {
      what: `disk: measureTree warm (directory records) vs du -sb, ${where} (${eq(warmBytes)})`,
      value: fmtMs(median(s.warm!)),
      baseline: `${fmtMs(b)} (du -sb)`,
      ratio: median(s.warm!) / b,
    },
  ];
}

/**
 * The pool: 5 slots of a monorepo whose node_modules (600 packages of 100 files in 5
 * dirs, distinct inodes made by `cp -r` like a package store) is hard-linked into every slot.
 */
async function realShape(env: NodeJS.ProcessEnv): Promise<Row[]> {
  const repo = await makeTempRepo();
  try {
    await fs.writeFile(
      path.join(repo.dir, 'pool.config.yaml'),
      'scale:\n  min: 5\n  max: 5\ndeps:\n  strategy: none\n',
    );
    const loaded = loadConfig({ repo: repo.dir });
    const pool = new WorktreePool(loaded);
    await pool.initialize({ size: 5 });
    const store = path.join(repo.sandbox, 'store');
    const pkg = path.join(store, 'pkg-0');
    for (let d = 0; d < 5; d++) {
      await fs.mkdir(path.join(pkg, `d${d}`), { recursive: true });
      for (let f = 0; f < 20; f++)
        await fs.writeFile(path.join(pkg, `d${d}`, `f${f}.js`), 'x'.repeat(300 + 97 * f + d));
    }
    for (let i = 1; i < 600; i++) execFileSync('cp', ['-r', pkg, path.join(store, `pkg-${i}`)]);
    const st = await pool.readState();
    linkInto(
      store,
      Object.values(st.slots).map((s) => s.path),
    );
    const root = loaded.config.pool.root ?? path.join(repo.sandbox, 'repo.worktrees');
    const rows = await diskRows(root, '5 slots × 63k-entry node_modules');
    const records = diskRecordsDir(loaded.repo.stateDir);
    const status = () =>
      spawnSync(process.execPath, [BIN, 'status', '--json', '--repo', repo.dir], {
        cwd: repo.dir,
        env,
      });
    status(); // writes the records
    const s = await interleave(ROUNDS, {
      noCache: () => {
        rmSync(records, { recursive: true, force: true });
        status();
      },
      warmCache: () => status(),
      du: () => du(root),
      node: () => spawnSync(process.execPath, ['-e', '0']),
    });
    const node = median(s.node!);
    rows.push(
      {
        what: '`monitor status --json` CLI on that pool, no records in the state dir (first run)',
        value: fmtMs(median(s.noCache!)),
        baseline: `${fmtMs(median(s.du!))} (du -sb)`,
        ratio: median(s.noCache!) / median(s.du!),
        goal: '≤ 1 s',
      },
      {
        what: '`monitor status --json` CLI on that pool, records from the last run',
        value: fmtMs(median(s.warmCache!)),
        baseline: `${fmtMs(node)} (node -e 0)`,
        ratio: median(s.warmCache!) / node,
        goal: '≤ 1 s',
      },
    );
    return rows;
  } finally {
    await repo.cleanup();
  }
}

/**
 * The real pool (WTPOOL_BENCH_MONITOR_REPO: a local clone of a pnpm monorepo, e.g.
 * vite): `pool init --size 5` with dependencies (one install, four hard-link clones, the disk
 * records primed as they arrive, D397) on tmpfs, then the first `monitor status` of the pool:
 * before each round the records are put back as provisioning left them (not timed). Beside it,
 * the same measure in a child process timing only its load + walk, `du -sb` of the slots and
 * `node -e 0`, interleaved.
 */
async function primedReal(env: NodeJS.ProcessEnv): Promise<Row[]> {
  const source = process.env.WTPOOL_BENCH_MONITOR_REPO!;
  const dir = path.join(scratch('monitor-primed', true), 'repo');
  execFileSync('git', ['clone', '-q', '--no-hardlinks', source, dir]);
  await fs.writeFile(
    path.join(dir, 'pool.config.yaml'),
    'scale:\n  min: 5\n  max: 5\ndeps:\n  strategy: auto\n',
  );
  // pnpm cannot verify a packageManager pin offline (D182): the installed pnpm runs instead.
  await fs.appendFile(path.join(dir, '.npmrc'), '\nmanage-package-manager-versions=false\n');
  execFileSync('git', ['add', 'pool.config.yaml', '.npmrc'], { cwd: dir });
  execFileSync(
    'git',
    [
      '-c',
      'user.name=bench',
      '-c',
      'user.email=bench@invalid',
      'commit',
      '-qm',
      'pool',
      '--no-verify',
    ],
    { cwd: dir },
  );
  const t0 = Date.now();
  const init = spawnSync(POOL, ['init', '--repo', dir], { cwd: dir, env, encoding: 'utf8' });
  if (init.status !== 0) throw new Error(`pool init failed (exit ${init.status}): ${init.stderr}`);
  console.error(`(set-up: pool init --size 5 with dependencies in ${Date.now() - t0} ms)`);
  const stateDir = path.join(dir, '.git', 'wtpool');
  const records = diskRecordsDir(stateDir);
  const primed = `${records}.primed`;
  execFileSync('cp', ['-a', records, primed]);
  const restore = () => {
    rmSync(records, { recursive: true, force: true });
    execFileSync('cp', ['-a', primed, records]);
  };
  const root = path.join(path.dirname(dir), 'repo.worktrees');
  const status = () =>
    spawnSync(process.execPath, [BIN, 'status', '--json', '--fresh', '--repo', dir], {
      cwd: dir,
      env,
      encoding: 'utf8',
    });
  restore();
  const once = JSON.parse(status().stdout) as { disk: { bytes: number; dirsRead: number } };
  const theirs = du(root);
  if (once.disk.bytes !== theirs)
    throw new Error(`monitor status says ${once.disk.bytes} bytes, du -sb ${theirs}`);
  // The measure alone, in a fresh process (its lists are not cached from an earlier round).
  const script =
    `import { loadDiskRecords, measureTree } from '@wtpool/services';` +
    `const t = performance.now();` +
    `const m = await measureTree(${JSON.stringify(root)}, { cache: loadDiskRecords(${JSON.stringify(stateDir)}, ${JSON.stringify(root)}) });` +
    `console.log(JSON.stringify({ ms: performance.now() - t, bytes: m.bytes, read: m.dirsRead, reused: m.dirsReused }));`;
  const s: Record<'first' | 'later' | 'inproc' | 'du' | 'node', number[]> = {
    first: [],
    later: [],
    inproc: [],
    du: [],
    node: [],
  };
  let measured = { bytes: 0, read: 0, reused: 0 };
  for (let r = 0; r < ROUNDS; r++) {
    restore();
    s.first.push(await time(status));
    // The next status: the records that one left (the sources' listings too).
    s.later.push(await time(status));
    restore();
    const out = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: path.join(PROJECT_ROOT, 'packages/monitor'),
      env,
      encoding: 'utf8',
    });
    const m = JSON.parse(out.stdout) as typeof measured & { ms: number };
    s.inproc.push(m.ms);
    measured = m;
    s.du.push(await time(() => du(root)));
    s.node.push(await time(() => spawnSync(process.execPath, ['-e', '0'])));
  }
  const d = median(s.du);
  const eq = measured.bytes === theirs ? 'bytes equal' : `DIFFER ${measured.bytes} vs ${theirs}`;
  rmSync(path.dirname(dir), { recursive: true, force: true });
  rmSync(root, { recursive: true, force: true });
  return [
    {
      what: `first \`monitor status --json\` on 5 slots of ${path.basename(source)} with node_modules, records as provisioning left them (${eq})`,
      value: fmtMs(median(s.first)),
      baseline: `${fmtMs(d)} (du -sb)`,
      ratio: median(s.first) / d,
      goal: '≤ 1 s, ≤ 0.1×',
    },
    {
      what: 'the next `monitor status --json` (the records the first one left)',
      value: fmtMs(median(s.later)),
      baseline: `${fmtMs(d)} (du -sb)`,
      ratio: median(s.later) / d,
      goal: '≤ 1 s',
    },
    {
      what: `the first one's disk measure alone: records loaded + walk (${measured.read} dirs listed, ${measured.reused} records reused)`,
      value: fmtMs(median(s.inproc)),
      baseline: `${fmtMs(d)} (du -sb)`,
      ratio: median(s.inproc) / d,
      goal: '≤ 0.1×',
    },
    {
      what: 'node -e 0, same rounds',
      value: fmtMs(median(s.node)),
      baseline: `${fmtMs(d)} (du -sb)`,
      ratio: median(s.node) / d,
    },
  ];
}

export async function run(): Promise<void> {
  const env = { ...process.env, CI: '1' };
  if (process.env.WTPOOL_BENCH_MONITOR_ONLY === 'primed') {
    if (!process.env.WTPOOL_BENCH_MONITOR_REPO)
      throw new Error('WTPOOL_BENCH_MONITOR_ONLY=primed needs WTPOOL_BENCH_MONITOR_REPO');
    report('monitor: first status on a real pool', await primedReal(env));
    return;
  }
  const [repo, pg, redis] = await Promise.all([makeTempRepo(), startPostgres(), startRedis()]);
  const holders: ReturnType<typeof spawn>[] = [];
  const shm = scratch('monitor-disk', true);
  try {
    await fs.writeFile(
      path.join(repo.dir, 'pool.config.yaml'),
      `scale:\n  min: ${SLOTS}\n  max: ${SLOTS}\npostgres:\n  url: ${pg.url}\nredis:\n  url: ${redis.url}\ndeps:\n  strategy: none\n`,
    );
    const loaded = loadConfig({ repo: repo.dir });
    const pool = new WorktreePool(loaded);
    const t0 = Date.now();
    await pool.initialize({ size: SLOTS });
    console.error(`(set-up: ${SLOTS} slots in ${Date.now() - t0} ms)`);
    for (let i = 0; i < 10; i++) {
      const h = spawn('sleep', ['600'], { stdio: 'ignore' });
      holders.push(h);
      await pool.lease({ agent: `agent-${i}`, task: `task ${i}`, holderPid: h.pid!, wait: false });
    }
    const st = await pool.readState();
    const deps = path.join(repo.sandbox, 'deps');
    await makeDeps(deps);
    linkInto(
      deps,
      Object.values(st.slots).map((s) => s.path),
    );

    const health = await collectHealth(loaded);
    if (health.pool?.size !== SLOTS || !health.postgres?.ok || !health.redis?.ok)
      throw new Error(`bench set-up is wrong: ${JSON.stringify(health.alerts)}`);
    const once = spawnSync(process.execPath, [BIN, 'status', '--json', '--repo', repo.dir], {
      cwd: repo.dir,
      env,
      encoding: 'utf8',
    });
    const parsed = JSON.parse(once.stdout) as { pool: { size: number } | null };
    if (![0, 20, 21].includes(once.status!) || parsed.pool?.size !== SLOTS)
      throw new Error(`monitor status failed (exit ${once.status}): ${once.stderr}`);
    const sweep = await interleave(ROUNDS, {
      inproc: () => collectHealth(loaded),
      cli: () =>
        spawnSync(process.execPath, [BIN, 'status', '--json', '--repo', repo.dir], {
          cwd: repo.dir,
          env,
        }),
      node: () => spawnSync(process.execPath, ['-e', '0']),
    });
    // With the daemon running, status takes the disk figure from its latest sample.
    spawnSync(process.execPath, [BIN, 'start', '--interval', '1m', '--repo', repo.dir], { env });
    const warm = await interleave(ROUNDS, {
      cli: () =>
        spawnSync(process.execPath, [BIN, 'status', '--json', '--repo', repo.dir], { env }),
      node: () => spawnSync(process.execPath, ['-e', '0']),
    });
    spawnSync(process.execPath, [BIN, 'stop', '--repo', repo.dir], { env });
    const cli = median(sweep.cli!);
    const node = median(sweep.node!);
    const rows: Row[] = [
      {
        what: `status sweep in-process, ${SLOTS} slots (10 leased), PG + Redis + disk (${health.disk.inodes} inodes)`,
        value: fmtMs(median(sweep.inproc!)),
        baseline: `${fmtMs(node)} (node -e 0)`,
        ratio: median(sweep.inproc!) / node,
        goal: '≤ 250 ms',
      },
      {
        what: '`monitor status --json` CLI, same pool (disk: records of its last run)',
        value: fmtMs(cli),
        baseline: `${fmtMs(node)} (node -e 0)`,
        ratio: cli / node,
        goal: '≤ 250 ms',
      },
      {
        what: '`monitor status --json` CLI, daemon running (disk from its sample)',
        value: fmtMs(median(warm.cli!)),
        baseline: `${fmtMs(median(warm.node!))} (node -e 0)`,
        ratio: median(warm.cli!) / median(warm.node!),
        goal: '≤ 250 ms',
      },
    ];
    rows.push(
      ...(await diskRows(
        loaded.config.pool.root ?? path.join(repo.sandbox, 'repo.worktrees'),
        'pool root on disk',
      )),
    );
    // The same shape on tmpfs: tool overhead without the disk.
    for (let i = 1; i <= SLOTS; i++) await fs.mkdir(path.join(shm, `wt-${i}`));
    await makeDeps(path.join(shm, 'deps'));
    linkInto(
      path.join(shm, 'deps'),
      Array.from({ length: SLOTS }, (_, i) => path.join(shm, `wt-${i + 1}`)),
    );
    rows.push(...(await diskRows(shm, 'same shape on tmpfs')));
    rows.push(...(await realShape(env)));
    if (process.env.WTPOOL_BENCH_MONITOR_REPO) rows.push(...(await primedReal(env)));
    report('monitor', rows);
  } finally {
    for (const h of holders) h.kill('SIGKILL');
    await fs.rm(shm, { recursive: true, force: true });
    await Promise.all([pg.stop(), redis.stop(), repo.cleanup()]);
  }
}
