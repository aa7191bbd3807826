/** The dashboard shows the last lines of a running `pool run` (its per-lease log). */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '@wtpool/config';
import { readLeaseLog } from '@wtpool/pool';
import { makeTempRepo, PROJECT_ROOT, runCli, type TempRepo, until } from '@wtpool/testkit';
import { Dashboard } from './dashboard.js';

const POOL = path.join(PROJECT_ROOT, 'packages/pool/bin/pool.js');

describe('dashboard lease logs', () => {
  let repo: TempRepo;
  beforeAll(async () => {
    repo = await makeTempRepo();
    expect(
      (await runCli(POOL, ['init', '--size', '1', '--repo', repo.dir], { cwd: repo.dir })).code,
    ).toBe(0);
  });
  afterAll(() => repo?.cleanup());

  it('the dashboard document carries the last lines of a running lease', async () => {
    const child = spawn(
      process.execPath,
      [
        POOL,
        'run',
        'agent-3',
        'task-3',
        '--repo',
        repo.dir,
        '--',
        'sh',
        '-c',
        'echo live-1; echo live-2; exec sleep 60',
      ],
      { cwd: repo.dir, stdio: 'ignore' },
    );
    const stateDir = path.join(repo.dir, '.git', 'wtpool');
    await until('the run log has both lines', async () =>
      ((await readLeaseLog(stateDir, 'wt-1')) ?? '').includes('live-2'),
    );
    const doc = await new Dashboard(loadConfig({ repo: repo.dir })).build();
    expect(doc.logs['wt-1']?.slice(-2)).toEqual(['live-1', 'live-2']);
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await gone;
  }, 20_000);
});
