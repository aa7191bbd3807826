/**
 * The `pool` launcher (bin/pool, D386; the monitor's bin links to it): it keeps NODE_EXTRA_CA_CERTS from Node's start (Node 20
 * parses the whole file before any script runs) without changing what the command trusts or
 * what its children see. Real processes: the launcher run through a symlink (as npm links
 * bins), a TLS-only redis-server whose self-signed certificate is trusted only through
 * NODE_EXTRA_CA_CERTS, and a `pool run` child that prints its environment.
 */
import { spawn, spawnSync } from 'node:child_process';
import { promises as fs, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  GIT_ENV,
  PROJECT_ROOT,
  makeTempRepo,
  startTlsRedisProcess,
  tempDir,
  until,
  type RedisProcess,
  type TempRepo,
} from '@wtpool/testkit';

const LAUNCHER = path.join(PROJECT_ROOT, 'packages/pool/bin/pool');

let sandbox: string;
let repo: TempRepo;
let fileRepo: TempRepo;
let redis: RedisProcess;
let cert: string;
/** node_modules/.bin/pool of an npm install: a symlink to the launcher. */
let linked: string;

/** This process's environment without its NODE_EXTRA_CA_CERTS, then `env`. */
function withoutCa(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const base = { ...process.env };
  delete base.NODE_EXTRA_CA_CERTS;
  return { ...base, ...env };
}

/** The linked launcher in the rediss:// repository, NODE_EXTRA_CA_CERTS as given. */
function pool(args: string[], env: NodeJS.ProcessEnv) {
  return spawnSync(linked, args, {
    cwd: repo.dir,
    encoding: 'utf8',
    env: withoutCa({ ...GIT_ENV, ...env }),
  });
}

beforeAll(async () => {
  sandbox = tempDir('wtpool-launcher-');
  ({ redis, cert } = await startTlsRedisProcess(sandbox));
  repo = await makeTempRepo({
    files: {
      'pool.config.yaml': [
        'store:',
        '  backend: redis',
        `  url: rediss://127.0.0.1:${redis.port}/0`,
        'scale:',
        '  min: 1',
        '  max: 1',
        'deps:',
        '  strategy: none',
        '',
      ].join('\n'),
    },
  });
  fileRepo = await makeTempRepo({
    files: { 'pool.config.yaml': 'scale:\n  min: 1\n  max: 1\ndeps:\n  strategy: none\n' },
  });
  await fs.mkdir(path.join(sandbox, 'node_modules/.bin'), { recursive: true });
  linked = path.join(sandbox, 'node_modules/.bin/pool');
  await fs.symlink(path.relative(path.dirname(linked), LAUNCHER), linked);
});
afterAll(async () => {
  await redis?.stop();
  await repo?.cleanup();
  await fileRepo?.cleanup();
  await fs.rm(sandbox, { recursive: true, force: true });
});

describe('the pool launcher', () => {
  it('keeps NODE_EXTRA_CA_CERTS from Node’s start, yet a rediss:// store signed by that CA is trusted', () => {
    const init = pool(['init', '--json'], { NODE_EXTRA_CA_CERTS: cert, WTPOOL_TRACE: '1' });
    expect(init.status, init.stderr).toBe(0);
    // The trace names the file as kept from Node's start (Node did not parse it).
    expect(init.stderr).toContain(`trace: NODE_EXTRA_CA_CERTS (${cert}) kept from Node's start`);
    const st = pool(['status', '--json'], { NODE_EXTRA_CA_CERTS: cert });
    expect(st.status, st.stderr).toBe(0);
    const slots = (JSON.parse(st.stdout) as { slots: Array<{ id: string }> }).slots;
    expect(slots.map((s) => s.id)).toEqual(['wt-1']);
    // With a CA file that cannot be read, the same command cannot trust the server (the check
    // is real), and the file is named in Node's own warning.
    const missing = pool(['status', '--json'], {
      NODE_EXTRA_CA_CERTS: path.join(sandbox, 'absent.pem'),
    });
    expect(missing.status).toBe(6);
    expect(missing.stderr).toMatch(/SELF_SIGNED|DEPTH_ZERO|certificate/i);
    expect(missing.stderr).toContain(
      `Ignoring extra certs from \`${path.join(sandbox, 'absent.pem')}\``,
    );
  });

  it('gives every child the variable back, and leaves no trace of its own', () => {
    const r = pool(
      [
        'run',
        'agent',
        'env',
        '--',
        'sh',
        '-c',
        'printf "%s|%s\\n" "$NODE_EXTRA_CA_CERTS" "${WTPOOL_NODE_EXTRA_CA_CERTS-unset}"',
      ],
      { NODE_EXTRA_CA_CERTS: cert },
    );
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.split('\n')).toContain(`${cert}|unset`);
    // Without the variable nothing is moved, and a child sees none (a file-backed pool: this
    // one's store needs the CA).
    const plain = spawnSync(
      linked,
      ['run', 'agent', 'env', '--', 'sh', '-c', 'printf "[%s]\\n" "${NODE_EXTRA_CA_CERTS-unset}"'],
      { cwd: fileRepo.dir, encoding: 'utf8', env: withoutCa({ ...GIT_ENV, WTPOOL_TRACE: '1' }) },
    );
    expect(plain.status, plain.stderr).toBe(0);
    expect(plain.stdout.split('\n')).toContain('[unset]');
    expect(plain.stderr).not.toContain('kept from Node');
  });

  it('runs from its real path, through a symlink, and from its own directory', () => {
    const version = JSON.parse(
      readFileSync(path.join(PROJECT_ROOT, 'packages/pool/package.json'), 'utf8'),
    ) as { version: string };
    for (const [bin, cwd] of [
      [LAUNCHER, repo.dir],
      [linked, repo.dir],
      ['./pool', path.dirname(LAUNCHER)],
    ] as const) {
      const r = spawnSync(bin, ['--version'], { cwd, encoding: 'utf8' });
      expect(r.status, `${bin}: ${r.stderr}`).toBe(0);
      expect(r.stdout.trim()).toBe(`pool ${version.version}`);
    }
  });

  it('is the monitor’s bin too (a link to it): Node starts without the variable, its own bin runs', async () => {
    const bin = path.join(sandbox, 'node_modules/.bin/monitor');
    const target = path.join(PROJECT_ROOT, 'packages/monitor/bin/monitor');
    expect(await fs.readlink(target)).toBe('../../pool/bin/pool');
    await fs.symlink(path.relative(path.dirname(bin), target), bin);
    const env = withoutCa({ ...GIT_ENV, NODE_EXTRA_CA_CERTS: cert });
    const st = spawnSync(bin, ['status', '--json', '--repo', fileRepo.dir], {
      cwd: fileRepo.dir,
      encoding: 'utf8',
      env,
    });
    expect([0, 20, 21], st.stderr).toContain(st.status);
    expect(JSON.parse(st.stdout)).toHaveProperty('disk.bytes');
    // A long-lived one: the environment Node started with is in /proc.
    const serve = spawn(bin, ['serve', '--port', '0', '--json', '--repo', fileRepo.dir], {
      cwd: fileRepo.dir,
      env,
    });
    try {
      let out = '';
      serve.stdout.on('data', (d: Buffer) => (out += d.toString()));
      await until('monitor serve to print its url', () => out.includes('"url"'));
      const started = readFileSync(`/proc/${serve.pid}/environ`, 'utf8').split('\0');
      expect(started).toContain(`WTPOOL_NODE_EXTRA_CA_CERTS=${cert}`);
      expect(started.filter((e) => e.startsWith('NODE_EXTRA_CA_CERTS='))).toEqual([]);
      expect(readFileSync(`/proc/${serve.pid}/cmdline`, 'utf8')).toContain('monitor.js');
    } finally {
      serve.kill('SIGTERM');
    }
  });
});
