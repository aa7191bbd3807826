/**
 * `pnpm bench monorepo`: the first `pool init` on a real pnpm monorepo whose main checkout has
 * no node_modules, against what a user would do by hand, measured in the same run, interleaved:
 *   subject   `pool init --size N` (N worktrees, one install, N-1 hard-link clones, hooks)
 *   baseline  N × `git worktree add` + one `pnpm install --frozen-lockfile --prefer-offline`
 * Each round starts from a fresh local clone (no node_modules anywhere). One warm-up install
 * fills pnpm's store first, so both sides install from the same warm store.
 *
 * Env: WTPOOL_BENCH_MONOREPO (required: a local clone of a pnpm monorepo, e.g.
 * `git clone https://github.com/vitejs/vite /dev/shm/vite`), BENCH_MONOREPO_SIZE (default 10),
 * BENCH_MONOREPO_ROUNDS (default 2). The environment is passed to the installs as it is (vite's
 * playwright-chromium postinstall needs PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 where its CDN is
 * unreachable, see docs/benchmarks.md).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fmtMs, median, report, scratch, time } from './harness.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const POOL = path.join(ROOT, 'packages/pool/bin/pool.js');
const SIZE = Number(process.env.BENCH_MONOREPO_SIZE ?? 10);
const ROUNDS = Number(process.env.BENCH_MONOREPO_ROUNDS ?? 2);
const say = (m: string) => process.stderr.write(`[monorepo] ${m}\n`);

/** Runs a step; `show` passes its output through (pool init's progress, on a terminal). */
function sh(cmd: string, args: string[], cwd: string, show = false): void {
  const r = spawnSync(cmd, args, {
    cwd,
    // The pool runs installs with CI=true (no prompts); the baseline's install gets the same.
    env: show ? process.env : { ...process.env, CI: 'true' },
    stdio: ['ignore', show ? 'inherit' : 'pipe', show ? 'inherit' : 'pipe'],
    encoding: 'utf8',
  });
  if (r.status !== 0) {
    throw new Error(
      `${cmd} ${args.join(' ')} failed in ${cwd} (exit ${r.status}): ${(r.stderr ?? '').trim().split('\n').slice(-3).join(' | ')}`,
    );
  }
}

/** A fresh clone of the monorepo with a pool config committed; nothing installed. */
function freshClone(source: string, tag: string): string {
  const dir = path.join(scratch(`monorepo-${tag}`, true), 'repo');
  execFileSync('git', ['clone', '-q', '--local', source, dir]);
  writeFileSync(
    path.join(dir, 'pool.config.yaml'),
    `scale:\n  min: 1\n  max: ${SIZE}\ndeps:\n  strategy: auto\n`,
  );
  // Both sides use the installed pnpm: pnpm 10 refuses to switch to a pin whose registry
  // signature it cannot verify (vite's pnpm@10.34.5 here, D182), and `pnpm bench` does not pass
  // npm_config_* variables on to the installs.
  appendFileSync(path.join(dir, '.npmrc'), '\nmanage-package-manager-versions=false\n');
  execFileSync('git', ['add', 'pool.config.yaml', '.npmrc'], { cwd: dir });
  execFileSync(
    'git',
    ['-c', 'user.name=bench', '-c', 'user.email=bench@invalid', 'commit', '-qm', 'pool config'],
    { cwd: dir, env: { ...process.env, SKIP_SIMPLE_GIT_HOOKS: '1' } },
  );
  return dir;
}

const drop = (dir: string) => rmSync(path.dirname(dir), { recursive: true, force: true });

export async function run(): Promise<void> {
  const source = process.env.WTPOOL_BENCH_MONOREPO;
  if (!source || !existsSync(path.join(source, 'pnpm-lock.yaml'))) {
    console.log(
      `\n## monorepo\n\n(skipped: WTPOOL_BENCH_MONOREPO is ${source ? `${source}, which has no pnpm-lock.yaml` : 'not set'}; set it to a local clone of a pnpm monorepo, e.g. \`git clone https://github.com/vitejs/vite /dev/shm/vite\`)`,
    );
    return;
  }
  const files = execFileSync('git', ['ls-files'], { cwd: source, encoding: 'utf8' })
    .split('\n')
    .filter(Boolean).length;
  say(`${source}: ${files} files; ${ROUNDS} round(s) of init --size ${SIZE} vs baseline`);

  say('warm-up: one install to fill the package store (not timed)…');
  const warm = freshClone(source, 'warm');
  sh('pnpm', ['install', '--frozen-lockfile', '--prefer-offline'], warm);
  drop(warm);

  const subject: number[] = [];
  const baseline: number[] = [];
  for (let r = 1; r <= ROUNDS; r++) {
    const a = freshClone(source, 'base');
    say(`round ${r}: baseline, ${SIZE} × git worktree add + one pnpm install…`);
    baseline.push(
      await time(() => {
        for (let i = 1; i <= SIZE; i++) {
          sh('git', ['worktree', 'add', '-q', '--detach', `${a}.wt/${i}`], a);
        }
        sh('pnpm', ['install', '--frozen-lockfile', '--prefer-offline'], `${a}.wt/1`);
      }),
    );
    say(`round ${r}: baseline ${fmtMs(baseline.at(-1)!)}`);
    drop(a);

    const b = freshClone(source, 'pool');
    say(`round ${r}: pool init --size ${SIZE} (its own progress below)…`);
    subject.push(
      await time(() => sh('node', [POOL, 'init', '--size', String(SIZE), '--repo', b], b, true)),
    );
    say(`round ${r}: pool init ${fmtMs(subject.at(-1)!)}`);
    drop(b);
  }
  const s = median(subject);
  const base = median(baseline);
  report(
    `monorepo: first pool init on ${path.basename(source)} (${files} files, no node_modules)`,
    [
      {
        what: `pool init --size ${SIZE} (median of ${ROUNDS})`,
        value: fmtMs(s),
        baseline: `${SIZE} × git worktree add + 1 pnpm install: ${fmtMs(base)}`,
        ratio: s / base,
        goal: '≤ 1.3×',
      },
    ],
  );
}
