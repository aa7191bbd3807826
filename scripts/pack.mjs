#!/usr/bin/env node
/**
 * Builds the one publishable package, packages/worktree-pool (docs/decisions.md D110), and packs
 * it. Run after `pnpm -s build` (the root `pack:tarball` script does both).
 *
 * - dist/: four CLIs, the monitor daemon and the library entry, bundled from the tsc output
 *   of the workspace packages into one ESM build with shared chunks. Every @wtpool/* module is
 *   inlined, so installing the tarball looks up no @wtpool/* name on a registry; lint-staged
 *   (which runs files of its own) stays a normal dependency.
 * - The pool CLI is the workspace's own: its CommonJS bundle and vendor copies
 *   (packages/pool/dist, scripts/bundle.mjs, D380) and its bin (pool.js with the V8 code cache,
 *   extra-ca-env.js), copied. Each of the five commands is a copy of the workspace's launcher
 *   packages/pool/bin/pool, which keeps NODE_EXTRA_CA_CERTS from Node's start and execs the
 *   bin of its own name (D386, D396); bin/package.json makes the bins CommonJS.
 * - types/: the packages' declaration files, `@wtpool/<pkg>` imports rewritten to relative paths;
 *   dist/index.d.ts re-exports the library's surface from them.
 *
 * The LAST line of stdout is the absolute path of the tarball (scripts rely on it).
 * Usage: node scripts/pack.mjs
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const PKG = path.join(ROOT, 'packages', 'worktree-pool');
const OUT = path.join(ROOT, '.pack');
const manifest = JSON.parse(readFileSync(path.join(PKG, 'package.json'), 'utf8'));
const external = [...Object.keys(manifest.dependencies ?? {})];
const OPTIONAL = ['pg-native', 'pg-cloudflare', 'cloudflare:sockets'];
const BANNER =
  "import { createRequire as __wtpoolCreateRequire } from 'node:module';\n" +
  'const require = __wtpoolCreateRequire(import.meta.url);';
const dist = (pkg, file) => path.join(ROOT, 'packages', pkg, 'dist', file);
const BINS = Object.keys(manifest.bin);
/** Copied from packages/pool/bin: the pool's bin and what it requires beside it. */
const POOL_BIN = ['pool.js', 'code-cache.js', 'extra-ca-env.js'];
/** Copied from packages/pool/dist: the bundle pool.js compiles, and what it requires beside it. */
const POOL_DIST = ['cli-pool.bundle.cjs', 'vendor-mcp.bundle.cjs', 'vendor-pg.bundle.cjs'];
for (const f of POOL_DIST) {
  if (!existsSync(dist('pool', f))) {
    process.stderr.write(`pack: ${dist('pool', f)} is missing: run \`pnpm -s build\` first\n`);
    process.exit(1);
  }
}
/**
 * The library: the pool and the error model whole; of the gates (installer, integration) the
 * names the first two do not already export (`export *` would make a repeated name ambiguous).
 */
const taken = new Set();
const LIBRARY = [];
for (const p of ['pool', 'core', 'gates']) {
  const names = Object.keys(await import(dist(p, 'index.js'))).filter((n) => !taken.has(n));
  LIBRARY.push({ p, names: p === 'gates' ? names : null });
  names.forEach((n) => taken.add(n));
}
const reexports = (from) =>
  LIBRARY.map(
    ({ p, names }) =>
      `export ${names ? `{ ${names.join(', ')} }` : '*'} from ${JSON.stringify(from(p))};\n`,
  ).join('');

for (const d of ['dist', 'types']) rmSync(path.join(PKG, d), { recursive: true, force: true });

// The library entry re-exports the packages' public surfaces (first wins on a repeated name).
const tmp = mkdtempSync(path.join(os.tmpdir(), 'wtpool-pack-'));
const entry = path.join(tmp, 'index.js');
writeFileSync(
  entry,
  reexports((p) => dist(p, 'index.js')),
);

const { build } = await import('esbuild');
await build({
  absWorkingDir: ROOT,
  entryPoints: {
    'cli-monitor': dist('monitor', 'cli-monitor.js'),
    'cli-tracks': dist('tracks', 'cli-tracks.js'),
    'cli-gates': dist('gates', 'cli-gates.js'),
    'cli-integrate': dist('gates', 'cli-integrate.js'),
    // Spawned by `monitor start` from beside its own code (new URL('./daemon-main.js')).
    'daemon-main': dist('monitor', 'daemon-main.js'),
    index: entry,
  },
  outdir: path.join(PKG, 'dist'),
  chunkNames: 'chunk-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: [...external, ...OPTIONAL],
  alias: { 'graceful-fs': path.join(ROOT, 'scripts/graceful-fs-stub.cjs') },
  banner: { js: BANNER },
  logLevel: 'warning',
});
// @wtpool/config loads yaml from `yaml.bundle.cjs` beside its code first (scripts/bundle.mjs).
await build({
  absWorkingDir: path.join(ROOT, 'packages/config'),
  stdin: {
    contents: "module.exports = require('yaml');",
    resolveDir: path.join(ROOT, 'packages/config'),
  },
  outfile: path.join(PKG, 'dist', 'yaml.bundle.cjs'),
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  logLevel: 'warning',
});
rmSync(tmp, { recursive: true, force: true });
for (const f of POOL_DIST) copyFileSync(dist('pool', f), path.join(PKG, 'dist', f));

// The bins: the workspace's launcher under each command's name, the pool's bin beside them.
const poolBin = (f) => path.join(ROOT, 'packages', 'pool', 'bin', f);
for (const f of POOL_BIN) copyFileSync(poolBin(f), path.join(PKG, 'bin', f));
for (const b of BINS) {
  copyFileSync(poolBin('pool'), path.join(PKG, 'bin', b));
  chmodSync(path.join(PKG, 'bin', b), 0o755);
}

// Declarations: copy each package's .d.ts, pointing @wtpool/<pkg> at the copied tree.
const pkgs = readdirSync(path.join(ROOT, 'packages')).filter(
  (p) => p !== 'testkit' && existsSync(dist(p, 'index.d.ts')),
);
for (const p of pkgs) {
  const from = path.join(ROOT, 'packages', p, 'dist');
  const to = path.join(PKG, 'types', p);
  mkdirSync(to, { recursive: true });
  for (const f of readdirSync(from).filter((f) => f.endsWith('.d.ts'))) {
    const text = readFileSync(path.join(from, f), 'utf8').replace(
      /(['"])@wtpool\/([a-z]+)\1/g,
      (_, q, name) => `${q}../${name}/index.js${q}`,
    );
    writeFileSync(path.join(to, f), text);
  }
}
writeFileSync(
  path.join(PKG, 'dist', 'index.d.ts'),
  reexports((p) => `../types/${p}/index.js`),
);

// Pack with npm (same tarball layout as `pnpm pack`, and --json says its name).
mkdirSync(OUT, { recursive: true });
const packed = JSON.parse(
  execFileSync('npm', ['pack', '--json', '--pack-destination', OUT], {
    cwd: PKG,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  }),
);
process.stdout.write(path.join(OUT, packed[0].filename) + '\n');
