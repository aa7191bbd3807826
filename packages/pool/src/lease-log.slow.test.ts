import { promises as fs, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempRepo, PROJECT_ROOT, runCli, tempDir, type TempRepo } from '@wtpool/testkit';
import { LeaseLog, leaseLogPath, readLeaseLog } from './lease-log.js';

const POOL = path.join(PROJECT_ROOT, 'packages/pool/bin/pool.js');

describe('per-lease log of pool run', () => {
  let repo: TempRepo;
  const pool = (...a: string[]) => runCli(POOL, [...a, '--repo', repo.dir], { cwd: repo.dir });
  beforeAll(async () => {
    repo = await makeTempRepo();
    expect((await pool('init', '--size', '1')).code).toBe(0);
  });
  afterAll(() => repo?.cleanup());

  it('keeps the command output (stdout and stderr) in a 0600 file that `pool logs` prints', async () => {
    const r = await pool(
      'run',
      'agent-1',
      'task-1',
      '--',
      'sh',
      '-c',
      'echo out-line; echo err-line >&2',
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('out-line');
    expect(r.stderr).toContain('err-line');
    const stateDir = path.join(repo.dir, '.git', 'wtpool');
    const file = leaseLogPath(stateDir, 'wt-1');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const logs = await pool('logs', 'wt-1');
    expect(logs.code).toBe(0);
    const lines = logs.stdout.split('\n');
    expect(lines[0]).toMatch(/^# .* agent-1 "task-1" on pool\/wt-1\/task-1: sh -c/);
    expect(lines.slice(1).filter(Boolean).sort()).toEqual(['err-line', 'out-line']);
    // A new lease starts a new log.
    expect((await pool('run', 'agent-2', 'task-2', '--', 'echo', 'second')).code).toBe(0);
    const again = (await pool('logs', 'wt-1')).stdout;
    expect(again).toContain('second');
    expect(again).not.toContain('out-line');
  });

  it('refuses a slot id that is not one (exit 2) and says when there is no log (exit 4)', async () => {
    expect((await pool('logs', '../state')).code).toBe(2);
    expect((await pool('logs', 'wt-9')).code).toBe(4);
  });
});

describe('LeaseLog bound', () => {
  it('rotates past the bound: at most two files, the newest output kept', async () => {
    const dir = tempDir('wtpool-leaselog-');
    const log = await LeaseLog.start(dir, 'wt-1', '# header', 100);
    for (let i = 0; i < 30; i++) log.write(`line ${String(i).padStart(2, '0')}\n`);
    log.close();
    const file = leaseLogPath(dir, 'wt-1');
    expect(statSync(file).size).toBeLessThanOrEqual(100);
    expect(statSync(`${file}.1`).size).toBeLessThanOrEqual(100);
    const text = (await readLeaseLog(dir, 'wt-1'))!;
    expect(text.endsWith('line 29\n')).toBe(true);
    expect(text).not.toContain('# header'); // rotated away
    await fs.rm(dir, { recursive: true, force: true });
  });
});
