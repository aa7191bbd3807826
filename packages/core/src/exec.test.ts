import { describe, expect, it } from 'vitest';
import { until } from '@wtpool/testkit';
import { reportError } from './cli.js';
import { failure } from './errors.js';
import { git, lastLine, run, runOk, runSync, stopChildren } from './exec.js';
import { parseProcStat, readProcStat } from './procstat.js';

const node = process.execPath;

describe('run', () => {
  it('captures stdout, stderr and both interleaved, with the exit code', async () => {
    const r = await run(node, [
      '-e',
      'process.stdout.write("a\\n"); setTimeout(() => { process.stderr.write("b\\n"); process.exit(3) }, 20)',
    ]);
    expect(r).toMatchObject({
      code: 3,
      stdout: 'a\n',
      stderr: 'b\n',
      output: 'a\nb\n',
      timedOut: false,
    });
  });

  it('passes argv untouched: no shell ever sees it', async () => {
    const tricky = ['$(touch /tmp/x)', "a'b", 'c;d', '*'];
    const r = await run(node, [
      '-e',
      'console.log(JSON.stringify(process.argv.slice(1)))',
      ...tricky,
    ]);
    expect(JSON.parse(r.stdout)).toEqual(tricky);
  });

  it('feeds stdin and merges extraEnv over env', async () => {
    const r = await run(
      node,
      [
        '-e',
        'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(s+process.env.WTX))',
      ],
      { input: 'in-', extraEnv: { WTX: 'env' } },
    );
    expect(r.stdout).toBe('in-env\n');
  });

  it('a missing program resolves with 127', async () => {
    const r = await run('wtpool-no-such-program', []);
    expect(r.code).toBe(127);
    expect(r.output).toMatch(/not found/);
  });

  it('keeps only the tail when asked', async () => {
    const r = await run(node, ['-e', 'process.stdout.write("x".repeat(10000) + "END")'], {
      tail: 100,
    });
    expect(r.stdout).toHaveLength(100);
    expect(r.stdout.endsWith('END')).toBe(true);
  });

  it('a timeout stops the child and says so', async () => {
    const r = await run(node, ['-e', 'setInterval(() => {}, 1000)'], { timeoutMs: 200 });
    expect(r).toMatchObject({ timedOut: true, signal: 'SIGTERM', code: 128 + 15 });
  });

  it('a group is stopped whole: the grandchild goes too', async () => {
    // The child starts a grandchild that would outlive a plain kill of the child. Stopped only
    // once the grandchild's pid is printed, so the test does not depend on the machine's speed.
    let seen = '';
    const r = await run(
      node,
      [
        '-e',
        `const c = require('child_process').spawn(process.execPath, ['-e', 'setInterval(()=>{}, 1000)'], { stdio: 'ignore' });
         console.log(c.pid); setInterval(() => {}, 1000);`,
      ],
      {
        group: true,
        onData: (d) => {
          seen += d;
          if (seen.includes('\n')) stopChildren('SIGTERM');
        },
      },
    );
    expect(r.signal).toBe('SIGTERM');
    const grandchild = Number(r.stdout.trim());
    expect(grandchild).toBeGreaterThan(0);
    // Signalled with the group: it exits (if it did not, this loop would run into the test timeout).
    const alive = () => {
      const st = readProcStat(grandchild);
      return st !== null && st.state !== 'Z' && st.ppid !== 0;
    };
    await until('the grandchild exits', () => !alive());
  });

  it('stopChildren signals running children', async () => {
    // The child says when it runs; stopping it then is what is tested (not a timer of ours).
    const p = run(node, ['-e', 'console.log("up"); setInterval(() => {}, 1000)'], {
      onData: (d) => d.includes('up') && stopChildren('SIGTERM'),
    });
    expect((await p).signal).toBe('SIGTERM');
  });

  it('runSync has the same result shape', () => {
    const r = runSync(node, ['-e', 'console.log("s"); console.error("e"); process.exit(4)']);
    expect(r).toMatchObject({ code: 4, stdout: 's\n', stderr: 'e\n' });
    expect(runSync('wtpool-no-such-program', []).code).toBe(127);
  });
});

describe('runOk and git', () => {
  it('a failure is one line naming the command and its last line, output in details', async () => {
    const e = await runOk(node, ['-e', 'console.error("first\\nlast words"); process.exit(2)'], {
      what: 'the thing',
    }).catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'ERR_COMMAND', exitCode: 1 });
    expect((e as Error).message).toBe('the thing failed (exit 2): last words');
    expect((e as { details: { output: string } }).details.output).toBe('first\nlast words\n');
  });

  it('a timeout is ERR_COMMAND_TIMEOUT', async () => {
    const e = await runOk(node, ['-e', 'setInterval(() => {}, 1000)'], { timeoutMs: 100 }).catch(
      (x: unknown) => x,
    );
    expect(e).toMatchObject({ code: 'ERR_COMMAND_TIMEOUT' });
  });

  it('git output with a password in a remote URL prints redacted in --json', async () => {
    const url = 'https://agent:ghp_SECRET123@127.0.0.1:1/repo.git';
    const e = await git(['ls-remote', url], { cwd: '/' }).catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'ERR_GIT' });
    // The raw command line in details holds the URL with its token.
    const raw = JSON.stringify((e as { details: unknown }).details);
    expect(raw).toContain('ghp_SECRET123');
    let stdout = '';
    const write = process.stdout.write.bind(process.stdout);
    const errWrite = process.stderr.write.bind(process.stderr);
    process.stdout.write = ((s: string) => ((stdout += s), true)) as typeof process.stdout.write;
    process.stderr.write = (() => true) as typeof process.stderr.write;
    try {
      expect(reportError(e, { json: true, debug: false })).toBe(1);
    } finally {
      process.stdout.write = write;
      process.stderr.write = errWrite;
    }
    expect(stdout).not.toContain('ghp_SECRET123');
    const doc = JSON.parse(stdout) as { error: { details: { command: string[] } } };
    expect(doc.error.details.command).toEqual([
      'git',
      'ls-remote',
      'https://agent:***@127.0.0.1:1/repo.git',
    ]);
  });

  it('details are redacted at any depth', () => {
    const e = failure('ERR_GIT', 'x', {
      details: { nested: [{ url: 'postgres://u:pw1@h/db' }], n: 3, ok: true, none: null },
    });
    expect(e.toJSON().details).toEqual({
      nested: [{ url: 'postgres://u:***@h/db' }],
      n: 3,
      ok: true,
      none: null,
    });
  });
});

describe('lastLine and /proc/<pid>/stat', () => {
  it('lastLine is the last non-empty line', () => {
    expect(lastLine('a\nb\n\n')).toBe('b');
    expect(lastLine('')).toBe('');
  });

  it('parses a command name with spaces and parentheses', () => {
    const st = parseProcStat('42 (a b) c)) S 7 42 42 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 12345 0 0');
    expect(st).toEqual({ pid: 42, comm: 'a b) c)', state: 'S', ppid: 7, startTicks: 12345 });
    expect(parseProcStat('garbage')).toBeNull();
  });

  it('reads this process', () => {
    const st = readProcStat(process.pid);
    if (process.platform !== 'linux') return expect(st).toBeNull();
    expect(st).toMatchObject({ pid: process.pid, ppid: process.ppid });
  });
});
