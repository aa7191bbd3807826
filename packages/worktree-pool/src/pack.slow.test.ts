/**
 * The one publishable package, as a new user gets it: `scripts/pack.mjs` packs it, pnpm and npm
 * install the tarball into a fresh repository from the local store/cache, and there, all from
 * node_modules/.bin: every bin answers --version, `pool setup`, `pool init`, acquire, a gated
 * commit rejected and one that passes, release. No @wtpool/* name is looked up or installed.
 * Each bin is the workspace's launcher (packages/pool/bin/pool, D386, D396): `pool run` with
 * NODE_EXTRA_CA_CERTS set to a real PEM file shows its child the variable while the node
 * process itself was started without it.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT, makeTempRepo, runCli, selfSignedCert, type TempRepo } from '@wtpool/testkit';

const TSCONFIG = JSON.stringify({
  compilerOptions: { strict: true, module: 'NodeNext', outDir: 'dist', rootDir: 'src' },
  include: ['src'],
});
const BINS = ['pool', 'monitor', 'tracks', 'gates', 'integrate'];
let tarball: string;

beforeAll(() => {
  const out = execFileSync('node', [path.join(PROJECT_ROOT, 'scripts/pack.mjs')], {
    cwd: PROJECT_ROOT,
    encoding: 'utf8',
  });
  tarball = out.trimEnd().split('\n').at(-1)!;
}, 300_000);

describe.each([
  { pm: 'pnpm', add: ['add', '-D', '--prefer-offline'] },
  { pm: 'npm', add: ['install', '-D', '--prefer-offline', '--no-audit', '--no-fund'] },
])('the tarball installed with $pm', ({ pm, add }) => {
  let repo: TempRepo;
  // The repository's own bins first; tsc and prettier (the gates' commands) from the toolkit's.
  let env: NodeJS.ProcessEnv;
  const bin = (name: string) => path.join(repo.dir, 'node_modules/.bin', name);
  const run = (name: string, args: string[], cwd = repo.dir) =>
    runCli(bin(name), args, { cwd, env });
  const commit = async (cwd: string, file: string, content: string) => {
    await repo.write(file, content, cwd);
    await repo.git(['add', '--', file], cwd);
    return runCli('git', ['commit', '-q', '-m', `add ${file}`], { cwd, env });
  };

  beforeAll(async () => {
    repo = await makeTempRepo({
      files: {
        'package.json': JSON.stringify(
          { name: 'adopter', private: true, type: 'module', scripts: { build: 'tsc -p .' } },
          null,
          2,
        ),
        'tsconfig.json': TSCONFIG,
        '.gitignore': 'dist/\nnode_modules/\n',
        '.prettierignore': 'pnpm-lock.yaml\npackage-lock.json\n',
        'src/index.ts': 'export const one: number = 1;\n',
      },
    });
    env = {
      PATH: [
        path.join(repo.dir, 'node_modules/.bin'),
        path.join(PROJECT_ROOT, 'node_modules/.bin'),
        process.env.PATH,
      ].join(path.delimiter),
      INIT_CWD: '',
      RUN_TESTS_ON_COMMIT: '',
    };
    const r = await runCli(pm, [...add, tarball], { cwd: repo.dir, env });
    expect(r.code, r.stdout + r.stderr).toBe(0);
  }, 600_000);
  afterAll(() => repo?.cleanup());

  it('installs bins and the library with no @wtpool/* package', async () => {
    for (const b of BINS) {
      const r = await run(b, ['--version']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.trim()).toMatch(new RegExp(`^${b} \\d+\\.\\d+\\.\\d+$`));
    }
    expect(existsSync(path.join(repo.dir, 'node_modules/@wtpool'))).toBe(false);
    const lock = ['pnpm-lock.yaml', 'package-lock.json']
      .map((f) => path.join(repo.dir, f))
      .find(existsSync)!;
    expect(readFileSync(lock, 'utf8')).not.toContain('@wtpool/');
    const lib = await runCli(
      'node',
      ['-e', "import('worktree-pool').then(m => console.log(typeof m.WorktreePool))"],
      { cwd: repo.dir, env },
    );
    expect(lib.stdout.trim()).toBe('function');
    const types = path.join(repo.dir, 'node_modules/worktree-pool/dist/index.d.ts');
    expect(readFileSync(types, 'utf8')).toContain('../types/pool/index.js');
    expect(readdirSync(path.join(repo.dir, 'node_modules/worktree-pool/types/pool'))).toContain(
      'pool.d.ts',
    );
  });

  it('sets up, inits, leases, gates commits and releases', async () => {
    const s = await run('pool', ['setup', '--json']);
    expect(s.code, s.stderr).toBe(0);
    const setup = s.json<{ config: { action: string }; gates: { ok: boolean; mode: string } }>();
    expect(setup.config.action).toBe('written');
    expect(setup.gates).toMatchObject({ ok: true, mode: 'shared' });
    const config = readFileSync(path.join(repo.dir, 'pool.config.yaml'), 'utf8');
    expect(config).toContain(`build: ${pm === 'npm' ? 'npm run -s' : 'pnpm -s'} build`);
    const scripts = JSON.parse(readFileSync(path.join(repo.dir, 'package.json'), 'utf8')).scripts;
    expect(scripts.pool).toBe('pool');
    // Idempotent: a second run keeps the file it wrote.
    const again = (await run('pool', ['setup', '--json'])).json<{ config: { action: string } }>();
    expect(again.config.action).toBe('kept');
    await repo.write(
      'pool.config.yaml',
      config.replace('min: 3', 'min: 1').replace('max: 10', 'max: 1'),
    );
    await repo.git(['add', '-A']);
    await repo.git(['commit', '-q', '--no-verify', '-m', 'adopt worktree-pool']);

    const init = await run('pool', ['init', '--json']);
    expect(init.code, init.stderr).toBe(0);
    const acq = await run('pool', ['acquire', 'agent-1', 'first task', '--no-wait', '--json']);
    expect(acq.code, acq.stderr).toBe(0);
    const lease = acq.json<{ slot: string; path: string }>();
    expect(existsSync(path.join(lease.path, 'node_modules/worktree-pool/bin/pool.js'))).toBe(true);

    const bad = await commit(lease.path, 'src/bad.ts', 'export const bad: number = "one";\n');
    expect(bad.code).not.toBe(0);
    expect(bad.stdout + bad.stderr).toContain('the build gate failed');
    await repo.git(['rm', '-q', '-f', 'src/bad.ts'], lease.path);
    const good = await commit(lease.path, 'src/good.ts', 'export const good: number = 2;\n');
    expect(good.code, good.stdout + good.stderr).toBe(0);

    const rel = await run('pool', ['release', lease.slot, 'agent-1', '--json']);
    expect(rel.code, rel.stderr).toBe(0);
  }, 900_000);

  it('starts node without NODE_EXTRA_CA_CERTS and gives it back to the command it runs', async () => {
    // Every bin is the workspace's launcher, copied; the pool's bin and bundle beside it.
    const installed = path.join(repo.dir, 'node_modules/worktree-pool');
    const launcher = readFileSync(path.join(PROJECT_ROOT, 'packages/pool/bin/pool'), 'utf8');
    for (const b of BINS)
      expect(readFileSync(path.join(installed, 'bin', b), 'utf8')).toBe(launcher);
    const { cert } = selfSignedCert(repo.sandbox);
    expect(readFileSync(cert, 'utf8')).toContain('-----BEGIN CERTIFICATE-----');
    const caEnv = { ...env, NODE_EXTRA_CA_CERTS: cert, WTPOOL_TRACE: '1' };
    // The command's parent is the node process of `pool run` (argv, no shell): its environment
    // as it was exec'd (/proc/PID/environ, which later changes to process.env do not touch).
    const probe = [
      'printf "child=%s|%s\\n" "$NODE_EXTRA_CA_CERTS" "${WTPOOL_NODE_EXTRA_CA_CERTS-unset}"',
      'printf "parent=%s\\n" "$(tr "\\0" " " < /proc/$PPID/cmdline)"',
      'tr "\\0" "\\n" < /proc/$PPID/environ | grep -q "^NODE_EXTRA_CA_CERTS=" && echo node-start=with || echo node-start=without',
      'tr "\\0" "\\n" < /proc/$PPID/environ | grep "^WTPOOL_NODE_EXTRA_CA_CERTS="',
    ].join('; ');
    const r = await runCli(bin('pool'), ['run', 'agent-2', 'ca check', '--', 'sh', '-c', probe], {
      cwd: repo.dir,
      env: caEnv,
    });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines).toContain(`child=${cert}|unset`);
    expect(lines.find((l) => l.startsWith('parent='))).toMatch(
      /^parent=\S*node \S*worktree-pool\/bin\/pool\.js run /,
    );
    expect(lines).toContain('node-start=without');
    expect(lines).toContain(`WTPOOL_NODE_EXTRA_CA_CERTS=${cert}`);
    expect(r.stderr).toContain(`trace: NODE_EXTRA_CA_CERTS (${cert}) kept from Node's start`);
    // The code cache resolves beside the installed bundle: the second `status` uses the first's.
    for (const n of [1, 2]) {
      const st = await runCli(bin('pool'), ['status', '--json'], { cwd: repo.dir, env: caEnv });
      expect(st.code, st.stderr).toBe(0);
      if (n === 2)
        expect(st.stderr).toMatch(/trace: bundle cli-pool\.bundle\.cjs: .*code cache hit/);
    }
    expect(readdirSync(path.join(installed, 'dist')).some((f) => f.endsWith('.v8cache'))).toBe(
      true,
    );
  }, 300_000);
});
