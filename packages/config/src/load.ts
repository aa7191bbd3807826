import { chmodSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { configError, errno, notFoundError } from '@wtpool/core';
import { PRIVATE_FILE_MODE, ensurePrivateDir } from '@wtpool/lock';
import { validateConfig } from './validate.js';
import { poolRootProblem } from './checks.js';
import { relativeHooksPath, resolveRepo, targetDir, mtimeKey, type RepoPaths } from './repo.js';
import type { Config } from './schema.js';

export interface LoadedConfig {
  config: Config;
  repo: RepoPaths;
  /** The config file read, or null when none exists (all defaults). */
  file: string | null;
}

export interface LoadOptions {
  /** --repo */
  repo?: string | undefined;
  /** --config */
  config?: string | undefined;
  env?: NodeJS.ProcessEnv;
}

/**
 * Loads and validates the configuration of the repository a command targets. The parsed YAML
 * is cached as JSON in the state dir, keyed by the file's size, mtime and inode, so hot
 * commands do not pay for the YAML parser.
 */
export function loadConfig(opts: LoadOptions = {}): LoadedConfig {
  const env = opts.env ?? process.env;
  const repo = resolveRepo(targetDir(opts.repo, env));
  const explicit = opts.config !== undefined;
  const file = explicit ? path.resolve(opts.config!) : path.join(repo.mainRoot, 'pool.config.yaml');
  const key = mtimeKey(file);
  if (key === undefined) {
    if (explicit) throw notFoundError(`config file not found: ${file}`, { hint: 'check --config' });
    const config = checkPaths(validateConfig({}, 'defaults', env), repo, 'environment');
    return { config: keepArmedHooks(config, repo), repo, file: null };
  }
  const cacheFile = path.join(repo.stateDir, 'config-cache.json');
  const cached = readCache(cacheFile, file, key);
  const raw = cached === undefined ? parseYamlFile(file) : cached;
  const config = keepArmedHooks(checkPaths(validateConfig(raw, file, env), repo, file), repo);
  // Written only once the file validated: a bad config creates nothing.
  if (cached === undefined) writeCache(cacheFile, { file, key, raw, v: CACHE_VERSION });
  return { config, repo, file };
}

/**
 * A relative `core.hooksPath` (husky's `.husky/_`) is git-ignored and copied into each slot by
 * the hooks provider: the pool's own regenerable copy, so it is a kept cache like
 * `node_modules`. Without this a release saw it as ignored work (refusing, or saving it to a
 * rescue ref) and its clean removed the slot's hooks for the next lease.
 */
function keepArmedHooks(config: Config, repo: RepoPaths): Config {
  const hooks = relativeHooksPath(repo.commonDir);
  if (hooks === null || config.pool.keep.includes(hooks)) return config;
  return { ...config, pool: { ...config.pool, keep: [...config.pool.keep, hooks] } };
}

/** Checks that need the repository's paths (a pool root inside `.git` or the checkout). */
function checkPaths(config: Config, repo: RepoPaths, source: string): Config {
  if (config.pool.root !== null) {
    const root = config.pool.root;
    const problem = poolRootProblem(path.resolve(repo.mainRoot, root), repo, root);
    if (problem) {
      throw configError(`${source}: pool.root must be ${problem}`, {
        hint: `fix pool.root in ${source} (default: <repo>.worktrees beside the checkout)`,
      });
    }
  }
  return config;
}

// The parse rules of the cached form: a cache written by an older parser (0o7 read as 7) is not
// reused.
const CACHE_VERSION = 2;

function readCache(cacheFile: string, file: string, key: string): unknown {
  try {
    const cached = JSON.parse(readFileSync(cacheFile, 'utf8')) as {
      file: string;
      key: string;
      raw: unknown;
      v?: number;
    };
    if (cached.file === file && cached.key === key && cached.v === CACHE_VERSION) return cached.raw;
  } catch {
    // no cache yet, or unreadable: parse
  }
  return undefined;
}

/**
 * The cache holds the parsed file, which may hold credentials (postgres.url): mode 0600 in a
 * 0700 state dir, whatever the umask (D92).
 */
function writeCache(cacheFile: string, content: unknown): void {
  const tmp = `${cacheFile}.${process.pid}.tmp`;
  try {
    ensurePrivateDir(path.dirname(cacheFile));
    writeFileSync(tmp, JSON.stringify(content), { mode: PRIVATE_FILE_MODE, flag: 'w' });
    chmodSync(tmp, PRIVATE_FILE_MODE); // the umask may have removed bits, never added any
    renameSync(tmp, cacheFile);
  } catch {
    // the cache is an optimisation only
    rmSync(tmp, { force: true });
  }
}

// Loaded lazily: the YAML parser costs 20-30 ms of start-up (about 80 files) and is only
// needed on a cache miss.
const require = createRequire(import.meta.url);

/**
 * The yaml module, first found of: `yaml.bundle.cjs` beside this code (a CLI bundle runs this
 * file from its package's dist, where scripts/bundle.mjs puts yaml pre-bundled in one file:
 * a quarter of the load time, D65); yaml resolved from here; yaml resolved from
 * @wtpool/config, whose dependency it is (the bundle's package may not have it).
 */
function requireYaml(): typeof import('yaml') {
  const notFound = (e: unknown) => (e as { code?: string }).code === 'MODULE_NOT_FOUND';
  try {
    return require('./yaml.bundle.cjs') as typeof import('yaml');
  } catch (e) {
    if (!notFound(e)) throw e;
  }
  try {
    return require('yaml') as typeof import('yaml');
  } catch (e) {
    if (!notFound(e)) throw e;
  }
  return createRequire(require.resolve('@wtpool/config'))('yaml') as typeof import('yaml');
}

export function parseYamlFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if (errno(e) === 'ENOENT') throw notFoundError(`config file not found: ${file}`);
    throw e;
  }
  const YAML = requireYaml();
  // YAML 1.2's core schema reads `0o7` and `0x1f` as numbers; a config means decimals, so those
  // stay text and a number key refuses them naming the key (`scale.min: 0o7`, D321).
  const doc = YAML.parseDocument(text, {
    prettyErrors: true,
    uniqueKeys: true,
    customTags: (tags) =>
      tags.filter((t) => typeof t === 'string' || (t.format !== 'OCT' && t.format !== 'HEX')),
  });
  if (doc.errors.length) {
    const err = doc.errors[0]!;
    throw configError(`${file}: invalid YAML: ${err.message.split('\n')[0]}`, {
      hint: `fix the syntax of ${file}`,
    });
  }
  try {
    return doc.toJS();
  } catch (e) {
    // yaml refuses documents whose aliases expand past maxAliasCount (an alias bomb).
    throw configError(`${file}: invalid YAML: ${(e as Error).message.split('\n')[0]}`, {
      hint: `fix the aliases (*name) in ${file}`,
    });
  }
}
