import { describe, expect, it } from 'vitest';
import { parseArgv, commandHelp, familyHelp, runCli, Output, type CliSpec } from './cli.js';
import { parseDuration, formatDuration } from './values.js';
import { redact, conflictError, ExitCode } from './errors.js';

const spec: CliSpec = {
  bin: 'pool',
  summary: 'test',
  commands: [
    {
      name: 'acquire',
      summary: 'lease a slot',
      args: [
        { name: 'agent', description: 'who' },
        { name: 'task', description: 'what' },
      ],
      options: [
        {
          name: 'priority',
          type: 'int',
          min: 0,
          max: 4,
          default: 2,
          description: 'queue priority',
        },
        { name: 'wait', type: 'boolean', default: true, description: 'block' },
        { name: 'timeout', type: 'duration', description: 'how long to wait' },
      ],
      run: async () => 0,
    },
    { name: 'scale status', summary: 'capacity', run: async () => 0 },
    { name: 'scale out', aliases: ['scale-up'], summary: 'grow', run: async () => 0 },
    {
      name: 'run',
      summary: 'run a command',
      args: [
        { name: 'agent', description: 'who' },
        { name: 'cmd', description: 'command', rest: true },
      ],
      run: async () => 0,
    },
  ],
};

describe('parseArgv', () => {
  it('reads positionals, --opt=v, --opt v, --no-flag and defaults', () => {
    const p = parseArgv(spec, [
      'acquire',
      'agent-1',
      'task-17',
      '--priority=0',
      '--no-wait',
      '--timeout',
      '2m',
    ]);
    expect(p.cmd?.name).toBe('acquire');
    expect(p.ctx.args).toEqual({ agent: 'agent-1', task: 'task-17' });
    expect(p.ctx.opts).toMatchObject({ priority: 0, wait: false, timeout: 120_000 });
    expect(parseArgv(spec, ['acquire', 'a', 't']).ctx.opts.priority).toBe(2);
  });

  it('refuses a value given to a switch (--json=1), exit 2', () => {
    for (const argv of [
      ['scale', 'status', '--json=1'],
      ['scale', 'status', '--json=true'],
      ['scale', 'status', '--no-json=0'],
    ]) {
      let e: (Error & { exitCode?: number }) | undefined;
      try {
        parseArgv(spec, argv);
      } catch (x) {
        e = x as Error & { exitCode?: number };
      }
      expect(e?.exitCode, argv.join(' ')).toBe(2);
      expect(e?.message).toMatch(/^--json takes no value/);
    }
  });

  it('matches multi-word commands and aliases', () => {
    expect(parseArgv(spec, ['scale', 'status', '--json']).cmd?.name).toBe('scale status');
    expect(parseArgv(spec, ['scale-up']).cmd?.name).toBe('scale out');
  });

  it('passes everything after -- to a rest argument', () => {
    const p = parseArgv(spec, ['run', 'a1', '--', 'npm', 'test', '--watch']);
    expect(p.ctx.args.cmd).toEqual(['npm', 'test', '--watch']);
  });

  it.each([
    [['acquire', 'a'], /missing argument <task>/],
    [['acquire', 'a', 't', 'extra'], /unexpected argument "extra"/],
    [['acquire', 'a', 't', '--bogus'], /unknown option --bogus/],
    [
      ['acquire', 'a', 't', '--priority=9'],
      /--priority must be an integer from 0 to 4, got string "9"/,
    ],
    [['acquire', 'a', 't', '--priority=x'], /--priority must be an integer/],
    [['acquire', 'a', 't', '--timeout=soon'], /--timeout must be a duration/],
    [['frobnicate'], /unknown command/],
  ])('refuses %j with a usage error', (argv, msg) => {
    let err: unknown;
    try {
      parseArgv(spec, argv);
    } catch (e) {
      err = e;
    }
    expect((err as { exitCode?: number }).exitCode).toBe(ExitCode.USAGE);
    expect((err as Error).message).toMatch(msg);
  });

  it("`<group> --help` lists that group's commands, not the whole family", async () => {
    const group = familyHelp(spec, 'scale');
    expect(group).toContain('Usage: pool scale <command> [options]');
    expect(group).toMatch(/scale status\s+capacity/);
    expect(group).toMatch(/scale out\s+grow/);
    expect(group).not.toContain('lease a slot');
    const written: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((chunk: string) => (written.push(chunk), true)) as typeof write;
    try {
      expect(await runCli(spec, ['scale', '--help'])).toBe(ExitCode.OK);
    } finally {
      process.stdout.write = write;
    }
    expect(written.join('')).toBe(group);
  });

  it('generates help from the same table', () => {
    const help = commandHelp(spec, spec.commands[0]!);
    expect(help).toContain('Usage: pool acquire <agent> <task> [options]');
    expect(help).toMatch(/--priority INT\s+queue priority \(default: 2\)/);
    expect(help).toContain('--json');
  });
});

describe('durations', () => {
  it.each([
    ['90s', 90_000],
    ['30m', 1_800_000],
    ['2h', 7_200_000],
    ['1500', 1500],
    ['250ms', 250],
  ])('%s = %d ms', (s, ms) => expect(parseDuration(s)).toBe(ms));

  it('refuses garbage', () => expect(() => parseDuration('5 weeks')).toThrow(/invalid duration/));
  it('formats for humans', () => expect(formatDuration(200_000)).toBe('3m20s'));
});

describe('redact', () => {
  it('hides passwords in URLs and query strings, keeps the rest', () => {
    expect(redact('DATABASE_URL=postgres://app:s3cr3t@db:5432/app_wt2 ok')).toBe(
      'DATABASE_URL=postgres://app:***@db:5432/app_wt2 ok',
    );
    expect(redact('redis://:hunter2@127.0.0.1:6379/3')).toBe('redis://:***@127.0.0.1:6379/3');
    expect(redact('postgres://h/db?password=x&sslmode=require')).toBe(
      'postgres://h/db?password=***&sslmode=require',
    );
    expect(redact('postgres://user@host/db')).toBe('postgres://user@host/db');
    expect(redact('x9postgres://u:pw@h')).toBe('x9postgres://u:***@h');
  });

  it('takes time linear in the text: a 1 MB word costs about what copying it through JSON does', () => {
    // The old pattern retried the scheme at every letter of a run: 64 KB took seconds.
    const word = 'abcdefg9'.repeat(1 << 17);
    const time = (f: () => unknown) => {
      const runs = [0, 0, 0].map(() => {
        const t = process.hrtime.bigint();
        f();
        return Number(process.hrtime.bigint() - t);
      });
      return runs.sort((a, b) => a - b)[1]!;
    };
    const base = time(() => JSON.parse(JSON.stringify({ word })));
    expect(redact(word)).toBe(word);
    expect(time(() => redact(word))).toBeLessThan(50 * base);
  });

  it('applies to JSON results', () => {
    let written = '';
    const out = new Output(true, {
      write: (s: string) => ((written += s), true),
    } as unknown as NodeJS.WritableStream);
    out.result({ env: { DATABASE_URL: 'postgres://app:pw@h/db' } }, '');
    expect(JSON.parse(written).env.DATABASE_URL).toBe('postgres://app:***@h/db');
  });

  it('applies to error JSON', () => {
    const e = conflictError('cannot reach postgres://u:pw@h/db', { hint: 'check redis://:pw@h' });
    expect(JSON.stringify(e.toJSON())).not.toContain('pw@');
    expect(e.exitCode).toBe(5);
  });
});

describe('--version', () => {
  it('is the version of the root package.json and of the publishable package', async () => {
    const { readFileSync } = await import('node:fs');
    const { VERSION } = await import('./cli.js');
    const root = new URL('../../../package.json', import.meta.url);
    const pub = new URL('../../worktree-pool/package.json', import.meta.url);
    expect(VERSION).toBe(JSON.parse(readFileSync(root, 'utf8')).version);
    expect(VERSION).toBe(JSON.parse(readFileSync(pub, 'utf8')).version);
  });
});
