/**
 * The Redis client of the band, the monitor and the lease store (docs/services.md "The Redis
 * client", D385): one connection per call, pipelined commands, a streaming RESP2 decoder
 * (resp-decoder.ts). It stays hand-written because ioredis adds ~40 ms to every CLI process
 * that talks to Redis (`pnpm bench redis-client`, D385), while this costs a socket.
 *
 * URLs: redis://, rediss:// (TLS; extra CAs via NODE_EXTRA_CA_CERTS or opts.tls), with
 * user/password (AUTH) and a /db path (SELECTed first), and redis+sentinel:// (resp-url.ts):
 * the master is asked from the sentinels, checked with ROLE, and asked again when it fails.
 * Pub/sub with reconnect: resp-subscribe.ts.
 */
import type tls from 'node:tls';
import { redact, serviceUnavailableError } from '@wtpool/core';
import { RespConnection, unavailable, type Command } from './resp-connection.js';
import { sentinelMaster } from './resp-sentinel.js';
import { RedisReplyError, type Reply } from './resp-decoder.js';
import { parseRedisUrl, type RedisAddress, type RedisTarget } from './resp-url.js';

export { RedisReplyError, RespDecoder, encodeCommand } from './resp-decoder.js';
export type { Reply, BinaryReply } from './resp-decoder.js';
export { parseRedisUrl, isSentinelUrl } from './resp-url.js';
export type { RedisTarget, RedisAddress } from './resp-url.js';
export { subscribe } from './resp-subscribe.js';
export { sentinelMaster } from './resp-sentinel.js';
export type { SubscribeOptions } from './resp-subscribe.js';

export interface PipelineOptions {
  /** Connect and idle limit, ms (default 5000); through Sentinel, the whole retry budget. */
  timeout?: number;
  /** node:tls options for rediss:// (a private CA, client certificates). */
  tls?: tls.ConnectionOptions;
  /**
   * Appends `WAIT replicas timeoutMs` after the commands (same connection, so it covers their
   * writes); its reply is not returned. Fewer acknowledgements than asked throw
   * serviceUnavailableError (details.acked); the writes did happen on the primary.
   */
  wait?: { replicas: number; timeoutMs: number };
}

/** A reply of ROLE other than master (a sentinel's stale answer, a demoted primary). */
class NotMaster extends Error {}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Sends the commands (after AUTH when the URL has a password, and SELECT for a /db path) in one
 * pipeline and returns their replies in order. Error replies come back as RedisReplyError
 * values, not thrown. Connection failures throw serviceUnavailableError (exit 6) with the
 * redacted URL; a refused AUTH or SELECT throws serviceUnavailableError saying so.
 */
export async function redisPipeline(
  url: string,
  commands: (string | number)[][],
  opts: PipelineOptions = {},
): Promise<Reply[]> {
  const t = parseRedisUrl(url);
  const timeout = opts.timeout ?? 5000;
  const all: Command[] = opts.wait
    ? [...commands, ['WAIT', opts.wait.replicas, opts.wait.timeoutMs]]
    : commands;
  const replies = t.sentinel
    ? await viaSentinel(url, t, all, timeout, opts.tls)
    : await exchange(url, t, t, all, timeout, opts.tls, false);
  if (!opts.wait) return replies;
  const acked = replies.pop();
  if (typeof acked !== 'number' || acked < opts.wait.replicas) {
    throw serviceUnavailableError(
      `Redis at ${redact(url)} applied the writes, but ${typeof acked === 'number' ? acked : 0} of ${opts.wait.replicas} replicas acknowledged them within ${opts.wait.timeoutMs} ms`,
      {
        details: { acked, replicas: opts.wait.replicas },
        hint: 'check the replicas (INFO replication on the primary)',
      },
    );
  }
  return replies;
}

/** One connection to addr: setup (AUTH, ROLE when asked, SELECT), then the commands. */
async function exchange(
  url: string,
  t: RedisTarget,
  addr: RedisAddress,
  commands: readonly Command[],
  timeout: number,
  tlsOptions: tls.ConnectionOptions | undefined,
  checkRole: boolean,
): Promise<Reply[]> {
  const conn = await RespConnection.open(addr, { url, tls: t.tls, tlsOptions, timeout });
  try {
    const auth: Command[] = [];
    if (t.password !== undefined) {
      auth.push(t.username ? ['AUTH', t.username, t.password] : ['AUTH', t.password]);
    }
    const select: Command[] = t.db !== undefined ? [['SELECT', t.db]] : [];
    if (checkRole) {
      // Two round trips: nothing is sent to a server before it said it is the master.
      const [role, ...setup] = (await conn.send([...auth, ['ROLE']])).reverse();
      refused(url, setup);
      const r = Array.isArray(role) ? role[0] : role;
      if (r !== 'master') throw new NotMaster(`ROLE of ${addr.host}:${addr.port} is ${String(r)}`);
      const replies = await conn.send([...select, ...commands]);
      refused(url, replies.slice(0, select.length));
      return replies.slice(select.length);
    }
    const setup = [...auth, ...select];
    const replies = await conn.send([...setup, ...commands]);
    refused(url, replies.slice(0, setup.length));
    return replies.slice(setup.length);
  } finally {
    conn.close();
  }
}

function refused(url: string, setupReplies: Reply[]): void {
  const e = setupReplies.find((r) => r instanceof RedisReplyError);
  if (e) {
    throw serviceUnavailableError(
      `Redis at ${redact(url)} refused the connection setup (AUTH/SELECT): ${e.message}`,
      { hint: 'check the user, password and DB index in the Redis URL' },
    );
  }
}

/** Asks the sentinels, connects, checks ROLE; on failure asks again until `timeout` ran out. */
async function viaSentinel(
  url: string,
  t: RedisTarget,
  commands: readonly Command[],
  timeout: number,
  tlsOptions: tls.ConnectionOptions | undefined,
): Promise<Reply[]> {
  const deadline = Date.now() + timeout;
  for (let attempt = 0; ; attempt++) {
    let last: Error;
    try {
      const addr = await sentinelMaster(url, { timeout: Math.min(timeout, 2000), tls: tlsOptions });
      return await exchange(url, t, addr, commands, timeout, tlsOptions, true);
    } catch (e) {
      last = e as Error;
      const retry =
        e instanceof NotMaster || (e as { code?: string }).code === 'ERR_SERVICE_UNAVAILABLE';
      if (!retry || /refused the connection setup/.test(last.message)) throw e;
    }
    const pause = Math.min(1000, 50 * 2 ** attempt);
    if (Date.now() + pause > deadline) {
      throw last instanceof NotMaster ? unavailable(url, `no master: ${last.message}`) : last;
    }
    await sleep(pause);
  }
}

/** One command; an error reply is thrown. */
export async function redisCommand(url: string, ...args: (string | number)[]): Promise<Reply> {
  const [r] = await redisPipeline(url, [args]);
  if (r instanceof RedisReplyError) throw r;
  return r!;
}

/** `databases` from CONFIG GET (the physical number of logical DBs). */
export async function physicalDatabases(url: string): Promise<number> {
  const r = await redisCommand(url, 'CONFIG', 'GET', 'databases');
  const n = Array.isArray(r) ? Number(r[1]) : NaN;
  if (!Number.isInteger(n) || n < 1) {
    throw serviceUnavailableError(
      `Redis at ${redact(url)} did not report its databases (CONFIG GET databases → ${JSON.stringify(r)})`,
      { hint: 'the pool needs CONFIG GET; check that the command is not renamed or disabled' },
    );
  }
  return n;
}

/** A field of INFO (e.g. run_id). */
export async function redisInfo(url: string, field: string): Promise<string | undefined> {
  const r = await redisCommand(url, 'INFO', 'server');
  const m = new RegExp(`^${field}:(.*)$`, 'm').exec(String(r));
  return m?.[1]?.trim();
}
