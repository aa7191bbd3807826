/**
 * Real redis-server processes in the foreground (so a test can SIGKILL them and start them
 * again on the same port), and a Sentinel topology: one primary, one replica
 * (`--replicaof`), three sentinels each with its own writable sentinel.conf. Used by the
 * Redis client's tests (packages/services/src/resp.slow.test.ts) and fleet failover tests.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from './repo.js';
import { freePort, waitForPort } from './services.js';
import { until } from './wait.js';

export interface RedisProcess {
  port: number;
  /** redis://127.0.0.1:<port> (no credentials). */
  url: string;
  dir: string;
  confFile: string;
  readonly pid: number | undefined;
  /** Starts the server (again) with its config file, on its port; waits until it listens. */
  start(): Promise<void>;
  /** Sends the signal (default SIGKILL) and waits until the process is gone. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Kills it and removes its directory. */
  stop(): Promise<void>;
}

/** redis-cli against 127.0.0.1:port; returns stdout ('' when it failed). */
export function redisCli(port: number, ...args: string[]): string {
  const r = spawnSync('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], {
    encoding: 'utf8',
  });
  return r.status === 0 ? r.stdout : '';
}

/**
 * A redis-server (or, with `sentinel: true`, a redis-sentinel) in the foreground on a free
 * loopback port; `conf` lines are appended to its config file.
 */
export async function startRedisProcess(
  opts: { conf?: string[]; sentinel?: boolean; port?: number } = {},
): Promise<RedisProcess> {
  const dir = tempDir(opts.sentinel ? 'wtpool-sentinel-' : 'wtpool-redisp-');
  const port = opts.port ?? (await freePort());
  const confFile = path.join(dir, opts.sentinel ? 'sentinel.conf' : 'redis.conf');
  const base = opts.sentinel
    ? [`port ${port}`, 'bind 127.0.0.1', `dir ${dir}`, 'daemonize no']
    : [
        `port ${port}`,
        'bind 127.0.0.1',
        `dir ${dir}`,
        'daemonize no',
        'save ""',
        'appendonly no',
        `logfile ${path.join(dir, 'redis.log')}`,
      ];
  writeFileSync(confFile, [...base, ...(opts.conf ?? []), ''].join('\n'));
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  const proc: RedisProcess = {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    confFile,
    get pid() {
      return child?.pid;
    },
    async start() {
      const args = opts.sentinel ? [confFile, '--sentinel'] : [confFile];
      const c = spawn('redis-server', args, { stdio: 'ignore' });
      child = c;
      exited = new Promise((resolve) => c.once('exit', () => resolve()));
      await waitForPort(port);
    },
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      const c = child;
      if (!c || c.exitCode !== null || c.signalCode !== null) return;
      c.kill(signal);
      await exited;
    },
    async stop() {
      await proc.kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await proc.start();
  return proc;
}

export interface SentinelTopology {
  primary: RedisProcess;
  replica: RedisProcess;
  sentinels: RedisProcess[];
  master: string;
  /** redis+sentinel://127.0.0.1:<s1>,127.0.0.1:<s2>,…/<master> (append /<db> for a DB). */
  url: string;
  /** The master's port as the first sentinel that answers names it now. */
  masterPort(): number | undefined;
  stop(): Promise<void>;
}

/**
 * One primary, one replica, `sentinels` (default 3) sentinels with quorum 2, a short
 * down-after (default 500 ms) and failover timeout (default 2000 ms). Returns once the replica
 * is in sync and every sentinel sees the replica and the other sentinels, so a failover can
 * start as soon as the primary dies. `conf` lines go to both data nodes (e.g. requirepass); they
 * start full syncs at once (repl-diskless-sync-delay 0).
 */
export async function startSentinelTopology(
  opts: {
    master?: string;
    sentinels?: number;
    downAfterMs?: number;
    failoverTimeoutMs?: number;
    conf?: string[];
    /** The password of the data nodes, told to the sentinels (sentinel auth-pass). */
    authPass?: string;
  } = {},
): Promise<SentinelTopology> {
  const master = opts.master ?? 'wtmaster';
  const n = opts.sentinels ?? 3;
  const auth = opts.authPass ? [`masterauth ${opts.authPass}`] : [];
  // A primary starts a (diskless) full sync 5 s after a replica asks, waiting for more replicas
  // (repl-diskless-sync-delay): with one replica that is only a wait, at the start and whenever a
  // node rejoins after a failover.
  const data = ['repl-diskless-sync-delay 0', ...(opts.conf ?? []), ...auth];
  const primary = await startRedisProcess({ conf: data });
  const replica = await startRedisProcess({
    conf: [...data, `replicaof 127.0.0.1 ${primary.port}`],
  });
  const cliAuth = opts.authPass ? ['--no-auth-warning', '-a', opts.authPass] : [];
  await until('the replica in sync with the primary', () =>
    /master_link_status:up/.test(redisCli(replica.port, ...cliAuth, 'INFO', 'replication')),
  );
  const sentinels: RedisProcess[] = [];
  for (let i = 0; i < n; i++) {
    sentinels.push(
      await startRedisProcess({
        sentinel: true,
        conf: [
          `sentinel monitor ${master} 127.0.0.1 ${primary.port} 2`,
          `sentinel down-after-milliseconds ${master} ${opts.downAfterMs ?? 500}`,
          `sentinel failover-timeout ${master} ${opts.failoverTimeoutMs ?? 2000}`,
          `sentinel parallel-syncs ${master} 1`,
          ...(opts.authPass ? [`sentinel auth-pass ${master} ${opts.authPass}`] : []),
        ],
      }),
    );
  }
  const field = (port: number, name: string): string | undefined => {
    const lines = redisCli(port, 'SENTINEL', 'master', master).split('\n');
    const i = lines.findIndex((l) => l.trim() === name);
    return i >= 0 ? lines[i + 1]?.trim() : undefined;
  };
  await until(
    'every sentinel seeing the replica and the other sentinels',
    () =>
      sentinels.every(
        (s) =>
          field(s.port, 'num-slaves') === '1' &&
          field(s.port, 'num-other-sentinels') === String(n - 1),
      ),
    { attempts: 1200, everyMs: 100 },
  );
  const url = `redis+sentinel://${sentinels.map((s) => `127.0.0.1:${s.port}`).join(',')}/${master}`;
  return {
    primary,
    replica,
    sentinels,
    master,
    url,
    masterPort() {
      for (const s of sentinels) {
        const out = redisCli(s.port, 'SENTINEL', 'get-master-addr-by-name', master).split('\n');
        if (out[1]?.trim()) return Number(out[1].trim());
      }
      return undefined;
    },
    async stop() {
      await Promise.all([...sentinels, replica, primary].map((p) => p.stop()));
    },
  };
}

/** A self-signed certificate for 127.0.0.1 / localhost (openssl), as PEM files in dir. */
export function selfSignedCert(dir: string): { cert: string; key: string } {
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  const r = spawnSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '2',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost,IP:127.0.0.1',
      '-keyout',
      key,
      '-out',
      cert,
    ],
    { stdio: 'pipe' },
  );
  if (r.status !== 0) throw new Error(`openssl failed: ${String(r.stderr)}`);
  return { cert, key };
}

/**
 * A redis-server that serves only TLS (the plain port off), with a self-signed certificate made
 * in `dir` for 127.0.0.1 / localhost; `cert` is its PEM file (the CA a client must trust).
 */
export async function startTlsRedisProcess(
  dir: string,
): Promise<{ redis: RedisProcess; cert: string }> {
  const { cert, key } = selfSignedCert(dir);
  // A free port from the helper: started once plainly on it, then stopped.
  const probe = await startRedisProcess();
  const port = probe.port;
  await probe.stop();
  const redis = await startRedisProcess({
    port,
    conf: [
      'port 0',
      `tls-port ${port}`,
      `tls-cert-file ${cert}`,
      `tls-key-file ${key}`,
      `tls-ca-cert-file ${cert}`,
      'tls-auth-clients no',
    ],
  });
  return { redis, cert };
}
