import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readdirSync, writeFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { tempDir } from './repo.js';

/** A free TCP port on 127.0.0.1 (asked from the kernel, then released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until something accepts TCP connections on the port. */
export async function waitForPort(port: number, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline)
      throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
    await sleep(50);
  }
}

function which(bin: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

// ---------------------------------------------------------------- Redis

export interface RedisServer {
  url: string;
  port: number;
  dir: string;
  confFile: string;
  /** A shell command that restarts this server with its config file (for `pool scale --provision`). */
  restartCommand: string;
  stop(): Promise<void>;
  /** Shut it down, keeping its directory and config (to test "Redis down"). */
  pause(): Promise<void>;
  /** Start it again after pause(), with the same config file and port. */
  start(): Promise<void>;
}

/**
 * Starts a real redis-server on a free loopback port with its own config file and directory.
 * It daemonizes with a pidfile so that `restartCommand` can bounce it like a real deployment.
 */
export async function startRedis(opts: { databases?: number } = {}): Promise<RedisServer> {
  const server = which('redis-server');
  const cli = which('redis-cli');
  if (!server || !cli) {
    throw new Error(
      'redis-server is not installed: run `bash scripts/ensure-test-services.sh` (apt-get install -y redis-server)',
    );
  }
  const dir = tempDir('wtpool-redis-');
  const port = await freePort();
  const confFile = path.join(dir, 'redis.conf');
  const pidFile = path.join(dir, 'redis.pid');
  writeFileSync(
    confFile,
    [
      `port ${port}`,
      'bind 127.0.0.1',
      `dir ${dir}`,
      `pidfile ${pidFile}`,
      `logfile ${path.join(dir, 'redis.log')}`,
      'daemonize yes',
      'save ""',
      'appendonly no',
      `databases ${opts.databases ?? 64}`,
      '',
    ].join('\n'),
  );
  const start = async () => {
    execFileSync(server, [confFile]);
    await waitForPort(port);
  };
  const pause = async () => {
    spawnSync(cli, ['-h', '127.0.0.1', '-p', String(port), 'shutdown', 'nosave'], {
      stdio: 'ignore',
    });
    for (let i = 0; i < 100 && existsSync(pidFile); i++) await sleep(20);
  };
  await start();
  const restartCommand = `${cli} -h 127.0.0.1 -p ${port} shutdown nosave >/dev/null 2>&1; i=0; while [ -e ${pidFile} ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; ${server} ${confFile}`;
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    confFile,
    restartCommand,
    start,
    pause,
    stop: async () => {
      await pause();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------- PostgreSQL

function pgBinDir(): string {
  if (process.env.PG_BIN && existsSync(path.join(process.env.PG_BIN, 'initdb')))
    return process.env.PG_BIN;
  const onPath = which('initdb');
  if (onPath && which('pg_ctl')) return path.dirname(onPath);
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root)
      .filter((v) => existsSync(path.join(root, v, 'bin', 'initdb')))
      .sort((a, b) => Number(b) - Number(a));
    if (versions[0]) return path.join(root, versions[0], 'bin');
  }
  throw new Error(
    'PostgreSQL binaries not found: run `bash scripts/ensure-test-services.sh` (apt-get install -y postgresql) or set PG_BIN',
  );
}

export interface PostgresServer {
  /** Superuser URL of the `postgres` database. */
  url: string;
  port: number;
  dataDir: string;
  stop(): Promise<void>;
  /** Start it again after stop({ keepData: true }). */
  start(): Promise<void>;
  /** Stop without removing the data (to test "PostgreSQL down"). */
  pause(): Promise<void>;
}

/** PostgreSQL refuses to run as root: run its binaries as the `postgres` user then. */
function asPgUser(bin: string, args: string[]): [string, string[]] {
  if (process.getuid?.() !== 0) return [bin, args];
  return ['runuser', ['-u', 'postgres', '--', bin, ...args]];
}

function run(bin: string, args: string[]): void {
  const [cmd, argv] = asPgUser(bin, args);
  const r = spawnSync(cmd, argv, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${bin} ${args.join(' ')} failed: ${r.stderr || r.stdout}`);
}

/** Starts a throw-away PostgreSQL cluster on a free loopback port (trust auth, fsync off). */
export async function startPostgres(): Promise<PostgresServer> {
  const bin = pgBinDir();
  const root = tempDir('wtpool-pg-');
  const dataDir = path.join(root, 'data');
  const sockDir = path.join(root, 'sock');
  mkdirSync(sockDir);
  if (process.getuid?.() === 0) {
    const ids = execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim();
    const gid = execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim();
    chownSync(root, Number(ids), Number(gid));
    chownSync(sockDir, Number(ids), Number(gid));
  }
  run(path.join(bin, 'initdb'), [
    '-D',
    dataDir,
    '-U',
    'postgres',
    '--auth=trust',
    '--no-sync',
    '-E',
    'UTF8',
    '--locale=C',
  ]);
  const port = await freePort();
  const opts = [
    `-p ${port}`,
    `-k ${sockDir}`,
    "-c listen_addresses='127.0.0.1'",
    '-c fsync=off',
    '-c synchronous_commit=off',
    '-c full_page_writes=off',
    '-c max_connections=300',
    '-c shared_buffers=32MB',
  ].join(' ');
  const start = async () => {
    run(path.join(bin, 'pg_ctl'), [
      '-D',
      dataDir,
      '-o',
      opts,
      '-l',
      path.join(root, 'pg.log'),
      '-w',
      '-t',
      '60',
      'start',
    ]);
    await waitForPort(port);
  };
  const pause = async () => {
    run(path.join(bin, 'pg_ctl'), ['-D', dataDir, '-m', 'immediate', '-w', 'stop']);
  };
  await start();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    dataDir,
    start,
    pause,
    stop: async () => {
      try {
        await pause();
      } catch {
        // already stopped
      }
      rmSync(root, { recursive: true, force: true });
    },
  };
}
