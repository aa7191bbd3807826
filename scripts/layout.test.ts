/**
 * The shape of the house, measured (issue 22, docs/architecture.md): no source file in
 * packages/*\/src over 500 lines, no import cycle between modules, and package imports only in
 * the direction core ← lock ← config ← services ← pool ← monitor / tracks / gates. Reads the
 * sources as text: relative imports and `@wtpool/<pkg>` specifiers (static, dynamic and
 * `export … from`), type-only ones included, since a cycle of types is still a cycle to read.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MAX_LINES = 500;
/**
 * Declarative tables, one entry per item, exempt from the line limit (D220 in
 * docs/decisions.md): splitting them would scatter what is read as one list.
 */
const TABLES: Record<string, string> = {
  'packages/config/src/schema.ts':
    'the configuration schema: one entry per key (docs/config.md is generated from it)',
};
const LAYERS: Record<string, number> = {
  core: 0,
  lock: 1,
  config: 2,
  services: 3,
  pool: 4,
  monitor: 5,
  tracks: 5,
  gates: 5,
};

function sources(): string[] {
  const out: string[] = [];
  for (const pkg of Object.keys(LAYERS)) {
    const walk = (dir: string) => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (/\.ts$/.test(e.name) && !/\.(test|testutil|d)\.ts$/.test(e.name)) out.push(p);
      }
    };
    walk(path.join(root, 'packages', pkg, 'src'));
  }
  return out.sort();
}

const rel = (f: string) => path.relative(root, f);
const pkgOf = (f: string) => rel(f).split(path.sep)[1]!;

/** The module specifiers a source text imports or re-exports (static, dynamic, side-effect). */
function specifiers(text: string): string[] {
  return [
    ...text.matchAll(/(?:^|[\s;])(?:import|export)\s[^'"`;]*?from\s*['"]([^'"]+)['"]/g),
    ...text.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g),
    ...text.matchAll(/^\s*import\s*['"]([^'"]+)['"]/gm),
  ].map((m) => m[1]!);
}

/** The modules a file imports: resolved paths of relative imports, `@wtpool/<pkg>` as `pkg:<pkg>`. */
function importsOf(file: string): string[] {
  return specifiers(readFileSync(file, 'utf8')).flatMap((s) => {
    if (s.startsWith('.')) return [path.resolve(path.dirname(file), s.replace(/\.js$/, '.ts'))];
    const m = /^@wtpool\/([a-z]+)/.exec(s);
    return m ? [`pkg:${m[1]}`] : [];
  });
}

describe('the house, measured', () => {
  const files = sources();

  it(`has no source file over ${MAX_LINES} lines`, () => {
    const long = files
      .map((f) => ({ f: rel(f), lines: readFileSync(f, 'utf8').split('\n').length - 1 }))
      .filter((x) => x.lines > MAX_LINES && !(x.f in TABLES))
      .map((x) => `${x.f}: ${x.lines}`);
    expect(long).toEqual([]);
    // An exemption names a file that exists (a stale one would hide nothing, silently).
    for (const f of Object.keys(TABLES)) expect(files.map(rel)).toContain(f);
  });

  it('has no import cycle between modules', () => {
    const graph = new Map(files.map((f) => [f, importsOf(f).filter((i) => !i.startsWith('pkg:'))]));
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const stack: string[] = [];
    const visit = (f: string) => {
      state.set(f, 'open');
      stack.push(f);
      for (const next of graph.get(f) ?? []) {
        if (state.get(next) === 'open')
          cycles.push([...stack.slice(stack.indexOf(next)), next].map(rel).join(' → '));
        else if (!state.has(next) && graph.has(next)) visit(next);
      }
      stack.pop();
      state.set(f, 'done');
    };
    for (const f of files) if (!state.has(f)) visit(f);
    expect(cycles).toEqual([]);
  });

  it('imports packages only downwards (core ← lock ← config ← services ← pool ← the rest)', () => {
    const wrong = files.flatMap((f) =>
      importsOf(f)
        .filter((i) => i.startsWith('pkg:'))
        .map((i) => i.slice(4))
        .filter((to) => to !== pkgOf(f) && !(LAYERS[to]! < LAYERS[pkgOf(f)]!))
        .map((to) => `${rel(f)} imports @wtpool/${to}`),
    );
    expect(wrong).toEqual([]);
  });

  it('sees every kind of specifier the checks stand on', () => {
    const probe = [
      "import { a } from './a.js';",
      'export { b } from "./b.js";',
      "const c = await import('@wtpool/pool');",
      "import type {\n  D,\n} from '@wtpool/core';",
      "import './side-effect.js';",
      "const s = 'from nowhere';",
    ].join('\n');
    expect(specifiers(probe).sort()).toEqual([
      './a.js',
      './b.js',
      './side-effect.js',
      '@wtpool/core',
      '@wtpool/pool',
    ]);
  });
});
