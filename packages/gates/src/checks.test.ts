/** The pure part of per-path gates: which commands the mappings that apply select. */
import { describe, expect, it } from 'vitest';
import { planChecks } from './checks.js';

const gates = {
  build: 'tsc -b',
  test: 'pnpm test',
  paths: {
    'packages/a/**': { build: 'tsc -p packages/a', test: 'node --test packages/a' },
    'packages/b/**': { typecheck: 'tsc -p packages/b --noEmit' },
    'packages/c/**': { build: 'tsc -p packages/a' },
  },
};
const plan = (applying: string[], unmapped: boolean) =>
  planChecks(gates, applying, unmapped).map((c) => `${c.gate}:${c.command} [${c.for}]`);

describe('planChecks', () => {
  it('a mapped change runs its own checks, not the defaults', () => {
    expect(plan(['packages/a/**'], false)).toEqual([
      'build:tsc -p packages/a [packages/a/**]',
      'test:node --test packages/a [packages/a/**]',
    ]);
  });

  it('a check a mapping leaves out falls back to the default (the build is never dropped)', () => {
    expect(plan(['packages/b/**'], false)).toEqual([
      'build:tsc -b [packages/b/**]',
      'typecheck:tsc -p packages/b --noEmit [packages/b/**]',
      'test:pnpm test [packages/b/**]',
    ]);
  });

  it('unmapped paths add the defaults; a command named twice runs once', () => {
    expect(plan(['packages/a/**', 'packages/c/**'], true)).toEqual([
      'build:tsc -p packages/a [packages/a/**, packages/c/**]',
      'build:tsc -b [default]',
      'test:node --test packages/a [packages/a/**]',
      'test:pnpm test [packages/c/**, default]',
    ]);
  });

  it('an empty change still runs the default build', () => {
    expect(plan([], false)).toEqual(['build:tsc -b [default]', 'test:pnpm test [default]']);
  });
});
