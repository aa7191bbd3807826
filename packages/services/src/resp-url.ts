/**
 * Redis URLs (docs/services.md "The Redis client"):
 *
 * - `redis://[user:pass@]host[:port][/db]`, `rediss://…` (TLS): one server;
 * - `redis+sentinel://[user:pass@]host1[:port],host2[:port],…/<master>[/db]`, and
 *   `rediss+sentinel://…` (TLS to the sentinels and the master): the master that the Sentinel
 *   daemons name (port 26379 by default). The same grammar redis-py based tools (redisvl,
 *   prefect) accept. The credentials and the db are the data nodes'; sentinels are asked
 *   without AUTH.
 */
import { configError, redact } from '@wtpool/core';

export interface RedisAddress {
  host: string;
  port: number;
}

export interface RedisTarget extends RedisAddress {
  tls: boolean;
  username?: string;
  password?: string;
  /** Logical DB from the URL path (redis://host:6379/5), selected before the commands. */
  db?: number;
  /** A Sentinel URL: the daemons to ask and the master's name (host/port: the first sentinel). */
  sentinel?: { sentinels: RedisAddress[]; master: string };
}

const SCHEMES = ['redis:', 'rediss:', 'redis+sentinel:', 'rediss+sentinel:'];

export const isSentinelUrl = (url: string): boolean => /^rediss?\+sentinel:/i.test(url);

/** Parses a Redis or Redis Sentinel URL; throws configError (exit 3) with the URL redacted. */
export function parseRedisUrl(url: string): RedisTarget {
  const bad = (why: string) =>
    configError(`redis URL ${redact(url)} ${why}`, {
      hint: 'e.g. redis://127.0.0.1:6379/0 or redis+sentinel://10.0.0.1,10.0.0.2/mymaster/0',
    });
  if (isSentinelUrl(url)) return parseSentinelUrl(url, bad);
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw bad('is not a URL');
  }
  if (!SCHEMES.includes(u.protocol)) {
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

function parseSentinelUrl(url: string, bad: (why: string) => Error): RedisTarget {
  const m = /^(rediss?)\+sentinel:\/\/(?:([^@/]*)@)?([^/?#]+)\/([^/?#]+)(?:\/(\d{1,5}))?\/?$/i.exec(
    url,
  );
  if (!m) throw bad('is not redis+sentinel://[user:pass@]host[:port],…/<master>[/db]');
  const [, scheme, auth, hosts, master, db] = m;
  const sentinels = hosts!.split(',').map((h): RedisAddress => {
    const hp = /^(\[[0-9a-f:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/i.exec(h);
    if (!hp) throw bad(`has a sentinel address that is not host[:port]: ${JSON.stringify(h)}`);
    return { host: hp[1]!.replace(/^\[|\]$/g, ''), port: Number(hp[2] ?? 26379) };
  });
  const t: RedisTarget = {
    ...sentinels[0]!,
    tls: scheme!.toLowerCase() === 'rediss',
    sentinel: { sentinels, master: decodeURIComponent(master!) },
  };
  if (auth) {
    const i = auth.indexOf(':');
    const user = i < 0 ? auth : auth.slice(0, i);
    const pass = i < 0 ? '' : auth.slice(i + 1);
    if (user) t.username = decodeURIComponent(user);
    if (pass) t.password = decodeURIComponent(pass);
  }
  if (db !== undefined) t.db = Number(db);
  return t;
}
