/** The dashboard guards' decisions, one by one (the HTTP-level tests are serve-security.slow). */
import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { checkToken, crossOrigin, redactText, redactView, tokenMatcher } from './serve-guard.js';

const req = (headers: Record<string, string>) => ({ headers }) as unknown as IncomingMessage;

describe('redaction', () => {
  it.each([
    ['PGPASSWORD=hunter2 psql', 'PGPASSWORD=*** psql'],
    ['export API_KEY="a b c"', 'export API_KEY=***'],
    ['{"token": "abc123"}', '{"token": ***}'],
    ['db: postgres://app:pw@h/x', 'db: postgres://app:***@h/x'],
    ['Authorization: Bearer abcdefgh123', 'Authorization: *** ***'],
    ['key ghp_0123456789abcdefghijABCDEFGHIJ', 'key ***'],
    [
      '-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----',
      '-----BEGIN PRIVATE KEY----- *** (redacted)',
    ],
    ['fix the token refresh', 'fix the token refresh'],
    ['tests passed: 12', 'tests passed: 12'],
  ])('%j → %j', (text, want) => expect(redactText(text)).toBe(want));

  it('removes a secret found in one field from the others, as written and slugged', () => {
    const doc = {
      task: 'deploy with PGPASSWORD=Hunter2Hunter2',
      branch: 'pool/wt-1/deploy-with-pgpassword-hunter2hunter2',
      note: 'Hunter2Hunter2 again',
      n: 7,
    };
    expect(redactView(doc)).toEqual({
      task: 'deploy with PGPASSWORD=***',
      branch: 'pool/wt-1/deploy-with-pgpassword-***',
      note: '*** again',
      n: 7,
    });
  });
});

describe('tokens and origins', () => {
  it('a token is 16+ visible characters, compared exactly', () => {
    expect(() => checkToken('x'.repeat(15), '--token')).toThrow(/16 to 512 characters, got 15/);
    expect(() => checkToken(`${'x'.repeat(16)} `, '--token')).toThrow(/visible ASCII/);
    const ok = tokenMatcher(checkToken('a'.repeat(16), '--token'));
    expect([ok('a'.repeat(16)), ok(`${'a'.repeat(16)} `), ok('a'.repeat(15)), ok(null)]).toEqual([
      true,
      false,
      false,
      false,
    ]);
  });

  it.each([
    [{ host: 'h:1' }, null],
    [{ host: 'h:1', origin: 'http://h:1' }, null],
    [{ host: 'h:1', origin: 'http://h:1', 'sec-fetch-site': 'same-origin' }, null],
    [{ host: 'h:1', origin: 'http://evil.example' }, 'Origin http://evil.example'],
    [{ host: 'h:1', origin: 'null' }, 'Origin null'],
    [{ host: 'h:1', origin: 'http://h:2' }, 'Origin http://h:2'],
    [{ host: 'h:1', 'sec-fetch-site': 'cross-site' }, 'a cross-site request'],
    [{ host: 'h:1', 'sec-fetch-site': 'same-site' }, 'a same-site request'],
  ])('%j → %s', (headers, want) => {
    const got = crossOrigin(req(headers));
    if (want === null) expect(got).toBeNull();
    else expect(got).toContain(want);
  });
});
