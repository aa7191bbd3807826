/**
 * `pnpm bench pool`: the pool's hot paths against baselines measured in the same run.
 * - in-process acquire+release p50/p99, 1 and 16 concurrent clients, warm pool, vs the raw
 *   file-lock round trip (withLock, same concurrency);
 * - CLI `pool acquire --no-wait` end to end on a warm pool vs `node -e 0` (also: the unbundled
 *   tsc output, and node + loading the bundle alone);
 * - `pool init --size 10` vs ten raw `git worktree add` of the same repository (also unbundled).
 * Each on the disk and on tmpfs (/dev/shm). Runs are interleaved; medians are quoted.
 * - the warm CLI cycle (`pool acquire` + `pool release`, two processes) on a real repository
 *   on tmpfs beside the same cycle of the bash peer dcrousso/worktree-pool (`wt claim` +
 *   `wt release`), and `node -e 0`. The repository is cloned from $WTPOOL_BENCH_REPO (e.g. a
 *   checkout of vitejs/vite, ~2,800 files), the peer is run from $WTPOOL_BENCH_PEER (its
 *   checkout); without them the bench says so and skips this part.
 */
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { withLock } from '@wtpool/lock';
import { WorktreePool } from '@wtpool/pool';
import {
  fmtMs,
  interleave,
  median,
  percentile,
  report,
  scratch,
  time,
  type Row,
} from './harness.js';
import { leaseStoreRows } from './pool-fleet.js';
import { GIT_ENV as TEST_GIT_ENV } from '@wtpool/testkit';

const execFileP = promisify(execFile);
const gitRevParse = (cwd: string) => execFileP('git', ['rev-parse', 'HEAD'], { cwd });

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = path.join(ROOT, 'packages/pool/bin/pool.js');
const CODE_CACHE = path.join(ROOT, 'packages/pool/bin/code-cache.js');
/** The `pool` command as a user runs it (node_modules/.bin/pool is this, or a shim that runs it): D386. */
const LAUNCHER = path.join(ROOT, 'packages/pool/bin/pool');
const GIT_ENV = { ...process.env, ...TEST_GIT_ENV };

/**
 * The same CLI run from the unbundled `tsc` output (what the bin ran before D65), for an
 * in-run comparison with the bundle.
 */
function unbundledBin(root: string): string {
  const file = path.join(root, 'pool-unbundled.mjs');
  const dist = pathToFileURL(path.join(ROOT, 'packages/pool/dist/cli-pool.js')).href;
  writeFileSync(
    file,
    `import { main } from ${JSON.stringify(dist)};\nprocess.exitCode = await main(process.argv.slice(2));\n`,
  );
  return file;
}

/** Runs the pool CLI (compiled bin) and returns its stdout, trimmed; throws on a non-zero exit. */
function runPool(args: string[], bin = BIN): string {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return r.stdout.trim();
}

/** A repository with a few hundred small files (a realistic checkout is larger; this keeps git cost modest). */
function makeRepo(root: string, config: string): string {
  const dir = path.join(root, 'repo');
  execFileSync('git', ['init', '-q', '-b', 'main', dir], { env: GIT_ENV });
  for (let i = 0; i < 200; i++)
    writeFileSync(path.join(dir, `f${i}.txt`), `file ${i}\n`.repeat(20));
  writeFileSync(path.join(dir, 'pool.config.yaml'), config);
  execFileSync('git', ['add', '-A'], { cwd: dir, env: GIT_ENV });
  execFileSync('git', ['commit', '-q', '-m', 'init'], { cwd: dir, env: GIT_ENV });
  return dir;
}

async function inProcess(tmpfs: boolean): Promise<Row[]> {
  const root = scratch('pool-lib', tmpfs);
  try {
    const dir = makeRepo(root, 'scale:\n  min: 16\n  max: 16\n');
    const pool = new WorktreePool({ repo: dir });
    await pool.initialize({ size: 16 });
    const lockTarget = path.join(root, 'raw-lock');
    const rows: Row[] = [];
    for (const clients of [1, 16]) {
      const rounds = clients === 1 ? 40 : 8;
      const subject: number[] = [];
      const baseline: number[] = [];
      const gitFloor: number[] = [];
      // Interleave: a burst of the pool, then a burst of raw lock round trips, repeated.
      for (let r = 0; r < rounds; r++) {
        await Promise.all(
          Array.from({ length: clients }, (_, c) =>
            time(async () => {
              const l = await pool.lease({ agent: `bench-${c}`, task: `round ${r}` });
              await pool.release({ slot: l.slot, agent: l.agent });
            }).then((ms) => subject.push(ms)),
          ),
        );
        await Promise.all(
          Array.from({ length: clients }, () =>
            time(() => withLock(lockTarget, () => undefined)).then((ms) => baseline.push(ms)),
          ),
        );
        // The git floor of one acquire+release: four git processes (switch; status, checkout, branch -D).
        await Promise.all(
          Array.from({ length: clients }, (_, c) =>
            time(async () => {
              for (let k = 0; k < 4; k++)
                await gitRevParse(path.join(dir, '..', 'repo.worktrees', `wt-${c + 1}`));
            }).then((ms) => gitFloor.push(ms)),
          ),
        );
      }
      const where = tmpfs ? 'tmpfs' : 'disk';
      for (const p of [50, 99]) {
        const v = percentile(subject, p);
        const b = percentile(baseline, p);
        rows.push({
          what: `acquire+release p${p}, ${clients} client${clients > 1 ? 's' : ''} (${where})`,
          value: fmtMs(v),
          baseline: `${fmtMs(b)} raw lock`,
          ratio: v / b,
          goal: clients === 16 && p === 99 ? '≤ 25 ms' : '',
        });
        const g = percentile(gitFloor, p);
        rows.push({
          what: `  same, against its git floor (4 git processes per op)`,
          value: fmtMs(v),
          baseline: `${fmtMs(g)} 4 × git`,
          ratio: v / g,
        });
      }
    }
    return rows;
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

async function cliAcquireOnly(tmpfs: boolean): Promise<Row[]> {
  const root = scratch('pool-cli1', tmpfs);
  try {
    const dir = makeRepo(root, 'scale:\n  min: 2\n  max: 2\n');
    const pool = new WorktreePool({ repo: dir });
    await pool.initialize({ size: 2 });
    const unbundled = unbundledBin(root);
    const bundle = path.join(ROOT, 'packages/pool/dist/cli-pool.bundle.cjs');
    const s = {
      base: [] as number[],
      load: [] as number[],
      bin: [] as number[],
      tsc: [] as number[],
    };
    // Times one acquire (the release runs in process afterwards, untimed).
    const acquire = async (bin: string, i: number, into: number[]) => {
      let out = '';
      into.push(
        await time(() => {
          out = runPool(['acquire', 'bench', `t${i}`, '--no-wait', '--repo', dir], bin);
        }),
      );
      await pool.release({ slot: path.basename(out), agent: 'bench' });
    };
    for (let i = 0; i < 20; i++) {
      s.base.push(await time(() => spawnSync(process.execPath, ['-e', '0'])));
      // Loading the bundle as the bin does (CommonJS through the V8 code cache, D380), no command.
      s.load.push(
        await time(() =>
          spawnSync(process.execPath, [
            '-e',
            `require(${JSON.stringify(CODE_CACHE)}).runCached(${JSON.stringify(bundle)}, () => 0)`,
          ]),
        ),
      );
      await acquire(BIN, i, s.bin);
      await acquire(unbundled, i, s.tsc);
    }
    const b = median(s.base);
    const where = tmpfs ? 'tmpfs' : 'disk';
    return [
      {
        what: `CLI \`pool acquire --no-wait\`, warm pool, median (${where})`,
        value: fmtMs(median(s.bin)),
        baseline: `${fmtMs(b)} node -e 0`,
        ratio: median(s.bin) / b,
        goal: '≤ 1.5×',
      },
      {
        what: `  same, unbundled tsc output (before D65)`,
        value: fmtMs(median(s.tsc)),
        baseline: `${fmtMs(b)} node -e 0`,
        ratio: median(s.tsc) / b,
      },
      {
        what: `  node + loading the bundle only (no command)`,
        value: fmtMs(median(s.load)),
        baseline: `${fmtMs(b)} node -e 0`,
        ratio: median(s.load) / b,
      },
    ];
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

async function init(tmpfs: boolean): Promise<Row[]> {
  const root = scratch('pool-init', tmpfs);
  try {
    const template = makeRepo(root, 'scale:\n  min: 10\n  max: 10\n');
    let i = 0;
    const fresh = () => {
      const dir = path.join(root, `r${i++}`, 'repo');
      execFileSync('git', ['clone', '-q', '--no-hardlinks', template, dir], { env: GIT_ENV });
      writeFileSync(path.join(dir, 'pool.config.yaml'), 'scale:\n  min: 10\n  max: 10\n');
      return dir;
    };
    const unbundled = unbundledBin(root);
    const samples = {
      'pool init --size 10': [] as number[],
      unbundled: [] as number[],
      '10 × git worktree add': [] as number[],
    };
    for (let r = 0; r < 4; r++) {
      const a = fresh();
      samples['pool init --size 10'].push(
        await time(() => {
          runPool(['init', '--size', '10', '--repo', a]);
        }),
      );
      const u = fresh();
      samples.unbundled.push(
        await time(() => {
          runPool(['init', '--size', '10', '--repo', u], unbundled);
        }),
      );
      const b = fresh();
      samples['10 × git worktree add'].push(
        await time(() => {
          for (let k = 1; k <= 10; k++) {
            execFileSync(
              'git',
              [
                'worktree',
                'add',
                '-q',
                '--detach',
                path.join(b, '..', 'repo.worktrees', `wt-${k}`),
                'main',
              ],
              {
                cwd: b,
                env: GIT_ENV,
              },
            );
          }
        }),
      );
    }
    const s = median(samples['pool init --size 10']);
    const u = median(samples.unbundled);
    const g = median(samples['10 × git worktree add']);
    return [
      {
        what: `\`pool init --size 10\` (new process), median (${tmpfs ? 'tmpfs' : 'disk'})`,
        value: fmtMs(s),
        baseline: `${fmtMs(g)} 10 × git worktree add`,
        ratio: s / g,
        goal: '≤ 1.3×',
      },
      {
        what: `  same, unbundled tsc output (before D65)`,
        value: fmtMs(u),
        baseline: `${fmtMs(g)} 10 × git worktree add`,
        ratio: u / g,
      },
    ];
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/** Runs a command; throws with its stderr on a non-zero exit. */
function must(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
}

/** The trace of one warm cycle, taken after the timed rounds of cliCycleVsPeer. */
let cycleTrace = '';

async function cliCycleVsPeer(): Promise<Row[]> {
  const source = process.env.WTPOOL_BENCH_REPO;
  const peer = process.env.WTPOOL_BENCH_PEER;
  if (!source || !peer) {
    console.log(
      `pool: the CLI cycle against the bash peer needs WTPOOL_BENCH_REPO (a repository to clone, e.g. a vitejs/vite checkout) and WTPOOL_BENCH_PEER (a checkout of dcrousso/worktree-pool); ${!source ? 'WTPOOL_BENCH_REPO' : 'WTPOOL_BENCH_PEER'} is not set: skipped`,
    );
    return [];
  }
  const wt = path.join(peer, 'bin', 'wt');
  const root = scratch('pool-cycle', true);
  try {
    const ours = path.join(root, 'ours', 'repo');
    const theirs = path.join(root, 'peer', 'repo');
    for (const d of [ours, theirs]) must('git', ['clone', '-q', source, d], { env: GIT_ENV });
    const files = must('git', ['ls-files'], { cwd: ours }).split('\n').length;
    writeFileSync(
      path.join(ours, 'pool.config.yaml'),
      'scale:\n  min: 1\n  max: 1\ndeps:\n  strategy: none\n',
    );
    must('sh', ['-c', 'echo pool.config.yaml >> .git/info/exclude'], { cwd: ours });
    runPool(['init', '--size', '1', '--repo', ours]);
    const peerEnv = {
      ...process.env,
      WT_POOL_ROOT: path.join(root, 'peer', 'pool'),
      WT_SESSION_ID: 'bench',
    };
    const claim = () => must(wt, ['claim', '--repo', theirs], { env: peerEnv });
    const release = () => must(wt, ['release', '--repo', theirs], { env: peerEnv });
    // Through the launcher, as `node_modules/.bin/pool` runs it (issue 26).
    const cycle = () => {
      const slot = path.basename(
        must(LAUNCHER, ['acquire', 'bench', 'cycle', '--no-wait', '--repo', ours]),
      );
      must(LAUNCHER, ['release', slot, 'bench', '--repo', ours]);
    };
    // Node's own start with and without NODE_EXTRA_CA_CERTS (which the launcher keeps from it).
    const bareEnv = { ...process.env };
    delete bareEnv.NODE_EXTRA_CA_CERTS;
    // Warm both (the peer creates its worktree on the first claim).
    claim();
    release();
    cycle();
    const s = await interleave(15, {
      ours: cycle,
      peer: () => {
        claim();
        release();
      },
      node: () => spawnSync(process.execPath, ['-e', '0']),
      bare: () => spawnSync(process.execPath, ['-e', '0'], { env: bareEnv }),
    });
    const o = median(s.ours!);
    const p = median(s.peer!);
    const n = median(s.node!);
    const bare = median(s.bare!);
    // The per-phase trace of one more cycle (WTPOOL_TRACE=1), printed under the table.
    const traced = (args: string[]) =>
      spawnSync(LAUNCHER, args, {
        encoding: 'utf8',
        env: { ...process.env, WTPOOL_TRACE: '1' },
      });
    const acq = traced(['acquire', 'bench', 'cycle', '--no-wait', '--repo', ours]);
    const rel = traced(['release', path.basename(acq.stdout.trim()), 'bench', '--repo', ours]);
    cycleTrace = [
      `$ WTPOOL_TRACE=1 pool acquire bench cycle --no-wait`,
      acq.stderr.trim(),
      `$ WTPOOL_TRACE=1 pool release ${path.basename(acq.stdout.trim())} bench`,
      rel.stderr.trim(),
    ].join('\n');
    return [
      {
        what: `CLI cycle \`pool acquire\` + \`pool release\` (2 processes), warm, ${files}-file repo (tmpfs), median`,
        value: fmtMs(o),
        baseline: `${fmtMs(p)} peer \`wt claim\` + \`wt release\``,
        ratio: o / p,
        goal: '≤ 1.0×',
      },
      {
        what: '  same, against two `node -e 0`',
        value: fmtMs(o),
        baseline: `${fmtMs(2 * n)} 2 × node -e 0`,
        ratio: o / (2 * n),
      },
      {
        what: `  same, against two \`node -e 0\` without NODE_EXTRA_CA_CERTS (${process.env.NODE_EXTRA_CA_CERTS ? 'set here' : 'not set here'})`,
        value: fmtMs(o),
        baseline: `${fmtMs(2 * bare)} 2 × node -e 0`,
        ratio: o / (2 * bare),
      },
    ];
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

export async function run(): Promise<void> {
  const rows: Row[] = [];
  rows.push(...(await cliCycleVsPeer()));
  // WTPOOL_BENCH_POOL=quick: only the CLI cycle and the in-process clients on tmpfs.
  const printTrace = () => {
    if (cycleTrace) console.log(`\nOne warm cycle, traced:\n\n\`\`\`\n${cycleTrace}\n\`\`\``);
  };
  if (process.env.WTPOOL_BENCH_POOL === 'quick') {
    rows.push(...(await inProcess(true)));
    report('pool', rows);
    return printTrace();
  }
  for (const tmpfs of [false, true]) {
    rows.push(...(await inProcess(tmpfs)));
    rows.push(...(await cliAcquireOnly(tmpfs)));
    rows.push(...(await init(tmpfs)));
  }
  rows.push(...(await leaseStoreRows())); // Redis lease store beside the file store (pool-fleet.ts)
  report('pool', rows);
  printTrace();
}
