/**
 * Duration flags take their config key's bounds (issue 21, item 9): `--ttl` refuses what
 * `pool.leaseTtl` refuses, with a usage error (exit 2) naming the flag, before anything runs.
 */
import { describe, expect, it } from 'vitest';
import { parseArgv } from '@wtpool/core';
import { spec } from './cli-pool.js';

const refusal = (argv: string[]) => {
  try {
    parseArgv(spec, argv);
  } catch (e) {
    return e as Error & { exitCode: number };
  }
  throw new Error(`expected ${argv.join(' ')} to be refused`);
};

describe('pool duration flags share their key bounds', () => {
  it.each(['0', '0s', '0ms', '00', '-1s', '1ms', '1e99', '9s', '8d', '99999999999999999999d', ''])(
    'acquire --ttl %j exits 2 naming --ttl',
    (v) => {
      for (const argv of [
        ['acquire', 'a', 't', '--ttl', v],
        ['acquire', 'a', 't', `--ttl=${v}`],
        ['run', 'a', 't', `--ttl=${v}`, '--', 'true'],
      ]) {
        const e = refusal(argv);
        expect(e.exitCode).toBe(2);
        expect(e.message).toMatch(/^--ttl must be a duration .* from 10s to 7d, got string /);
      }
    },
  );

  it.each([
    ['10s', 10_000],
    ['7d', 7 * 86_400_000],
    ['2h', 2 * 3_600_000],
    ['90000', 90_000],
  ])('accepts --ttl %s as %d ms', (v, ms) => {
    expect(parseArgv(spec, ['acquire', 'a', 't', '--ttl', v]).ctx.opts.ttl).toBe(ms);
  });

  it('--timeout takes pool.waitTimeout bounds: 0 (do not wait) to 24d', () => {
    expect(parseArgv(spec, ['acquire', 'a', 't', '--timeout', '0']).ctx.opts.timeout).toBe(0);
    expect(refusal(['acquire', 'a', 't', '--timeout', '-1s']).exitCode).toBe(2);
    expect(refusal(['acquire', 'a', 't', '--timeout', '25d']).message).toMatch(/from 0ms to 24d/);
  });

  it('help shows the key, its default and bounds', () => {
    const acquire = spec.commands.find((c) => c.name === 'acquire')!;
    const ttl = acquire.options!.find((o) => o.name === 'ttl')!;
    expect(ttl.description).toContain('(default: pool.leaseTtl, 2h; from 10s to 7d)');
  });
});
