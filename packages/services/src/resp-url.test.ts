import { describe, expect, it } from 'vitest';
import { isSentinelUrl, parseRedisUrl } from './resp-url.js';

describe('parseRedisUrl', () => {
  it('reads a plain URL: host, port, TLS, credentials, db', () => {
    expect(parseRedisUrl('rediss://al%40ice:p%3Aw@10.0.0.5:6380/7')).toEqual({
      host: '10.0.0.5',
      port: 6380,
      tls: true,
      username: 'al@ice',
      password: 'p:w',
      db: 7,
    });
    expect(parseRedisUrl('redis://[::1]')).toEqual({ host: '::1', port: 6379, tls: false });
  });

  it('reads a Sentinel URL: the sentinels (port 26379 by default), the master, the db', () => {
    const url = 'redis+sentinel://:s3cret@10.0.0.5,10.0.0.6:26380,[::1]/pool-master/3';
    expect(isSentinelUrl(url)).toBe(true);
    expect(parseRedisUrl(url)).toEqual({
      host: '10.0.0.5',
      port: 26379,
      tls: false,
      password: 's3cret',
      db: 3,
      sentinel: {
        master: 'pool-master',
        sentinels: [
          { host: '10.0.0.5', port: 26379 },
          { host: '10.0.0.6', port: 26380 },
          { host: '::1', port: 26379 },
        ],
      },
    });
    expect(parseRedisUrl('rediss+sentinel://a/m').tls).toBe(true);
  });

  it('refuses malformed URLs with exit 3, the password redacted', () => {
    for (const bad of [
      'redis+sentinel://u:pw@a',
      'redis+sentinel://u:pw@a:1:2/m',
      'http://u:pw@a',
    ]) {
      let e: (Error & { exitCode?: number }) | undefined;
      try {
        parseRedisUrl(bad);
      } catch (x) {
        e = x as Error & { exitCode?: number };
      }
      expect(e?.exitCode).toBe(3);
      expect(e?.message).not.toContain('pw@');
    }
  });
});
