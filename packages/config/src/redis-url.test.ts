import { describe, expect, it } from 'vitest';
import { urlWithPath, validateConfig } from './index.js';

const problem = (key: 'redis' | 'store', url: string): string | undefined => {
  const raw =
    key === 'redis'
      ? { redis: { url } }
      : { store: { backend: 'redis', url }, fleet: { host: 'h1' } };
  try {
    validateConfig(raw, 'pool.config.yaml');
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
};

describe('Sentinel URLs in redis.url and store.url', () => {
  it.each([
    'redis+sentinel://10.0.0.5,10.0.0.6:26380/mymaster',
    'redis+sentinel://u:p%40ss@10.0.0.5:26379,10.0.0.6/mymaster/0',
    'rediss+sentinel://:pw@sentinel.example/pool-master/12',
    'redis+sentinel://[::1]:26379,[fe80::1]/m',
  ])('accepts %s', (url) => {
    expect(problem('redis', url)).toBeUndefined();
    expect(problem('store', url)).toBeUndefined();
  });

  it.each([
    ['redis+sentinel://10.0.0.5', /redis\.url must be a redis\+sentinel:\/\/.*<master>/],
    ['redis+sentinel://10.0.0.5/', /redis\.url must be a redis\+sentinel/],
    ['redis+sentinel://10.0.0.5/m/zero', /redis\.url must be a redis\+sentinel/],
    ['redis+sentinel://a:1:2/m', /redis\.url must be a redis\+sentinel/],
    ['redis+sentinel://,b/m', /redis\.url must be a redis\+sentinel/],
    ['redis+sentinel://u:secret@a:99x/m', /got "redis\+sentinel:\/\/u:\*\*\*@a:99x\/m"/],
  ])('refuses %s', (url, why) => {
    expect(problem('redis', url)).toMatch(why);
  });
});

describe("urlWithPath (a slot's REDIS_URL)", () => {
  it('replaces the db after the master name of a Sentinel URL', () => {
    expect(urlWithPath('redis+sentinel://:pw@a:26379,b/mymaster', '7')).toBe(
      'redis+sentinel://:pw@a:26379,b/mymaster/7',
    );
    expect(urlWithPath('rediss+sentinel://a,b/mymaster/0', '12')).toBe(
      'rediss+sentinel://a,b/mymaster/12',
    );
    expect(urlWithPath('redis://u:p@10.0.0.5:6379/0', '3')).toBe('redis://u:p@10.0.0.5:6379/3');
  });
});
