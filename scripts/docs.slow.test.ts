/**
 * Docs match the code: every command family's page lists each command and each option that
 * its `--help` prints (the help comes from the same option table that parses argv), and
 * docs/config.md is the rendering of the config schema.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { renderConfigDocs } from '@wtpool/config';
import { runCli, tempDir } from '@wtpool/testkit';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const FAMILIES: Array<[bin: string, pkg: string, doc: string]> = [
  ['pool', 'pool', 'pool.md'],
  ['monitor', 'monitor', 'monitor.md'],
  ['tracks', 'tracks', 'tracks.md'],
  ['gates', 'gates', 'gates.md'],
  ['integrate', 'gates', 'integration.md'],
];

/** Command names listed under "Commands:" in a family's help. */
function commandsOf(help: string): string[] {
  const lines = help.split('\n');
  const start = lines.indexOf('Commands:');
  const out: string[] = [];
  for (const line of lines.slice(start + 1)) {
    if (!line.startsWith('  ')) break;
    // "  scale status   grow …": the name is everything before the first run of 2+ spaces.
    out.push(line.trim().split(/\s{2,}/)[0]!);
  }
  return out;
}

const optionsOf = (help: string) =>
  [...help.matchAll(/^\s+(?:-\w, )?(--[a-z][a-z0-9-]*)/gm)].map((m) => m[1]!);

describe.each(FAMILIES)('%s --help and docs', (bin, pkg, doc) => {
  it(`docs/${doc} lists every command and option`, async () => {
    const binPath = path.join(root, 'packages', pkg, 'bin', `${bin}.js`);
    const cwd = tempDir();
    const page = readFileSync(path.join(root, 'docs', doc), 'utf8');
    const family = await runCli(binPath, ['--help'], { cwd });
    expect(family.code).toBe(0);
    const commands = commandsOf(family.stdout);
    expect(commands.length).toBeGreaterThan(0);
    const missing: string[] = [];
    for (const cmd of commands) {
      if (!page.includes(cmd)) missing.push(`command "${cmd}"`);
      const help = await runCli(binPath, [...cmd.split(' '), '--help'], { cwd });
      expect(help.code, `${bin} ${cmd} --help: ${help.stderr}`).toBe(0);
      for (const opt of optionsOf(help.stdout)) {
        if (!page.includes(opt)) missing.push(`${cmd} ${opt}`);
      }
    }
    expect(missing, `missing from docs/${doc}`).toEqual([]);
  });
});

describe('docs/config.md', () => {
  it('is the rendering of the schema (run `pnpm docs:config` after changing it)', () => {
    // Compare modulo table alignment (prettier pads the columns).
    const norm = (s: string) => s.replace(/-{3,}/g, '---').replace(/\s+/g, '');
    expect(norm(readFileSync(path.join(root, 'docs', 'config.md'), 'utf8'))).toBe(
      norm(renderConfigDocs()),
    );
  });
});
