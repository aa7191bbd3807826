/**
 * `pool scale --provision`: raise Redis's physical `databases` to a target with exactly one
 * restart. The ceiling read is recorded in the band the services use: the host's
 * `redis-band.json`, or in a fleet (store.backend redis) the fleet's band, which every host
 * shares. Run per host: the lock below serializes the provisioners of one host. Idempotent (already there → no restart), serialized by a lock so two concurrent
 * provisioners restart Redis once, and refused without `yes` when nobody can confirm.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import {
  askYesNo,
  canAsk,
  configError,
  errno,
  failure,
  lastLine,
  redact,
  run,
  usageError,
} from '@wtpool/core';
import type { LoadedConfig } from '@wtpool/config';
import { ensurePrivateDir, withLock, writeFileAtomic } from '@wtpool/lock';
import { physicalDatabases, redisInfo } from './resp.js';
import { bandFor } from './fleet-band.js';

export interface ProvisionRedisOptions {
  /** Target `databases` (default redis.provisionTarget). */
  target?: number;
  /** --yes: do not ask. */
  yes?: boolean;
  /** A human is at a terminal and can answer `confirm` (default: stdin and stderr are TTYs). */
  interactive?: boolean;
  /** Asks the question (default: a y/N prompt on stderr). */
  confirm?: (question: string) => Promise<boolean>;
  warn?: (message: string) => void;
  progress?: (message: string) => void;
  /** A CLI output (ctx.out): used for warn/progress when those are not given. */
  out?: { warn(message: string): void; progress(message: string): void };
  event?: (type: string, details: Record<string, unknown>) => Promise<void>;
  /** How long to wait for Redis to answer after the restart (ms, default 30 s). */
  waitMs?: number;
}

export interface ProvisionRedisResult {
  before: number;
  after: number;
  target: number;
  restarted: boolean;
  message: string;
}

/** Sets (or adds) the `databases` directive of a redis.conf text. */
export function withDatabases(conf: string, n: number): string {
  const re = /^[ \t]*databases[ \t]+\S+[ \t]*$/gm;
  if (re.test(conf)) return conf.replace(re, `databases ${n}`);
  return `${conf}${conf === '' || conf.endsWith('\n') ? '' : '\n'}databases ${n}\n`;
}

async function waitForDatabases(url: string, waitMs: number): Promise<number> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      return await physicalDatabases(url);
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

export async function provisionRedis(
  loaded: LoadedConfig,
  opts: ProvisionRedisOptions = {},
): Promise<ProvisionRedisResult> {
  const r = loaded.config.redis;
  if (!r.url) {
    throw configError('Redis is not configured (redis.url is empty)', {
      hint: 'set redis.url in pool.config.yaml',
    });
  }
  const warn = opts.warn ?? ((m: string) => opts.out?.warn(m));
  const progress = opts.progress ?? ((m: string) => opts.out?.progress(m));
  const target = opts.target ?? r.provisionTarget;
  if (!Number.isInteger(target) || target < 1 || target > 100_000) {
    throw usageError(`invalid --target ${target}`, { hint: 'a number of databases, e.g. 128' });
  }
  const url = r.url;
  const lockTarget = path.join(loaded.repo.stateDir, 'redis-provision');
  ensurePrivateDir(loaded.repo.stateDir);
  return withLock(
    lockTarget,
    async (lock) => {
      const before = await physicalDatabases(url);
      if (before >= target) {
        await bandFor(loaded.config, loaded.repo).update((d) => void (d.physical = before));
        return {
          before,
          after: before,
          target,
          restarted: false,
          message: `Redis already has ${before} databases (≥ ${target}); nothing to do, no restart`,
        };
      }
      if (!r.confFile || !r.restartCommand) {
        throw configError(
          `raising Redis databases needs redis.confFile and redis.restartCommand (missing: ${[!r.confFile && 'confFile', !r.restartCommand && 'restartCommand'].filter(Boolean).join(', ')})`,
          { hint: 'set them in pool.config.yaml, or raise `databases` in redis.conf yourself' },
        );
      }
      const confFile = path.resolve(loaded.repo.mainRoot, r.confFile);
      const question = `This restarts Redis at ${redact(url)} once to raise databases ${before} → ${target}; every client of that Redis is disconnected. Continue?`;
      warn(
        `raising Redis databases ${before} → ${target} restarts Redis once: every client of ${redact(url)} is disconnected`,
      );
      if (!opts.yes) {
        const interactive = opts.interactive ?? canAsk();
        if (!interactive) {
          throw usageError('refusing to restart Redis without confirmation (no terminal)', {
            hint: 'run `pool scale --provision --yes` to confirm',
          });
        }
        if (!(await (opts.confirm ?? askYesNo)(question))) {
          throw failure('ERR_ABORTED', 'Redis provisioning aborted; nothing was changed');
        }
      }
      let conf: string;
      try {
        conf = await fs.readFile(confFile, 'utf8');
      } catch (e) {
        throw configError(`cannot read redis.confFile ${confFile}: ${errno(e) ?? String(e)}`, {
          hint: 'point redis.confFile at the redis.conf this Redis was started with',
        });
      }
      const mode = (await fs.stat(confFile)).mode & 0o777;
      // The file lock alone does not exclude a holder stopped past its stale period: never
      // lower what is configured, and write only while the lock is still ours.
      const configured = Number(/^[ \t]*databases[ \t]+(\d+)[ \t]*$/m.exec(conf)?.[1] ?? 0);
      lock.assertHeld();
      await writeFileAtomic(confFile, withDatabases(conf, Math.max(target, configured)), { mode });
      progress(`restarting Redis (${r.restartCommand})…`);
      const runIdBefore = await redisInfo(url, 'run_id').catch(() => undefined);
      // The restart command comes from pool.config.yaml (the operator's own file), not a user.
      const res = await run('sh', ['-c', r.restartCommand], { tail: 4000 });
      if (res.code !== 0) {
        throw failure(
          'ERR_REDIS_RESTART',
          `redis.restartCommand exited ${res.code}: ${redact(lastLine(res.output))}`,
          {
            hint: `${confFile} now says databases ${target}; restart Redis by hand`,
            // Redacted by toJSON like the message: the command or its output may hold a URL.
            details: { command: r.restartCommand, exitCode: res.code, output: res.output },
          },
        );
      }
      const after = await waitForDatabases(url, opts.waitMs ?? 30_000);
      if (after !== target) {
        throw failure(
          'ERR_REDIS_PROVISION',
          `Redis restarted but reports databases ${after}, not ${target}`,
          {
            hint: `check that Redis is started with ${confFile} (redis.confFile) and that redis.restartCommand restarts it`,
          },
        );
      }
      await bandFor(loaded.config, loaded.repo).update((d) => void (d.physical = after));
      const runIdAfter = await redisInfo(url, 'run_id').catch(() => undefined);
      await opts.event?.('redis-provision', {
        from: before,
        to: after,
        runIdBefore,
        runIdAfter,
      });
      return {
        before,
        after,
        target,
        restarted: true,
        message: `Redis restarted once: databases ${before} → ${after}`,
      };
    },
    { purpose: 'pool scale --provision', timeout: 120_000 },
  );
}
