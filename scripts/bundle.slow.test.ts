/**
 * The CLI bundles (scripts/bundle.mjs, docs/decisions.md D65), as `pnpm -s build` left them:
 * every bin runs its bundle, what the pool's hot path loads statically holds no service code
 * (services and pg stay lazy chunks), yaml has its one-file copy beside each bundle, and an
 * unchanged tree is not bundled again.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BINS: Array<[pkg: string, bin: string]> = [
  ['pool', 'pool'],
  ['monitor', 'monitor'],
  ['tracks', 'tracks'],
  ['gates', 'gates'],
  ['gates', 'integrate'],
];

/** Files an output loads before running: itself plus its static `import … "./x.js"`, transitively. */
function staticClosure(dist: string, entry: string): string[] {
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const text = readFileSync(path.join(dist, file), 'utf8');
    // Static forms only: `import … from "./x.js"` and `import "./x.js"`; `import("./x.js")` is lazy.
    for (const m of text.matchAll(/^import\s+(?:[^'"();]*?\s+from\s+)?["']\.\/([^"']+)["'];?$/gm))
      visit(m[1]!);
  };
  visit(entry);
  return [...seen];
}

/** The source modules esbuild inlined into an output (it marks each with a `// path` comment). */
const modulesIn = (file: string) =>
  [...readFileSync(file, 'utf8').matchAll(/^\/\/ ((?:packages|node_modules)\/\S+)$/gm)].map(
    (m) => m[1]!,
  );

describe('CLI bundles', () => {
  it.each(BINS)('bin of %s/%s imports its bundle, which exists', (pkg, bin) => {
    const binFile = path.join(root, 'packages', pkg, 'bin', `${bin}.js`);
    // The pool's bin runs its CommonJS bundle through a V8 code cache (D380).
    const ext = pkg === 'pool' ? 'cjs' : 'js';
    expect(readFileSync(binFile, 'utf8')).toContain(`'../dist/cli-${bin}.bundle.${ext}'`);
    expect(existsSync(path.join(root, 'packages', pkg, 'dist', `cli-${bin}.bundle.${ext}`))).toBe(
      true,
    );
    expect(existsSync(path.join(root, 'packages', pkg, 'dist', 'yaml.bundle.cjs'))).toBe(true);
  });

  it('pool: the static part has core, lock, config and pool, and no services or pg', () => {
    const dist = path.join(root, 'packages/pool/dist');
    const closure = staticClosure(dist, 'cli-pool.bundle.js');
    const statics = closure.flatMap((f) => modulesIn(path.join(dist, f)));
    for (const pkg of ['core', 'lock', 'config', 'pool'])
      expect(statics.some((m) => m.startsWith(`packages/${pkg}/dist/`))).toBe(true);
    expect(statics.filter((m) => m.startsWith('packages/services/'))).toEqual([]);
    expect(statics.filter((m) => /node_modules\/.*\/(pg|yaml)\//.test(m))).toEqual([]);
    // The MCP SDK (and its zod) load only for `pool mcp` (D340).
    expect(
      statics.filter((m) => /node_modules\/.*\/(@modelcontextprotocol|zod)\//.test(m)),
    ).toEqual([]);
    // …while the lazy chunks beside it do carry them (the dynamic imports were kept).
    const lazy = readdirSync(dist)
      .filter((f) => /^chunk-.*\.js$/.test(f) && !closure.includes(f))
      .flatMap((f) => modulesIn(path.join(dist, f)));
    expect(lazy).toContain('packages/services/dist/slots.js');
    expect(lazy.some((m) => /node_modules\/.*\/pg\/lib\/index\.js$/.test(m))).toBe(true);
    expect(lazy.some((m) => m.includes('/@modelcontextprotocol/server/'))).toBe(true);
  });

  it('pool: the CommonJS bundle keeps the MCP SDK, zod and pg in copies beside it, required lazily', () => {
    const dist = path.join(root, 'packages/pool/dist');
    const inlined = modulesIn(path.join(dist, 'cli-pool.bundle.cjs'));
    expect(inlined.some((m) => m.startsWith('packages/pool/dist/'))).toBe(true);
    expect(
      inlined.filter((m) => /node_modules\/.*\/(pg|yaml|zod|@modelcontextprotocol)\//.test(m)),
    ).toEqual([]);
    expect(
      modulesIn(path.join(dist, 'vendor-mcp.bundle.cjs')).some((m) => m.includes('/zod/')),
    ).toBe(true);
    expect(
      modulesIn(path.join(dist, 'vendor-pg.bundle.cjs')).some((m) => /\/pg\/lib\//.test(m)),
    ).toBe(true);
    // Strict, like the ES modules it is made of; built-ins wrapped, not copied (scripts/bundle.mjs).
    const text = readFileSync(path.join(dist, 'cli-pool.bundle.cjs'), 'utf8');
    expect(text.startsWith("'use strict';\n")).toBe(true);
    expect(text).not.toContain('__toESM(require("node:');
    expect(text).not.toMatch(/\bimport\(/);
    // Loading it (no command) requires none of them, nor the services' Redis client's TLS.
    const probe = [
      "const m = require('node:module');",
      "const tls = process.moduleLoadList.includes('NativeModule tls');",
      `const b = require(${JSON.stringify(path.join(dist, 'cli-pool.bundle.cjs'))});`,
      "if (typeof b.main !== 'function') throw new Error('no main');",
      'console.log(JSON.stringify({ tls: tls || process.moduleLoadList.includes("NativeModule tls"),',
      '  loaded: Object.keys(require.cache).map((f) => require("node:path").basename(f)) }));',
    ].join('\n');
    const r = spawnSync(process.execPath, ['-e', probe], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { tls: boolean; loaded: string[] };
    expect(out.loaded).toEqual(['cli-pool.bundle.cjs']);
    expect(out.tls).toBe(false);
  });

  it('an unchanged tree is not bundled again', () => {
    const r = spawnSync(process.execPath, ['scripts/bundle.mjs', '--verbose'], {
      cwd: root,
      encoding: 'utf8',
    });
    expect(r.status).toBe(0);
    const lines = r.stderr.trim().split('\n');
    expect(lines.map((l) => l.split(':')[0]).sort()).toEqual([
      'packages/gates',
      'packages/monitor',
      'packages/pool',
      'packages/tracks',
    ]);
    for (const line of lines) expect(line).toMatch(/: up to date$/);
  });
});
