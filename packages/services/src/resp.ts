/**
 * A minimal Redis client: one socket, pipelined commands, RESP2 replies. The band's hot paths
 * (lease, release) need PING, SELECT, FLUSHDB and CONFIG GET only; this costs a socket, while
 * loading ioredis costs ~30 ms of module loading per process (see docs/decisions.md D21).
 * Supports redis:// and rediss:// URLs with user/password and a /db path (SELECTed first).
 */
import net from 'node:net';
import tls from 'node:tls';
import { configError, failure, redact, serviceUnavailableError } from '@wtpool/core';

export type Reply = string | number | null | Reply[] | RedisReplyError;

export class RedisReplyError extends Error {}

export interface RedisTarget {
  host: string;
  port: number;
  tls: boolean;
  username?: string;
  password?: string;
  /** Logical DB from the URL path (redis://host:6379/5), selected before the commands. */
  db?: number;
}

export function parseRedisUrl(url: string): RedisTarget {
  const u = new URL(url);
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') {
    throw configError(`redis.url is not a redis:// or rediss:// URL: ${redact(url)}`);
  }
  const t: RedisTarget = {
    host: u.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1',
    port: Number(u.port || 6379),
    tls: u.protocol === 'rediss:',
  };
  if (u.username) t.username = decodeURIComponent(u.username);
  if (u.password) t.password = decodeURIComponent(u.password);
  const db = u.pathname.replace(/^\//, '');
  if (db !== '') t.db = Number(db);
  return t;
}

const encode = (args: (string | number)[]): string =>
  `*${args.length}\r\n` +
  args.map((a) => `$${Buffer.byteLength(String(a))}\r\n${String(a)}\r\n`).join('');

/** Parses one reply from buf at pos; returns [reply, next] or undefined when incomplete. */
function parse(buf: Buffer, pos: number): [Reply, number] | undefined {
  const eol = buf.indexOf('\r\n', pos);
  if (eol < 0) return undefined;
  const type = String.fromCharCode(buf[pos]!);
  const line = buf.toString('utf8', pos + 1, eol);
  const next = eol + 2;
  switch (type) {
    case '+':
      return [line, next];
    case '-':
      return [new RedisReplyError(line), next];
    case ':':
      return [Number(line), next];
    case '$': {
      const len = Number(line);
      if (len < 0) return [null, next];
      if (buf.length < next + len + 2) return undefined;
      return [buf.toString('utf8', next, next + len), next + len + 2];
    }
    case '*': {
      const n = Number(line);
      if (n < 0) return [null, next];
      const items: Reply[] = [];
      let p = next;
      for (let i = 0; i < n; i++) {
        const r = parse(buf, p);
        if (!r) return undefined;
        items.push(r[0]);
        p = r[1];
      }
      return [items, p];
    }
    default:
      throw failure('ERR_REDIS_PROTOCOL', `unexpected RESP reply type ${JSON.stringify(type)}`);
  }
}

/**
 * Sends the commands (after AUTH when the URL has a password) in one pipeline and returns
 * their replies in order. Error replies come back as RedisReplyError values, not thrown.
 * Connection failures throw serviceUnavailableError (exit 6) with the redacted URL.
 */
export function redisPipeline(
  url: string,
  commands: (string | number)[][],
  opts: { timeout?: number } = {},
): Promise<Reply[]> {
  const t = parseRedisUrl(url);
  const all = [...commands];
  if (t.db !== undefined) all.unshift(['SELECT', t.db]);
  if (t.password !== undefined) {
    all.unshift(t.username ? ['AUTH', t.username, t.password] : ['AUTH', t.password]);
  }
  const skip = all.length - commands.length;
  const timeout = opts.timeout ?? 5000;
  return new Promise((resolve, reject) => {
    const socket: net.Socket = t.tls
      ? tls.connect({ host: t.host, port: t.port, servername: t.host })
      : net.connect({ host: t.host, port: t.port });
    let buf: Buffer = Buffer.alloc(0);
    let pos = 0;
    const replies: Reply[] = [];
    let done = false;
    const finish = (err: Error | undefined) => {
      if (done) return;
      done = true;
      socket.destroy();
      if (err) reject(err);
      else resolve(replies.slice(skip));
    };
    const unavailable = (why: string) =>
      serviceUnavailableError(`Redis at ${redact(url)} is unreachable: ${why}`, {
        hint: 'start Redis (or fix redis.url in pool.config.yaml), then retry',
      });
    socket.setTimeout(timeout, () => finish(unavailable(`no answer within ${timeout} ms`)));
    socket.on('error', (e: NodeJS.ErrnoException) => finish(unavailable(e.code ?? e.message)));
    socket.on('close', () => {
      if (!done) finish(unavailable('connection closed'));
    });
    socket.on(t.tls ? 'secureConnect' : 'connect', () => socket.write(all.map(encode).join('')));
    socket.on('data', (chunk: Buffer) => {
      buf = pos === buf.length ? chunk : Buffer.concat([buf.subarray(pos), chunk]);
      pos = 0;
      try {
        for (let r = parse(buf, pos); r; r = parse(buf, pos)) {
          replies.push(r[0]);
          pos = r[1];
          const setupReply = replies.length <= skip ? r[0] : undefined;
          if (setupReply instanceof RedisReplyError) {
            return finish(
              serviceUnavailableError(
                `Redis at ${redact(url)} refused the connection setup (AUTH/SELECT): ${setupReply.message}`,
                { hint: 'check the user, password and DB index in the Redis URL' },
              ),
            );
          }
          if (replies.length === all.length) return finish(undefined);
        }
      } catch (e) {
        finish(e as Error);
      }
    });
  });
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
