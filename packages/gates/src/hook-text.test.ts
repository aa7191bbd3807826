/**
 * Where `gates install` puts its block in a pre-commit script (hook-text.ts): first, unless the
 * script fixes what is staged (lint-staged, a formatter's --write), then after that command's
 * top-level statement; and what the shared hook runs first.
 */
import { describe, expect, it } from 'vitest';
import { HOOK_BLOCK, fixerLines, hookScript, placeBlock, removeBlock } from './hook-text.js';

const BLOCK = HOOK_BLOCK.trimEnd();
/** The lines of the placed script, with the block as one `<gates>` line. */
const shape = (text: string) => text.replace(BLOCK, '<gates>').split('\n');

describe('placeBlock', () => {
  it('a script without a fixer: the gates first (after a shebang)', () => {
    expect(shape(placeBlock('#!/usr/bin/env sh\n').text)).toEqual([
      '#!/usr/bin/env sh',
      '<gates>',
      '',
    ]);
    const husky = 'echo "husky pre-commit ran" >> log\n';
    const p = placeBlock(husky);
    expect(shape(p.text)).toEqual(['<gates>', 'echo "husky pre-commit ran" >> log', '']);
    expect(p.after).toBeNull();
    expect(removeBlock(p.text)).toBe(husky);
  });

  it('lint-staged (or a --write): the gates after it, before what follows it', () => {
    const script = 'npx lint-staged\nnpm run -s check-names\n';
    const p = placeBlock(script);
    expect(shape(p.text)).toEqual(['npx lint-staged', '<gates>', 'npm run -s check-names', '']);
    expect(p.after).toBe('npx lint-staged');
    expect(removeBlock(p.text)).toBe(script);
    for (const fixer of [
      'pnpm exec lint-staged --concurrent false',
      'yarn lint-staged',
      'npx nano-staged',
      'npx pretty-quick --staged',
      'npx prettier --write $(git diff --cached --name-only)',
      'npx biome check --write --staged',
      'npx eslint --fix src',
    ]) {
      expect(shape(placeBlock(`#!/bin/sh\n${fixer}\nexit 0\n`).text), fixer).toEqual([
        '#!/bin/sh',
        fixer,
        '<gates>',
        'exit 0',
        '',
      ]);
    }
  });

  it('a fixer inside an if/fi or braces: the gates after the whole statement', () => {
    const script = 'if [ -z "$CI" ]; then\n  npx lint-staged\nfi\necho done\n';
    expect(shape(placeBlock(script).text)).toEqual([
      'if [ -z "$CI" ]; then',
      '  npx lint-staged',
      'fi',
      '<gates>',
      'echo done',
      '',
    ]);
    const braces = 'run() {\n  npx lint-staged\n}\nrun\n';
    expect(shape(placeBlock(braces).text).indexOf('<gates>')).toBe(3);
  });

  it('an `exec` fixer: nothing after it runs, so the gates run first and install says why', () => {
    const p = placeBlock('exec npx lint-staged\n');
    expect(shape(p.text)).toEqual(['<gates>', 'exec npx lint-staged', '']);
    expect(p.after).toBeNull();
    expect(p.warning).toContain('exec npx lint-staged');
  });

  it('an old block placed first is moved after the fixer; a placed one stays as it is', () => {
    const old = `${HOOK_BLOCK}npx lint-staged\n`;
    const moved = placeBlock(old);
    expect(shape(moved.text)).toEqual(['npx lint-staged', '<gates>', '']);
    expect(placeBlock(moved.text).text).toBe(moved.text);
  });

  it("keeps an adapted block's text and place when there is no fixer to follow", () => {
    const start = HOOK_BLOCK.split('\n')[0]!;
    const end = HOOK_BLOCK.trimEnd().split('\n').at(-1)!;
    const adapted = `#!/usr/bin/env sh\n# our own words\n${start}\nnode ./our-gates.js || exit $?\n${end}\n`;
    expect(placeBlock(adapted).text).toBe(adapted);
    const withFixer = `${adapted}npx lint-staged\n`;
    expect(placeBlock(withFixer).text.split('\n')).toEqual([
      '#!/usr/bin/env sh',
      '# our own words',
      'npx lint-staged',
      start,
      'node ./our-gates.js || exit $?',
      end,
      '',
    ]);
  });

  it('comments and look-alikes are not fixers', () => {
    expect(fixerLines('# npx lint-staged\ngrep -w foo\necho rewrite\n')).toEqual([]);
  });
});

describe('hookScript', () => {
  it('chains a previous hook after the gates, or first when it fixes what is staged', () => {
    const after = hookScript('/x/gates.js');
    expect(after.indexOf('pre-commit --repo')).toBeLessThan(after.indexOf('exec "$0.pre-gates"'));
    const first = hookScript('/x/gates.js', { chainedFixes: true });
    expect(first.indexOf('"$0.pre-gates" "$@" || exit $?')).toBeGreaterThan(0);
    expect(first.indexOf('"$0.pre-gates" "$@" || exit $?')).toBeLessThan(
      first.indexOf('pre-commit --repo'),
    );
    expect(first).not.toContain('exec "$0.pre-gates"');
  });
});
