/**
 * When the format gate has nothing to run (format.ts, D330): a no-op command, or the default
 * (prettier) where prettier is not installed. A formatter named explicitly always runs.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { defaultConfig } from '@wtpool/config';
import { formatSkipReason } from './format.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'wtpool-format-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const bare = { cwd: dir, mainRoot: dir, env: { PATH: '/nonexistent' } };
const DEFAULT = defaultConfig().gates.format;

describe('formatSkipReason', () => {
  it('a no-op format command says there is no formatter', () => {
    for (const c of ['true', ':', ' exit 0 ']) {
      expect(formatSkipReason(c, bare)).toBe(`no formatter configured (gates.format: ${c.trim()})`);
    }
  });

  it('the default with prettier nowhere on the gates PATH: skipped, naming prettier', () => {
    expect(DEFAULT.split(' ')[0]).toBe('prettier');
    expect(formatSkipReason(DEFAULT, bare)).toBe(
      'no formatter: prettier is not installed and gates.format is not set; nothing to check',
    );
  });

  it('the default runs once prettier is installed (the worktree node_modules/.bin)', () => {
    const bin = path.join(dir, 'node_modules', '.bin');
    mkdirSync(bin, { recursive: true });
    writeFileSync(path.join(bin, 'prettier'), '#!/bin/sh\n');
    chmodSync(path.join(bin, 'prettier'), 0o755);
    expect(formatSkipReason(DEFAULT, bare)).toBeNull();
    rmSync(path.join(dir, 'node_modules'), { recursive: true });
  });

  it('a formatter named explicitly runs even when it is missing (its failure is reported)', () => {
    expect(formatSkipReason('prettier --check', bare)).toBeNull();
    expect(formatSkipReason('npx --no-install biome format', bare)).toBeNull();
  });
});
