/**
 * One install for the pool (deps.strategy auto, no node_modules in the main checkout): slots
 * provisioned together wait for the first one's install and hard-link clone it. The package
 * manager is a stand-in `pnpm` on PATH that records each install and writes a small tree; each
 * round provisions six slots at once, in one process, as `pool init` does.
 */
import { promises as fs, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempRepo, type TempRepo } from '@wtpool/testkit';
import { installDeps, loadTreeRecords } from './index.js';

const SLOTS = 6;
const ROUNDS = 5;

describe('auto without a main install: one install, the others clone it', () => {
  let repo: TempRepo;
  let bin: string;
  let log: string;
  const path0 = process.env.PATH;
  beforeAll(async () => {
    repo = await makeTempRepo({
      files: {
        'package.json': '{"name":"app","private":true}',
        'pnpm-lock.yaml': "lockfileVersion: '9.0'\n",
        '.gitignore': 'node_modules\n',
      },
    });
    bin = path.join(repo.sandbox, 'bin');
    log = path.join(repo.sandbox, 'installs.log');
    await fs.mkdir(bin);
    await fs.writeFile(
      path.join(bin, 'pnpm'),
      [
        '#!/bin/sh',
        'if [ "$1" = --version ]; then echo 10.0.0; exit 0; fi',
        `echo "$PWD" >> '${log}'`,
        'mkdir -p node_modules/.pnpm/dep@1.0.0/node_modules/dep',
        'echo "{}" > node_modules/.pnpm/dep@1.0.0/node_modules/dep/package.json',
        'ln -s .pnpm/dep@1.0.0/node_modules/dep node_modules/dep',
        '',
      ].join('\n'),
      { mode: 0o755 },
    );
    process.env.PATH = `${bin}:${path0}`;
  });
  afterAll(async () => {
    process.env.PATH = path0;
    await repo?.cleanup();
  });

  it(`provisions ${SLOTS} slots at once ${ROUNDS} times with exactly one install each time`, async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const state = path.join(repo.sandbox, `state-${round}`);
      const wts = Array.from({ length: SLOTS }, (_, i) =>
        path.join(repo.sandbox, `r${round}`, `wt-${i + 1}`),
      );
      for (const wt of wts) await repo.git(['worktree', 'add', '-q', '--detach', wt]);
      await fs.rm(log, { force: true });
      const results = await Promise.all(
        wts.map((wt) =>
          installDeps(repo.dir, wt, { strategy: 'auto', command: null }, { stateDir: state }),
        ),
      );
      const installs = readFileSync(log, 'utf8').trim().split('\n');
      expect(installs, `round ${round}`).toHaveLength(1);
      const seed = installs[0]!;
      expect(results.filter((r) => r.strategy === 'pnpm')).toHaveLength(1);
      for (const [i, r] of results.entries()) {
        if (wts[i] === seed) continue;
        // From the install or from a slot that cloned it: the same files either way.
        expect(r.strategy).toBe('hardlink');
        expect(wts.filter((w) => w !== wts[i])).toContain(r.source);
        const f = 'node_modules/.pnpm/dep@1.0.0/node_modules/dep/package.json';
        expect((await fs.stat(path.join(wts[i]!, f))).ino).toBe(
          (await fs.stat(path.join(seed, f))).ino,
        );
      }
      // Each slot's records were primed: its store is one record, and all of them were read
      // while nothing wrote (the install's own too: its clones' priming waits for it).
      for (const wt of wts) {
        const recs = loadTreeRecords(state, wt);
        expect(recs.get('node_modules/.pnpm')?.unit, wt).toBe('store');
        expect(
          [...recs.values()].every((r) => r.quiet),
          wt,
        ).toBe(true);
      }
    }
  });
});
