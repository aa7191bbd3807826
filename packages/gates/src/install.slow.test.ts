/**
 * `gates install` on a husky-style repository (core.hooksPath=hooks/_, absent from worktrees),
 * with a foreign pre-commit hook, then a worktree added afterwards; and the beads gate. The
 * quick build gate stands in for tsc (the subject is the hooks).
 */
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { TempRepo } from '@wtpool/testkit';
import type { InstallResult } from './install.js';
import { ENV, commit, gates, makeQuickRepo } from './fixtures.testutil.js';

let repo: TempRepo | undefined;
afterEach(async () => {
  await repo?.cleanup();
  repo = undefined;
});

describe('gates install', () => {
  it('replaces a relative core.hooksPath, chains a foreign hook, and covers worktrees added later', async () => {
    repo = await makeQuickRepo();
    await repo.git(['config', 'core.hooksPath', 'hooks/_']);
    const foreign = path.join(repo.dir, '.git/hooks/pre-commit');
    const ran = path.join(repo.sandbox, 'foreign-ran');
    writeFileSync(foreign, `#!/bin/sh\ntouch ${ran}\n`);
    chmodSync(foreign, 0o755);

    const r = await gates(['install', '--json'], repo.dir);
    expect(r.code, r.stderr).toBe(0);
    const res = r.json<InstallResult>();
    expect(res.previousHooksPath).toBe('hooks/_');
    expect(res.chained).toBe(`${foreign}.pre-gates`);
    expect(res.worktrees.every((w) => w.active)).toBe(true);
    expect(await repo.git(['config', '--get-all', 'core.hooksPath']).catch(() => '')).toBe('');

    // Idempotent: a second install keeps the chained hook and changes nothing else.
    const again = (await gates(['install', '--json'], repo.dir)).json<InstallResult>();
    expect(again.chained).toBeNull();
    expect(existsSync(`${foreign}.pre-gates`)).toBe(true);

    const wt = path.join(repo.sandbox, 'later');
    await repo.git(['worktree', 'add', '-q', '-b', 'later', wt]);
    const hook = await repo.git(
      ['rev-parse', '--path-format=absolute', '--git-path', 'hooks/pre-commit'],
      wt,
    );
    expect(hook).toBe(foreign);
    const bad = await commit(repo, wt, { 'src/x.ts': 'export const x = 1; // BROKEN\n' });
    expect(bad.stdout + bad.stderr).toContain('the build gate failed');
    expect(existsSync(ran)).toBe(false); // the gates stop the commit before the chained hook
    await repo.write('src/x.ts', 'export const x: number = 1;\n', wt);
    const good = await commit(repo, wt, { 'src/x.ts': 'export const x: number = 1;\n' });
    expect(good.code, good.stdout + good.stderr).toBe(0);
    expect(existsSync(ran)).toBe(true);
  });

  it('fails with exit 4 outside a git repository', async () => {
    repo = await makeQuickRepo();
    const r = await gates(['install'], repo.sandbox);
    expect(r.code).toBe(4);
  });
});

describe('beads gate', () => {
  it('flushes with bd and stages the issue file when .beads/ exists', async () => {
    repo = await makeQuickRepo();
    // bd itself is not installable here: a stand-in with the old CLI's `sync --flush-only`.
    const bin = path.join(repo.sandbox, 'bin');
    const calls = path.join(repo.sandbox, 'bd-calls');
    await repo.write('../bin/bd', '');
    writeFileSync(
      path.join(bin, 'bd'),
      `#!/bin/sh\necho "$*" >> ${calls}\nif [ "$1 $2" = "sync --help" ]; then echo "  --flush-only  flush"; exit 0; fi\necho '{"id":"bd-1"}' > .beads/issues.jsonl\n`,
    );
    chmodSync(path.join(bin, 'bd'), 0o755);
    await repo.commit({ '.beads/config.yaml': 'issue-prefix: bd\n' });
    await repo.write('src/y.ts', 'export const y: number = 1;\n');
    await repo.git(['add', 'src/y.ts']);
    const r = await gates(['pre-commit', '--json'], repo.dir, {
      PATH: `${bin}${path.delimiter}${ENV.PATH}`,
    });
    expect(r.code, r.stdout).toBe(0);
    expect(readFileSync(calls, 'utf8')).toContain('sync --flush-only');
    expect((await repo.git(['diff', '--cached', '--name-only'])).split('\n').sort()).toEqual([
      '.beads/issues.jsonl',
      'src/y.ts',
    ]);
  });
});
