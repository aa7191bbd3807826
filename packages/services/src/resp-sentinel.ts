/** Redis Sentinel: which master the sentinels of a redis+sentinel:// URL name now. */
import type tls from 'node:tls';
import { RespConnection, unavailable } from './resp-connection.js';
import { parseRedisUrl, type RedisAddress } from './resp-url.js';

/**
 * The master the sentinels name now: each sentinel is asked in turn, the first that knows the
 * master answers. Throws serviceUnavailableError when none answers or none knows it.
 */
export async function sentinelMaster(
  url: string,
  opts: { timeout?: number; tls?: tls.ConnectionOptions } = {},
): Promise<RedisAddress> {
  const t = parseRedisUrl(url);
  if (!t.sentinel) return { host: t.host, port: t.port };
  const why: string[] = [];
  for (const s of t.sentinel.sentinels) {
    try {
      const conn = await RespConnection.open(s, {
        url,
        tls: t.tls,
        tlsOptions: opts.tls,
        timeout: opts.timeout ?? 2000,
      });
      try {
        const [r] = await conn.send([['SENTINEL', 'get-master-addr-by-name', t.sentinel.master]]);
        if (Array.isArray(r) && r.length === 2) return { host: String(r[0]), port: Number(r[1]) };
        why.push(`${s.host}:${s.port} does not know ${t.sentinel.master}`);
      } finally {
        conn.close();
      }
    } catch (e) {
      why.push(`${s.host}:${s.port}: ${(e as Error).message.replace(/^.*: /, '')}`);
    }
  }
  throw unavailable(url, `no sentinel named master ${t.sentinel.master} (${why.join('; ')})`);
}
