/**
 * The lint rule of the one error model (eslint.config.js, D170): a bare Error in library code
 * (packages/*\/src, not tests or test helpers) fails `pnpm lint`. Runs the repository's real
 * ESLint config on text placed at paths inside and outside the rule's scope.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const eslint = new ESLint({ cwd: root });

async function bareErrorFindings(code: string, file: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: path.join(root, file) });
  return result!.messages
    .filter((m) => m.ruleId === 'no-restricted-syntax')
    .map((m) => `${m.line}:${m.message.split(':')[0]}`);
}

const BARE = [
  "export function a(): never { throw new Error('boom'); }",
  "export const b = () => Promise.reject(new TypeError('boom'));",
  "export function c(): never { throw Error('boom'); }",
].join('\n');

describe('no bare Error in packages/*/src', () => {
  it('flags new Error, new TypeError and Error() in library code', async () => {
    expect(await bareErrorFindings(BARE, 'packages/services/src/probe.ts')).toEqual([
      '1:no bare Error in packages/*/src',
      '2:no bare Error in packages/*/src',
      '3:no bare Error in packages/*/src',
    ]);
  });

  it('accepts WtpoolError factories', async () => {
    const ok = [
      "import { failure, usageError } from '@wtpool/core';",
      "export function a(): never { throw failure('ERR_INTERNAL', 'boom'); }",
      "export function b(): never { throw usageError('bad'); }",
    ].join('\n');
    expect(await bareErrorFindings(ok, 'packages/services/src/probe.ts')).toEqual([]);
  });

  it('leaves tests, test helpers and the test kit alone', async () => {
    for (const file of [
      'packages/services/src/probe.test.ts',
      'packages/services/src/probe.slow.test.ts',
      'packages/services/src/probe.testutil.ts',
      'packages/testkit/src/probe.ts',
    ]) {
      expect(await bareErrorFindings(BARE, file), file).toEqual([]);
    }
  });
});

async function findings(code: string, file: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: path.join(root, file) });
  return result!.messages.map((m) => `${m.line}:${m.ruleId}`);
}

describe('no fixed sleep as synchronisation in tests', () => {
  const SLEEPS = [
    'export async function a() { await new Promise((r) => setTimeout(r, 50)); }',
    "import { setTimeout as sleep } from 'node:timers/promises';",
    'export const b = () => sleep(10);',
  ].join('\n');

  it('flags a promise around setTimeout and timers/promises in a test or test helper', async () => {
    for (const file of ['packages/pool/src/probe.test.ts', 'packages/pool/src/probe.testutil.ts']) {
      expect(await findings(SLEEPS, file), file).toEqual([
        '1:no-restricted-syntax',
        '2:no-restricted-imports',
      ]);
    }
  });

  it("accepts testkit's until and jitter, and leaves library code alone", async () => {
    const ok = [
      "import { jitter, until } from '@wtpool/testkit';",
      "export const a = () => until('x', () => true);",
      'export const b = () => jitter(100);',
    ].join('\n');
    expect(await findings(ok, 'packages/pool/src/probe.test.ts')).toEqual([]);
    expect(
      await findings(
        'export const c = () => new Promise((r) => setTimeout(r, 5));',
        'packages/pool/src/probe.ts',
      ),
    ).toEqual([]);
  });
});
