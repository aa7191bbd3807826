/**
 * `pnpm bench gates`: the pre-commit gates for a one-file change in this repository (a temp
 * clone of it, warm incremental build) against a full build (`tsc -b --force` and
 * `scripts/bundle.mjs --force`), interleaved, on disk and on tmpfs. Goal: pre-commit ≤ 3 s and
 * well under the full build.
 *
 * Then the merge queue (issue #14): `integrate run` with 8 candidates on a repository of ≥ 2,000
 * files, a copy of the one named by BENCH_QUEUE_REPO (e.g. /work/ext/vite), or a generated one
 * when that is unset. Per candidate, against (merge + changed-files format + build) measured in
 * the same run, and against the full-tree format check each candidate used to run.
 * `BENCH_GATES=queue` runs only this part.
 */
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fmtMs, interleave, median, report, scratch, time } from './harness.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function clone(tmpfs: boolean): string {
  const dir = path.join(scratch('gates', tmpfs), 'repo');
  execFileSync('git', ['clone', '-q', '--local', '--no-hardlinks', ROOT, dir]);
  // Reuse this checkout's installed dependencies instead of installing again.
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  for (const pkg of ['core', 'lock', 'config', 'services', 'pool', 'monitor', 'tracks', 'gates']) {
    symlinkSync(
      path.join(ROOT, 'packages', pkg, 'node_modules'),
      path.join(dir, 'packages', pkg, 'node_modules'),
    );
  }
  // The build the gate runs: tsc, then the CLI bundles the bins import (D65).
  execFileSync('node_modules/.bin/tsc', ['-b', 'tsconfig.build.json'], { cwd: dir });
  execFileSync('node', ['scripts/bundle.mjs'], { cwd: dir });
  return dir;
}

async function measure(tmpfs: boolean): Promise<void> {
  const dir = clone(tmpfs);
  const env = { ...process.env, CI: '1', INIT_CWD: dir };
  const file = path.join(dir, 'packages/core/src/duration.ts');
  let n = 0;
  const samples = await interleave(5, {
    preCommit: () => {
      appendFileSync(file, `export const benchEdit${n++} = ${n};\n`);
      execFileSync('git', ['add', file], { cwd: dir });
      execFileSync('node', ['packages/gates/bin/gates.js', 'pre-commit', '--repo', dir], {
        cwd: dir,
        env,
        stdio: 'ignore',
      });
    },
    fullBuild: () => {
      execFileSync('node_modules/.bin/tsc', ['-b', '--force', 'tsconfig.build.json'], {
        cwd: dir,
        stdio: 'ignore',
      });
      execFileSync('node', ['scripts/bundle.mjs', '--force'], { cwd: dir, stdio: 'ignore' });
    },
  });
  const pc = median(samples.preCommit!);
  const full = median(samples.fullBuild!);
  report(`gates (${tmpfs ? 'tmpfs /dev/shm' : 'disk'})`, [
    {
      what: 'pre-commit, one-file change (beads, format, incremental build + bundles)',
      value: fmtMs(pc),
      baseline: `${fmtMs(full)} (tsc -b --force + bundle --force)`,
      ratio: pc / full,
      goal: '≤ 3000 ms',
    },
  ]);
  rmSync(path.dirname(dir), { recursive: true, force: true });
}

const sh = (cmd: string, args: string[], cwd: string, env?: NodeJS.ProcessEnv) =>
  execFileSync(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 256 << 20 })
    .toString()
    .trim();

/** A repository of ≥ 2,000 files: a copy of BENCH_QUEUE_REPO, or generated. */
function queueRepo(dir: string): string {
  const source = process.env.BENCH_QUEUE_REPO;
  if (source) {
    sh('git', ['clone', '-q', '--local', '--no-hardlinks', source, dir], ROOT);
    return `a copy of ${source}`;
  }
  console.log(
    '\n(BENCH_QUEUE_REPO is not set: the queue runs on a generated repository of 2,400 files)',
  );
  sh('git', ['init', '-q', '-b', 'main', dir], ROOT);
  for (let d = 0; d < 40; d++) {
    mkdirSync(path.join(dir, `pkg-${d}/src`), { recursive: true });
    for (let f = 0; f < 60; f++) {
      writeFileSync(
        path.join(dir, `pkg-${d}/src/mod-${f}.ts`),
        `export function f${d}_${f}(x: number): number {\n  return x * ${f} + ${d};\n}\n`,
      );
    }
  }
  return 'generated (40 dirs × 60 TypeScript files)';
}

async function measureQueue(): Promise<void> {
  const box = scratch('queue');
  const dir = path.join(box, 'repo');
  const what = queueRepo(dir);
  const PATH = `${path.join(ROOT, 'node_modules/.bin')}${path.delimiter}${process.env.PATH}`;
  const env = { ...process.env, PATH, CI: '1' };
  const git = (args: string[], cwd = dir) =>
    sh('git', ['-c', 'user.name=bench', '-c', 'user.email=bench@example.invalid', ...args], cwd);
  // The gates of the bench: this workspace's prettier, a real tsc build of a small package.
  mkdirSync(path.join(dir, 'bench-pkg/src'), { recursive: true });
  writeFileSync(
    path.join(dir, 'bench-pkg/tsconfig.json'),
    '{ "compilerOptions": { "strict": true, "noEmit": true, "module": "NodeNext", "target": "ES2022" }, "include": ["src"] }\n',
  );
  writeFileSync(path.join(dir, 'bench-pkg/src/index.ts'), 'export const one: number = 1;\n');
  writeFileSync(
    path.join(dir, 'pool.config.yaml'),
    'deps:\n  strategy: none\ngates:\n  format: prettier --check --ignore-unknown\n  build: tsc -p bench-pkg\n  test: echo no tests in the bench\n',
  );
  appendFileSync(path.join(dir, '.gitignore'), '\nnode_modules/\n');
  // The base must be green for the full-tree check: format it once with the same prettier.
  sh('prettier', ['--write', '--ignore-unknown', '--log-level', 'silent', '.'], dir, env);
  git(['add', '-A']);
  git(['commit', '-q', '--no-verify', '-m', 'bench base']);
  const files = Number(sh('sh', ['-c', 'git ls-files | wc -l'], dir));
  const tracked = git(['ls-files', '*.ts']).split('\n');
  const N = 8;
  const branches: string[] = [];
  for (let i = 0; i < N; i++) {
    const b = `cand-${i}`;
    git(['switch', '-q', '-c', b, 'main']);
    const file = tracked[Math.floor(((i + 0.5) * tracked.length) / N)]!;
    appendFileSync(path.join(dir, file), `export const bench${i}: number = ${i};\n`);
    git(['commit', '-q', '--no-verify', '-am', `candidate ${i}`]);
    branches.push(b);
  }
  git(['switch', '-q', 'main']);

  // Reference: merge + changed-files format + build, by hand, in a worktree of its own.
  const ref = path.join(box, 'ref');
  git(['worktree', 'add', '-q', '--detach', ref, 'main']);
  const base = git(['rev-parse', 'HEAD'], ref);
  const reference = async () => {
    const out: number[] = [];
    for (const b of branches) {
      out.push(
        await time(() => {
          git(['merge', '-q', '--no-ff', '--no-edit', b], ref);
          const changed = git(['diff', '--name-only', '--diff-filter=d', 'HEAD^1', 'HEAD'], ref);
          sh('prettier', ['--check', '--ignore-unknown', ...changed.split('\n')], ref, env);
          sh('tsc', ['-p', 'bench-pkg'], ref, env);
        }),
      );
      git(['reset', '-q', '--hard', base], ref);
    }
    return out;
  };
  const fullFormat = () =>
    time(() => sh('prettier', ['--check', '--ignore-unknown', '.'], ref, env));

  const refA = await reference();
  const full1 = await fullFormat();
  const run = JSON.parse(
    sh(
      'node',
      [
        path.join(ROOT, 'packages/gates/bin/integrate.js'),
        'run',
        '--branches',
        branches.join(','),
        '--json',
      ],
      dir,
      env,
    ),
  ) as { base: { status: string; ms: number }; results: { status: string; ms: number }[] };
  const refB = await reference();
  const full2 = await fullFormat();
  const kept = run.results.filter((r) => r.status === 'kept').length;
  const queue = median(run.results.map((r) => r.ms));
  const refMs = median(refA.map((a, i) => (a + refB[i]!) / 2));
  const full = median([full1, full2]);
  report(`integrate run: ${N} candidates on ${files} files (${what})`, [
    {
      what: `queue time per candidate (${kept}/${N} kept; base check once: ${fmtMs(run.base.ms)}, ${run.base.status})`,
      value: fmtMs(queue),
      baseline: `${fmtMs(refMs)} (merge + changed-files format + build, same run)`,
      ratio: queue / refMs,
      goal: '≤ 1.3×',
    },
    {
      what: 'before: full-tree format check that ran after every merge',
      value: fmtMs(full),
      baseline: `${fmtMs(refMs + full)} (reference + full-tree format)`,
      ratio: queue / (refMs + full),
      goal: 'queue ≪ before',
    },
  ]);
  rmSync(box, { recursive: true, force: true });
}

export async function run(): Promise<void> {
  if (process.env.BENCH_GATES !== 'queue') {
    await measure(false);
    await measure(true);
  }
  await measureQueue();
}
