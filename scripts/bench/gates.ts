/**
 * `pnpm bench gates`: the pre-commit gates for a one-file change in this repository (a temp
 * clone of it, warm incremental build) against a full build (`tsc -b --force` and
 * `scripts/bundle.mjs --force`), interleaved, on disk and on tmpfs. Goal: pre-commit ≤ 3 s and
 * well under the full build.
 */
import { execFileSync } from 'node:child_process';
import { appendFileSync, rmSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fmtMs, interleave, median, report, scratch } from './harness.js';

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

export async function run(): Promise<void> {
  await measure(false);
  await measure(true);
}
