/**
 * The bin's V8 code cache (bin/code-cache.js, D380), with real processes on a copy of the built
 * bin and bundle: written beside the bundle (private) by the first run, used by the next, and a
 * corrupt, stale, untrusted or outdated cache file is ignored and rewritten; from a read-only
 * install the bin still works, caching in the user's cache directory or not at all.
 */
import { spawnSync } from 'node:child_process';
import { promises as fs, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GIT_ENV, PROJECT_ROOT, makeTempRepo, tempDir, type TempRepo } from '@wtpool/testkit';

const POOL = path.join(PROJECT_ROOT, 'packages/pool');
/** The cache file of a command (one per command: `--help` and other non-names share `other`). */
const cacheOf = (command: string) =>
  `cli-pool.bundle.cjs.${command}.node-${process.version}-${process.arch}.v8cache`;
const CACHE = cacheOf('status');
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const NOBODY = 65534;

let sandbox: string;
let repo: TempRepo;

/** A copy of the pool's bin and its CommonJS bundle (with the files it requires) under `dir`. */
async function install(dir: string): Promise<{ bin: string; dist: string }> {
  await fs.mkdir(path.join(dir, 'bin'), { recursive: true });
  await fs.mkdir(path.join(dir, 'dist'), { recursive: true });
  for (const f of ['pool.js', 'code-cache.js', 'extra-ca-env.js', 'package.json'])
    await fs.copyFile(path.join(POOL, 'bin', f), path.join(dir, 'bin', f));
  for (const f of await fs.readdir(path.join(POOL, 'dist')))
    if (f.endsWith('.cjs'))
      await fs.copyFile(path.join(POOL, 'dist', f), path.join(dir, 'dist', f));
  return { bin: path.join(dir, 'bin', 'pool.js'), dist: path.join(dir, 'dist') };
}

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
  /** The trace's line about the bundle: the cache's fate (hit, miss, stale, corrupt, …). */
  cache: string | undefined;
  written: string | undefined;
}

function run(
  bin: string,
  args: string[],
  opts: { uid?: number; env?: NodeJS.ProcessEnv } = {},
): Run {
  const r = spawnSync(process.execPath, [bin, ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...GIT_ENV, WTPOOL_TRACE: '1', ...opts.env },
    ...(opts.uid !== undefined ? { uid: opts.uid, gid: opts.uid } : {}),
  });
  const line = r.stderr.split('\n').find((l) => l.startsWith('trace: bundle '));
  return {
    status: r.status,
    stdout: r.stdout,
    stderr: r.stderr,
    cache: line?.match(/\(code cache ([a-z]+)\)/)?.[1],
    written: line?.match(/code cache written to (\S+)/)?.[1],
  };
}

/** `pool status` on the test repository: a command with traced steps (so the trace prints). */
const status = (bin: string) => run(bin, ['status', '--repo', repo.dir]);

beforeAll(async () => {
  sandbox = tempDir('wtpool-codecache-');
  repo = await makeTempRepo();
});
afterAll(async () => {
  await repo.cleanup();
  await fs.rm(sandbox, { recursive: true, force: true });
});

describe('the bin’s code cache', () => {
  it('is written beside the bundle (0600) by the first run and used by the next', async () => {
    const { bin, dist } = await install(path.join(sandbox, 'a'));
    const first = status(bin);
    expect(first.status, first.stderr).toBe(0);
    expect(first.cache).toBe('miss');
    expect(first.written).toBe(path.join(dist, CACHE));
    expect(statSync(path.join(dist, CACHE)).mode & 0o777).toBe(0o600);
    const second = status(bin);
    expect(second.status, second.stderr).toBe(0);
    expect(second.cache).toBe('hit');
    expect(second.written).toBeUndefined();
    // Same answer with and without the cache.
    expect(second.stdout).toBe(first.stdout);
    // Another command has its own cache (its functions), written by its first run.
    const help = run(bin, ['--help']);
    expect(help.status, help.stderr).toBe(0);
    expect((await fs.readdir(dist)).filter((f) => f.endsWith('.v8cache')).sort()).toEqual(
      [cacheOf('other'), CACHE].sort(),
    );
    expect(status(bin).cache).toBe('hit');
  });

  it('ignores and rewrites a corrupt, truncated, stale or untrusted cache file', async () => {
    const { bin, dist } = await install(path.join(sandbox, 'b'));
    const file = path.join(dist, CACHE);
    expect(status(bin).written).toBe(file);
    const good = await fs.readFile(file);
    const nl = good.indexOf(10);
    const damaged: Array<[what: string, bytes: Buffer, mode: number, expected: string]> = [
      // One byte of V8's payload flipped: V8 would not notice (it checks lengths and versions).
      [
        'corrupt',
        Buffer.concat([good.subarray(0, -1), Buffer.from([good.at(-1)! ^ 0xff])]),
        0o600,
        'corrupt',
      ],
      [
        'truncated',
        good.subarray(0, nl + 1 + Math.floor((good.length - nl) / 2)),
        0o600,
        'corrupt',
      ],
      ['garbage', Buffer.from('not a cache at all'), 0o600, 'stale'],
      // The header of another bundle (same Node): its bytecode is not this bundle's.
      [
        'stale',
        Buffer.concat([
          Buffer.from(
            good
              .subarray(0, nl)
              .toString('latin1')
              .replace(/ [0-9a-f]{64} /, ` ${'0'.repeat(64)} `),
          ),
          good.subarray(nl),
        ]),
        0o600,
        'stale',
      ],
      ['untrusted', good, 0o666, 'untrusted'],
    ];
    for (const [what, bytes, mode, expected] of damaged) {
      await fs.rm(file);
      await fs.writeFile(file, bytes, { mode });
      await fs.chmod(file, mode);
      const r = status(bin);
      expect(r.status, `${what}: ${r.stderr}`).toBe(0);
      expect(r.cache, what).toBe(expected);
      expect(r.written, what).toBe(file);
      expect(statSync(file).mode & 0o777, what).toBe(0o600);
      expect(status(bin).cache, `${what}, then`).toBe('hit');
    }
  });

  it('is stale once the bundle changes, and rewritten', async () => {
    const { bin, dist } = await install(path.join(sandbox, 'c'));
    expect(status(bin).cache).toBe('miss');
    expect(status(bin).cache).toBe('hit');
    await fs.appendFile(path.join(dist, 'cli-pool.bundle.cjs'), '\n// rebuilt\n');
    const r = status(bin);
    expect(r.status, r.stderr).toBe(0);
    expect(r.cache).toBe('stale');
    expect(r.written).toBe(path.join(dist, CACHE));
    expect(status(bin).cache).toBe('hit');
  });

  it('works from a read-only install: caches in the user’s cache directory, or not at all', async () => {
    const dir = path.join(sandbox, 'ro');
    const { bin, dist } = await install(dir);
    const home = path.join(sandbox, 'home');
    await fs.mkdir(home, { recursive: true });
    // Read-only for the user who runs it: as root, the bin runs as nobody (root writes anywhere).
    await fs.chmod(sandbox, 0o755);
    for (const d of [dir, path.join(dir, 'bin'), dist]) await fs.chmod(d, 0o555);
    const uid = isRoot ? NOBODY : undefined;
    if (isRoot) await fs.chown(home, NOBODY, NOBODY);
    try {
      const env = { XDG_CACHE_HOME: home, HOME: home };
      const help = (o = {}) => run(bin, ['--help'], { uid, env, ...o });
      const first = help();
      expect(first.status, first.stderr).toBe(0);
      expect(first.stdout).toContain('Usage: pool');
      await expect(fs.access(path.join(dist, cacheOf('other')))).rejects.toThrow();
      const cacheDir = path.join(home, 'worktree-pool', 'v8');
      const [cached] = (await fs.readdir(cacheDir)).filter((f) => f.endsWith(cacheOf('other')));
      expect(cached).toBeDefined();
      const file = path.join(cacheDir, cached!);
      expect(statSync(cacheDir).mode & 0o777).toBe(0o700);
      expect(statSync(file).mode & 0o777).toBe(0o600);
      // Used, not rewritten, by the next run (a rewrite is a rename: a new inode).
      const ino = statSync(file).ino;
      expect(help().status).toBe(0);
      expect(statSync(file).ino).toBe(ino);
      // Nowhere writable at all: it still works.
      const none = help({ env: { XDG_CACHE_HOME: path.join(dist, 'nowhere'), HOME: dist } });
      expect(none.status, none.stderr).toBe(0);
      expect(none.stdout).toContain('Usage: pool');
    } finally {
      for (const d of [dir, path.join(dir, 'bin'), dist]) await fs.chmod(d, 0o755);
    }
  });
});
