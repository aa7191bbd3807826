#!/usr/bin/env node
/**
 * Bundles each CLI (`packages/<pkg>/dist/cli-<bin>.js`, the output of `tsc -b`) into one ESM
 * file `dist/cli-<bin>.bundle.js` that the package's `bin/<bin>.js` imports (docs/decisions.md
 * D65). A command then loads one or two files instead of ~40 modules.
 *
 * - Workspace packages and third-party code are inlined; `import()` stays lazy as a split chunk
 *   (`dist/chunk-<hash>.js`), so services, pg, … load only when a command needs them.
 * - External: the package's own declared dependencies except pg (resolvable from its directory at run
 *   time) and optional native modules.
 * - Everything lands directly in `dist/`, where `import.meta.url`-relative paths (the gates bin,
 *   the monitor daemon) resolve exactly as they do for the tsc output.
 * - A package is skipped when its bundle is newer than every input the last build read.
 * - The pool's CLI, the hot path of every agent (acquire, release), is also bundled as one
 *   CommonJS file `dist/cli-pool.bundle.cjs` that its bin compiles with a V8 code cache
 *   (bin/code-cache.js, D380): ESM cannot use one on Node 20. Lazy `import()`s stay lazy inside
 *   it (esbuild's module initialisers); the MCP SDK, zod and pg, two thirds of its size, are kept
 *   out in one-file CommonJS copies beside it (`vendor-*.bundle.cjs`), required only by the
 *   commands that use them.
 *
 * Usage: node scripts/bundle.mjs [--force]
 */
import { existsSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const force = process.argv.includes('--force');
/** Optional or platform-specific modules some dependencies probe for (never needed here). */
const OPTIONAL = ['pg-native', 'pg-cloudflare', 'cloudflare:sockets'];
const CHUNK = /^chunk-[A-Z0-9]+\.js$/;
/** Dependencies bundled even where a package declares them (they run fine inlined). */
const INLINE = new Set(['pg', '@modelcontextprotocol/server', 'zod']);
/** CLIs that also get a CommonJS bundle for the code-cached bin (D380): package → bins. */
const CACHED = { pool: ['pool'] };
/**
 * Dependencies of the CommonJS bundles kept in one-file copies beside them, required only when
 * a command needs them: each copy is built from the package whose dependency it is, and exports
 * the listed modules under a key (null: the one module's own exports). The MCP SDK and the zod
 * it uses share one copy (one zod).
 */
const VENDOR = [
  {
    file: 'vendor-mcp.bundle.cjs',
    from: 'packages/pool',
    modules: {
      '@modelcontextprotocol/server': 'server',
      '@modelcontextprotocol/server/stdio': 'stdio',
      zod: 'zod',
    },
  },
  { file: 'vendor-pg.bundle.cjs', from: 'packages/services', modules: { pg: null } },
];
// Bundled CommonJS code calls require() for Node built-ins; ESM has no require of its own.
const BANNER =
  "import { createRequire as __wtpoolCreateRequire } from 'node:module';\n" +
  'const require = __wtpoolCreateRequire(import.meta.url);';

/** Packages with CLIs: each `src/cli-<bin>.ts` is an entry point. */
function cliPackages() {
  const dir = path.join(ROOT, 'packages');
  return readdirSync(dir)
    .map((name) => path.join(dir, name))
    .map((pkg) => ({
      pkg,
      entries: existsSync(path.join(pkg, 'src'))
        ? readdirSync(path.join(pkg, 'src'))
            .filter((f) => /^cli-[a-z]+\.ts$/.test(f))
            .map((f) => path.join(pkg, 'dist', f.replace(/\.ts$/, '.js')))
        : [],
    }))
    .filter((p) => p.entries.length);
}

const mtime = (f) => {
  try {
    return statSync(f).mtimeMs;
  } catch {
    return Infinity; // a vanished input: rebuild
  }
};

/** Up to date when every input recorded by the last build is older than its outputs. */
function upToDate(pkg, entries) {
  const meta = path.join(pkg, 'dist', '.bundle-inputs.json');
  if (force || !existsSync(meta)) return false;
  const { inputs, outputs } = JSON.parse(readFileSync(meta, 'utf8'));
  const built = Math.min(...outputs.map((o) => mtime(path.join(ROOT, o))));
  if (!Number.isFinite(built)) return false;
  const all = [...inputs, ...entries.map((e) => path.relative(ROOT, e))];
  return all.every((i) => mtime(path.join(ROOT, i)) < built);
}

async function bundle({ pkg, entries }) {
  if (upToDate(pkg, entries)) return { pkg, skipped: true };
  const manifest = JSON.parse(readFileSync(path.join(pkg, 'package.json'), 'utf8'));
  // pg is inlined everywhere (loading it from node_modules is ~40 files, ~40 ms); other own
  // dependencies (lint-staged, which runs files of its own) stay external.
  const own = Object.keys(manifest.dependencies ?? {}).filter(
    (d) => !d.startsWith('@wtpool/') && !INLINE.has(d),
  );
  const outdir = path.join(pkg, 'dist');
  const { build } = await import('esbuild'); // not loaded when everything is up to date
  const result = await build({
    absWorkingDir: ROOT,
    entryPoints: entries,
    outdir,
    entryNames: '[name].bundle',
    chunkNames: 'chunk-[hash]',
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    external: [...own, ...OPTIONAL],
    banner: { js: BANNER },
    metafile: true,
    logLevel: 'warning',
  });
  // @wtpool/config requires yaml synchronously on a config-cache miss; it looks for this
  // one-file copy beside the bundle first (74 files → 1: a quarter of the load time).
  const yaml = await build({
    absWorkingDir: path.join(ROOT, 'packages/config'),
    stdin: {
      contents: "module.exports = require('yaml');",
      resolveDir: path.join(ROOT, 'packages/config'),
    },
    outfile: path.join(outdir, 'yaml.bundle.cjs'),
    bundle: true,
    format: 'cjs',
    platform: 'node',
    target: 'node20',
    metafile: true,
    logLevel: 'warning',
  });
  const cjs = await bundleCjs(pkg, outdir, [...own, ...OPTIONAL]);
  const rel = (base, f) => path.relative(ROOT, path.resolve(base, f));
  const outputs = [
    ...Object.keys(result.metafile.outputs),
    ...Object.keys(yaml.metafile.outputs).map((o) => rel(path.join(ROOT, 'packages/config'), o)),
    ...cjs.flatMap((m) => Object.keys(m.outputs)),
  ];
  // Chunk names carry a content hash: remove the ones an earlier build left behind.
  const keep = new Set(outputs.map((o) => path.join(ROOT, o)));
  for (const f of readdirSync(outdir)) {
    const file = path.join(outdir, f);
    if (CHUNK.test(f) && !keep.has(file)) rmSync(file);
  }
  const inputs = [
    ...Object.keys(result.metafile.inputs),
    ...Object.keys(yaml.metafile.inputs).map((i) => rel(path.join(ROOT, 'packages/config'), i)),
    ...cjs.flatMap((m) => Object.keys(m.inputs)),
  ].filter((i) => !i.includes(':') && !i.endsWith('<stdin>'));
  writeFileSync(
    path.join(outdir, '.bundle-inputs.json'),
    JSON.stringify({ inputs, outputs }) + '\n',
  );
  return { pkg, skipped: false, outputs: outputs.length };
}

/**
 * The CommonJS bundle's preamble: strict mode (the sources are ES modules), `import.meta.url` is the bundle's own file URL, and a Node
 * built-in imported as a default or namespace (`import path from 'node:path'`, in ~60 modules)
 * is wrapped once, not copied: esbuild's `__toESM` defines a getter per export of the module for
 * every importing module (thousands for fs and path), a quarter of the bundle's top level. The
 * wrapper's prototype is the module itself, so every export reads through live.
 */
const NODE_NS = '__wtpoolNodeNs';
const TO_ESM_NODE = '__toESM(require("node:';
const CJS_BANNER = [
  // First: the banner goes before esbuild's own "use strict", which would then not count.
  "'use strict';",
  "var __wtpool_import_meta_url = require('node:url').pathToFileURL(__filename).href;",
  'var __wtpoolNodeNsCache = new Map();',
  `var ${NODE_NS} = (m) => {`,
  '  let ns = __wtpoolNodeNsCache.get(m);',
  '  if (ns === undefined)',
  '    __wtpoolNodeNsCache.set(m, (ns = Object.create(m, { default: { value: m, enumerable: true } })));',
  '  return ns;',
  '};',
].join('\n');

/**
 * The CommonJS bundles of a package's code-cached CLIs (CACHED) and the vendor copies they
 * require; returns their metafiles. `import.meta.url` (paths beside the code: the gates bin,
 * yaml.bundle.cjs) is the bundle's own file URL, as in the ESM bundle in the same directory.
 */
async function bundleCjs(pkg, outdir, external) {
  const bins = CACHED[path.basename(pkg)];
  if (!bins) return [];
  const { build } = await import('esbuild');
  const common = {
    absWorkingDir: ROOT,
    bundle: true,
    format: 'cjs',
    platform: 'node',
    target: 'node20',
    metafile: true,
    logLevel: 'warning',
  };
  const vendored = new Map(
    VENDOR.flatMap((v) => Object.entries(v.modules).map(([m, key]) => [m, { file: v.file, key }])),
  );
  /** A vendored module is `require('./vendor-….cjs')[key]` in the bundle. */
  const vendorPlugin = {
    name: 'wtpool-vendor',
    setup(b) {
      b.onResolve({ filter: /^\.\/vendor-[a-z]+\.bundle\.cjs$/ }, (a) => ({
        path: a.path,
        external: true,
      }));
      b.onResolve({ filter: /^[@a-z]/ }, (a) =>
        vendored.has(a.path) ? { path: a.path, namespace: 'wtpool-vendor' } : undefined,
      );
      b.onLoad({ filter: /.*/, namespace: 'wtpool-vendor' }, (a) => {
        const { file, key } = vendored.get(a.path);
        const pick = key === null ? '' : `[${JSON.stringify(key)}]`;
        return { contents: `module.exports = require('./${file}')${pick};`, loader: 'js' };
      });
    },
  };
  const main = await build({
    ...common,
    entryPoints: bins.map((bin) => path.join(outdir, `cli-${bin}.js`)),
    outdir,
    entryNames: '[name].bundle',
    outExtension: { '.js': '.cjs' },
    external,
    define: { 'import.meta.url': '__wtpool_import_meta_url' },
    // import() of a built-in becomes require(): the bundle needs no ESM loader (vm.Script).
    supported: { 'dynamic-import': false },
    banner: { js: CJS_BANNER },
    plugins: [vendorPlugin],
  });
  for (const out of Object.keys(main.metafile.outputs)) {
    const file = path.join(ROOT, out);
    writeFileSync(
      file,
      readFileSync(file, 'utf8').replaceAll(TO_ESM_NODE, `${NODE_NS}(require("node:`),
    );
  }
  const vendors = await Promise.all(
    VENDOR.map((v) =>
      build({
        ...common,
        stdin: {
          contents: Object.entries(v.modules)
            .map(([m, key]) =>
              key === null
                ? `module.exports = require('${m}');`
                : `export * as ${key} from '${m}';`,
            )
            .join('\n'),
          resolveDir: path.join(ROOT, v.from),
        },
        outfile: path.join(outdir, v.file),
        external,
      }),
    ),
  );
  return [main.metafile, ...vendors.map((v) => v.metafile)];
}

const results = await Promise.all(cliPackages().map(bundle));
if (process.argv.includes('--verbose')) {
  for (const r of results) {
    const name = path.relative(ROOT, r.pkg);
    console.error(r.skipped ? `${name}: up to date` : `${name}: ${r.outputs} files`);
  }
}
