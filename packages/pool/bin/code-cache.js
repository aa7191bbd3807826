'use strict';
/**
 * Runs a CommonJS CLI bundle with a V8 code cache (docs/decisions.md D380): the bundle is
 * compiled by `vm.Script` from the bytecode a previous run left, not parsed again. Node 20 has
 * no compile cache of its own for ESM, hence a CommonJS bundle (scripts/bundle.mjs).
 *
 * - One cache per command (`<bundle>.<command>.node-<version>-<arch>.v8cache`: the bytecode of
 *   the functions that command ran, not only those of whichever command ran first), beside the
 *   bundle; where that
 *   directory is not writable (a read-only or root-owned install), in the user's cache
 *   directory (`$XDG_CACHE_HOME` or `~/.cache`, `worktree-pool/v8/`, mode 0700).
 * - A cache file is used only when it is owned by this user or by the bundle's owner and not
 *   writable by group or others, its header names this Node, V8 and architecture and the
 *   bundle's SHA-256, and its payload matches the SHA-256 in the header (V8 itself checks only
 *   the source's length and its own version). Anything else (stale, corrupt, truncated,
 *   rejected by V8) is ignored: the bundle compiles from source and the cache is rewritten.
 * - Written after the command ran (the functions it compiled are in the cache), atomically:
 *   a private temporary file (0600, exclusive create) renamed over the old one. A cache is
 *   never needed: any failure to read or write it is silent.
 * - With WTPOOL_TRACE=1 the load (read, compile, top level) and the cache's fate are in the
 *   command's trace (packages/core/src/trace.ts reads `Symbol.for('wtpool.bin.load')`).
 */
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');
const { createHash } = require('node:crypto');

const MAGIC = 'wtpool-v8-cache/1';
const sha256 = (buf) => createHash('sha256').update(buf).digest('hex');
// process.hrtime, not performance: perf_hooks is ten more modules to load on every command.
const now = () => Number(process.hrtime.bigint()) / 1e6;

/** Where the cache of `file` for `command` may live: beside the bundle, then the user's cache. */
function cachePaths(file, command) {
  const key = /^[a-z][a-z-]{0,23}$/.test(command ?? '') ? command : 'other';
  const name = `${path.basename(file)}.${key}.node-${process.version}-${process.arch}.v8cache`;
  const home = process.env.XDG_CACHE_HOME || path.join(require('node:os').homedir(), '.cache');
  const user = path.join(home, 'worktree-pool', 'v8');
  // Installs in different places have different bundles: the user's cache keys them by path.
  return [
    path.join(path.dirname(file), name),
    path.join(user, `${sha256(file).slice(0, 16)}-${name}`),
  ];
}

const expectedHeader = (bundleHash) =>
  `${MAGIC} ${process.version} ${process.versions.v8} ${process.arch} ${bundleHash}`;

/** The cached bytecode for a bundle of hash `bundleHash`, or why there is none. */
function readCache(candidates, bundleHash, bundleUid) {
  let why = 'miss';
  for (const file of candidates) {
    let fd;
    try {
      fd = fs.openSync(file, 'r');
    } catch {
      continue;
    }
    try {
      const st = fs.fstatSync(fd);
      const uid = typeof process.getuid === 'function' ? process.getuid() : st.uid;
      if ((st.uid !== uid && st.uid !== bundleUid) || (st.mode & 0o022) !== 0) {
        why = 'untrusted';
        continue;
      }
      const buf = fs.readFileSync(fd);
      const nl = buf.indexOf(10);
      const head = nl < 0 ? '' : buf.toString('latin1', 0, nl);
      const at = head.lastIndexOf(' ');
      if (at < 0 || head.slice(0, at) !== expectedHeader(bundleHash)) {
        why = 'stale';
        continue;
      }
      const data = buf.subarray(nl + 1);
      if (sha256(data) !== head.slice(at + 1)) {
        why = 'corrupt';
        continue;
      }
      return { data, file };
    } catch {
      why = 'unreadable';
    } finally {
      fs.closeSync(fd);
    }
  }
  return { why };
}

/** Writes the cache to the first place that takes it (atomically, private); silent on failure. */
function writeCache(candidates, bundleHash, data) {
  const body = Buffer.concat([
    Buffer.from(`${expectedHeader(bundleHash)} ${sha256(data)}\n`),
    data,
  ]);
  for (const [i, file] of candidates.entries()) {
    const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2, 10)}.tmp`;
    try {
      if (i > 0) fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
      const fd = fs.openSync(tmp, 'wx', 0o600);
      try {
        fs.writeSync(fd, body);
      } finally {
        fs.closeSync(fd);
      }
      fs.renameSync(tmp, file);
      return file;
    } catch {
      try {
        fs.unlinkSync(tmp);
      } catch {
        // nothing was created
      }
    }
  }
  return null;
}

/**
 * Loads the CommonJS bundle `file` through the code cache of `command` (a name of letters and
 * dashes; anything else shares the cache `other`), calls `run(exports)` and sets the exit code
 * it resolves to; then (when the cache was not used) writes the cache.
 */
async function runCached(file, run, command) {
  const info = { file, cache: 'miss', readMs: 0, compileMs: 0, topLevelMs: 0, written: null };
  globalThis[Symbol.for('wtpool.bin.load')] = info;
  const t0 = now();
  const fd = fs.openSync(file, 'r');
  let source;
  let bundleUid;
  try {
    bundleUid = fs.fstatSync(fd).uid;
    source = fs.readFileSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  const bundleHash = sha256(source);
  const candidates = cachePaths(file, command);
  const cached = readCache(candidates, bundleHash, bundleUid);
  const t1 = now();
  info.readMs = t1 - t0;
  // The wrapper stays on the first line: line numbers in stack traces are the bundle's own.
  const script = new vm.Script(
    `(function (exports, require, module, __filename, __dirname) {${source.toString('utf8')}\n})`,
    {
      filename: file,
      cachedData: cached.data,
      // No importModuleDynamically: the bundle has no import() (scripts/bundle.mjs turns
      // those of built-ins into require()), so Node's ESM loader is never set up.
    },
  );
  info.cache = cached.data ? (script.cachedDataRejected ? 'rejected' : 'hit') : cached.why;
  const t2 = now();
  info.compileMs = t2 - t1;
  const mod = { exports: {}, filename: file };
  // The bundle's require resolves from its own directory (the vendored copies beside it).
  const req = module.constructor.createRequire(file);
  script.runInThisContext()(mod.exports, req, mod, file, path.dirname(file));
  info.topLevelMs = now() - t2;
  process.exitCode = await run(mod.exports);
  if (info.cache !== 'hit')
    info.written = writeCache(candidates, bundleHash, script.createCachedData());
}

module.exports = { runCached, cachePaths };
