import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { formatTrace } from './trace.js';

const here = path.dirname(fileURLToPath(import.meta.url));

describe('WTPOOL_TRACE', () => {
  it('orders the steps by start and sums them by kind', () => {
    const text = formatTrace(
      [
        { kind: 'git', what: 'git status', at: 90, ms: 6 },
        { kind: 'lock', what: 'wait state.json', at: 80, ms: 1 },
        { kind: 'git', what: 'git switch', at: 100, ms: 4 },
      ],
      120,
    );
    const lines = text.split('\n');
    expect(lines.slice(1, 4).map((l) => l.trim().split(/\s+/).slice(-2).join(' '))).toEqual([
      'wait state.json',
      'git status',
      'git switch',
    ]);
    // Kinds in order of their first step: 1 ms of lock, 6 + 4 ms of git; 120 ms in all.
    expect(lines.at(-1)).toBe(
      'trace: total 120.0 ms (lock 1.0 ms, git 10.0 ms; steps may overlap)',
    );
  });

  it('times every child the runner starts, on stderr at exit, only when asked', () => {
    const script = `import { run } from ${JSON.stringify(path.join(here, 'exec.ts'))}; await run('git', ['--version']);`;
    const go = (env: Record<string, string>) =>
      spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
        env: { ...process.env, ...env },
        encoding: 'utf8',
      });
    const on = go({ WTPOOL_TRACE: '1' });
    expect(on.status, on.stderr).toBe(0);
    expect(on.stderr).toMatch(/^trace: \+\s*[\d.]+ ms\s+[\d.]+ ms {2}git {4}git --version$/m);
    expect(on.stderr).toMatch(/^trace: total [\d.]+ ms \(git [\d.]+ ms; steps may overlap\)$/m);
    const off = go({ WTPOOL_TRACE: '' });
    expect(off.status).toBe(0);
    expect(off.stderr).not.toContain('trace:');
  });
});
