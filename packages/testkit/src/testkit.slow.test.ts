import { execFileSync } from 'node:child_process';
import net from 'node:net';
import { describe, expect, inject, it } from 'vitest';
import { makeTempRepo, PROJECT_ROOT, runCli, tempDir } from './index.js';

function redisCommand(url: string, ...args: string[]): Promise<string> {
  const { port, hostname } = new URL(url);
  return new Promise((resolve, reject) => {
    const s = net.connect(Number(port), hostname);
    let buf = '';
    s.on('data', (d) => {
      buf += d.toString();
      if (buf.endsWith('\r\n')) {
        s.end();
        resolve(buf.trim());
      }
    });
    s.on('error', reject);
    s.write(
      `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`,
    );
  });
}

describe('testkit', () => {
  it('makes a temp repo on main with one commit, outside the project', async () => {
    const repo = await makeTempRepo();
    try {
      expect(await repo.git(['rev-parse', '--abbrev-ref', 'HEAD'])).toBe('main');
      expect(await repo.git(['rev-list', '--count', 'HEAD'])).toBe('1');
      expect(await repo.git(['config', 'commit.gpgsign'])).toBe('false');
      expect(repo.dir.startsWith(PROJECT_ROOT)).toBe(false);
      await expect(repo.git(['status'], PROJECT_ROOT)).rejects.toThrow(/outside the test sandbox/);
    } finally {
      await repo.cleanup();
    }
  });

  it('starts a real redis-server and PostgreSQL for the run', async () => {
    expect(await redisCommand(inject('redisUrl'), 'PING')).toBe('+PONG');
    const pg = new URL(inject('pgUrl'));
    const out = execFileSync(
      'psql',
      ['-h', pg.hostname, '-p', pg.port, '-U', 'postgres', '-d', 'postgres', '-Atc', 'select 6*7'],
      {
        encoding: 'utf8',
      },
    );
    expect(out.trim()).toBe('42');
  });

  it('runs a CLI and reads exit code, stdout and stderr', async () => {
    const dir = tempDir();
    const r = await runCli('sh', ['-c', 'echo out; echo err >&2; exit 3'], { cwd: dir });
    expect(r).toMatchObject({ code: 3, stdout: 'out\n', stderr: 'err\n' });
  });
});
