/**
 * The dashboard's security checks (issue 21, item 8), at the HTTP level: the real server
 * (`serve`, in-process, on a real loopback socket) and requests written byte for byte on a TCP
 * socket, as curl would send them, so every header (Host, Origin, Authorization, Content-Type)
 * and the request target are exactly the test's. One pool fixture, one server.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '@wtpool/config';
import { leaseLogPath } from '@wtpool/pool';
import { makeTempRepo, PROJECT_ROOT, runCli, type TempRepo } from '@wtpool/testkit';
import { serve, type Served } from './serve.js';

const POOL = path.join(PROJECT_ROOT, 'packages/pool/bin/pool.js');
const MONITOR = path.join(PROJECT_ROOT, 'packages/monitor/bin/monitor.js');
const TOKEN = 'Tk7-correct-horse-battery';
// Secrets that a command or an agent wrote where the dashboard shows them.
const SECRETS = ['hunter2hunter2', 's3cretPW', 'abcdef0123456789', 'xyz123secretkey', 'ghp_'];

interface Reply {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Sends one raw HTTP/1.1 request and reads the reply (Connection: close). */
function raw(port: number, head: string, body = ''): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let data = '';
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => (data += d));
    sock.on('error', reject);
    sock.on('end', () => {
      const [top, ...rest] = data.split('\r\n\r\n');
      const lines = top!.split('\r\n');
      const headers: Record<string, string> = {};
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
      }
      let text = rest.join('\r\n\r\n');
      if (headers['transfer-encoding'] === 'chunked') {
        let out = '';
        for (let i = 0; ;) {
          const nl = text.indexOf('\r\n', i);
          const n = parseInt(text.slice(i, nl), 16);
          if (!n) break;
          out += text.slice(nl + 2, nl + 2 + n);
          i = nl + 2 + n + 2;
        }
        text = out;
      }
      resolve({ status: Number(lines[0]!.split(' ')[1]), headers, body: text });
    });
    const len = body ? `Content-Length: ${Buffer.byteLength(body)}\r\n` : '';
    sock.write(`${head.trim().replace(/\n/g, '\r\n')}\r\n${len}Connection: close\r\n\r\n${body}`);
  });
}

describe('monitor serve: tokens, origins, redirects, bodies, redaction', () => {
  let repo: TempRepo;
  let served: Served;
  let port: number;
  let host: string;
  const get = (target: string, extra = '') =>
    raw(port, `GET ${target} HTTP/1.1\nHost: ${host}\n${extra}`);
  const post = (target: string, extra: string, body = '{}') =>
    raw(port, `POST ${target} HTTP/1.1\nHost: ${host}\n${extra}`, body);
  const size = async () =>
    (await runCli(POOL, ['status', '--json', '--repo', repo.dir], { cwd: repo.dir })).json<{
      slots: unknown[];
    }>().slots.length;

  beforeAll(async () => {
    repo = await makeTempRepo();
    // No autoscaling to a minimum behind the test's back: the pool is what the test makes it.
    writeFileSync(
      path.join(repo.dir, 'pool.config.yaml'),
      'scale:\n  min: 1\n  max: 3\n  step: 1\n',
    );
    const pool = (...a: string[]) => runCli(POOL, [...a, '--repo', repo.dir], { cwd: repo.dir });
    expect((await pool('init', '--size', '1')).code).toBe(0);
    const acq = await pool('acquire', 'agent-1', 'deploy with PGPASSWORD=hunter2hunter2', '--json');
    expect(acq.code, acq.stderr).toBe(0);
    const slot = acq.json<{ slot: string }>().slot;
    const stateDir = path.join(repo.dir, '.git', 'wtpool');
    mkdirSync(path.join(stateDir, 'logs'), { recursive: true });
    writeFileSync(
      leaseLogPath(stateDir, slot),
      [
        'connecting to DATABASE_URL=postgres://app:s3cretPW@127.0.0.1:5432/app_wt1',
        'curl -H "Authorization: Bearer abcdef0123456789" https://api.example',
        'export API_KEY=xyz123secretkey',
        'pushed with ghp_0123456789abcdefghijABCDEFGHIJ012345',
        'done',
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    served = await serve(loadConfig({ repo: repo.dir }), { port: 0, token: TOKEN, tickMs: 60_000 });
    port = served.port;
    host = `127.0.0.1:${port}`;
  }, 60_000);

  afterAll(async () => {
    await served?.close();
    await repo?.cleanup();
  });

  it('serves the page shell without the token, and nothing else', async () => {
    expect((await get('/')).status).toBe(200);
    expect((await get('/app.js')).status).toBe(200);
    for (const p of ['/api/status', '/api/events', '/api/history', '/metrics', '/nope']) {
      const r = await get(p);
      expect(r.status, p).toBe(401);
      for (const s of SECRETS) expect(r.body).not.toContain(s);
    }
    // A query-string token is no credential (it would sit in logs and history).
    expect((await get(`/api/status?token=${TOKEN}`)).status).toBe(401);
  });

  it('compares the token exactly: no trimming, no prefix, no case folding', async () => {
    const bad = [
      `Bearer ${TOKEN}x`,
      `Bearer ${TOKEN.slice(0, -1)}`,
      `Bearer  ${TOKEN}`,
      `Bearer ${TOKEN} x`,
      `Bearer ${TOKEN.toUpperCase()}`,
      `bearer ${TOKEN}`,
      `Basic ${TOKEN}`,
      TOKEN,
    ];
    for (const auth of bad) {
      expect((await get('/api/status', `Authorization: ${auth}\n`)).status, auth).toBe(401);
    }
    expect((await get('/api/status', `Cookie: wtpool_token_${port}=${TOKEN}%20\n`)).status).toBe(
      401,
    );
    expect((await get('/api/status', `Authorization: Bearer ${TOKEN}\n`)).status).toBe(200);
    expect((await get('/api/status', `Cookie: wtpool_token_${port}=${TOKEN}\n`)).status).toBe(200);
  });

  it('redacts the run log and every secret-holding field in /api/status and /metrics', async () => {
    const r = await get('/api/status', `Authorization: Bearer ${TOKEN}\n`);
    expect(r.status).toBe(200);
    const doc = JSON.parse(r.body) as {
      logs: Record<string, string[]>;
      pool: { slots: Array<{ lease: { task: string } | null }> };
    };
    const log = Object.values(doc.logs)[0]!;
    expect(log).toHaveLength(5);
    expect(log[4]).toBe('done');
    expect(log[0]).toContain('postgres://app:***@127.0.0.1');
    expect(log[1]).toBe('curl -H "Authorization: *** ***" https://api.example');
    for (const s of SECRETS) expect(r.body).not.toContain(s);
    expect(doc.pool.slots.find((s) => s.lease)!.lease!.task).toBe('deploy with PGPASSWORD=***');
    const m = await get('/metrics', `Authorization: Bearer ${TOKEN}\n`);
    expect(m.status).toBe(200);
    for (const s of SECRETS) expect(m.body).not.toContain(s);
  });

  it('redacts the event stream too', async () => {
    const text = await new Promise<string>((resolve, reject) => {
      const sock = net.connect(port, '127.0.0.1');
      let data = '';
      sock.setEncoding('utf8');
      sock.on('error', reject);
      sock.on('data', (d: string) => {
        data += d;
        if (data.includes('event: status')) {
          sock.destroy();
          resolve(data);
        }
      });
      sock.write(
        `GET /api/events HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n`,
      );
    });
    expect(text).toContain('postgres://app:***@');
    for (const s of SECRETS) expect(text).not.toContain(s);
  });

  it('never redirects to another origin', async () => {
    for (const target of [
      `/.//evil.example/?token=${TOKEN}`,
      `//evil.example/?token=${TOKEN}`,
      `/%2F%2Fevil.example/?token=${TOKEN}`,
      `/\\evil.example/?token=${TOKEN}`,
      `/?token=${TOKEN}`,
    ]) {
      const r = await get(target);
      if (r.headers.location !== undefined) {
        expect(r.status, target).toBe(303);
        expect(r.headers.location, target).toBe('/');
      }
    }
    const ok = await get(`/?token=${TOKEN}`);
    expect(ok.status).toBe(303);
    expect(ok.headers['set-cookie']).toBe(
      `wtpool_token_${port}=${TOKEN}; HttpOnly; SameSite=Strict; Path=/`,
    );
    const wrong = await get(`/?token=${TOKEN}x`);
    expect(wrong.status).toBe(401);
    expect(wrong.headers['set-cookie']).toBeUndefined();
  });

  it('runs an action only with the token in a header and a same-origin request', async () => {
    const before = await size();
    const json = 'Content-Type: application/json\n';
    const bearer = `Authorization: Bearer ${TOKEN}\n`;
    const refused: [string, string, number][] = [
      // The CSRF of the issue: the token in the query string, a foreign Origin.
      [`/api/actions/scale-out?token=${TOKEN}`, `${json}Origin: http://evil.example\n`, 401],
      [`/api/actions/scale-out?token=${TOKEN}`, json, 401],
      ['/api/actions/scale-out', `${json}Cookie: wtpool_token_${port}=${TOKEN}\n`, 401],
      ['/api/actions/scale-out', `${json}${bearer}Origin: http://evil.example\n`, 403],
      ['/api/actions/scale-out', `${json}${bearer}Origin: null\n`, 403],
      ['/api/actions/scale-out', `${json}${bearer}Origin: http://127.0.0.1:1\n`, 403],
      ['/api/actions/scale-out', `${json}${bearer}Sec-Fetch-Site: cross-site\n`, 403],
      ['/api/actions/scale-out', `${json}${bearer}Sec-Fetch-Site: same-site\n`, 403],
    ];
    for (const [target, headers, status] of refused) {
      expect((await post(target, headers)).status, `${target} ${headers}`).toBe(status);
    }
    expect(await size()).toBe(before);
    const ok = await post(
      '/api/actions/scale-out',
      `${json}${bearer}Origin: http://${host}\nSec-Fetch-Site: same-origin\n`,
    );
    expect(ok.status, ok.body).toBe(200);
    expect(await size()).toBe(before + 1);
  });

  it('answers bad bodies with 400/413 and wrong content types with 415, generically', async () => {
    const bearer = `Authorization: Bearer ${TOKEN}\n`;
    for (const type of ['application/jsonx', 'text/plain', 'application/x-www-form-urlencoded']) {
      const r = await post('/api/actions/heartbeat', `${bearer}Content-Type: ${type}\n`);
      expect(r.status, type).toBe(415);
    }
    expect((await post('/api/actions/heartbeat', bearer)).status).toBe(415);
    for (const body of ['{', '{"slot":', 'null', '[1]', '"wt-1"', '\u0000']) {
      const r = await post(
        '/api/actions/heartbeat',
        `${bearer}Content-Type: application/json\n`,
        body,
      );
      expect(r.status, body).toBe(400);
      expect(JSON.parse(r.body)).toEqual({ error: 'the body must be a JSON object' });
    }
    const big = await post(
      '/api/actions/heartbeat',
      `${bearer}Content-Type: application/json\n`,
      JSON.stringify({ slot: 'x'.repeat(20_000) }),
    );
    expect(big.status).toBe(413);
    // With parameters the type is still JSON: the action runs (no such lease: 404).
    const withCharset = await post(
      '/api/actions/heartbeat',
      `${bearer}Content-Type: application/json; charset=utf-8\n`,
      '{"slot":"wt-99"}',
    );
    expect(withCharset.status).toBe(404);
  });

  it('refuses a Host that is not loopback on a loopback bind (DNS rebinding)', async () => {
    const r = await raw(port, `GET / HTTP/1.1\nHost: evil.example:${port}\n`);
    expect(r.status).toBe(403);
  });

  it('refuses a short token for any bind, through the CLI too (exit 2)', async () => {
    const loaded = loadConfig({ repo: repo.dir });
    for (const [token, host] of [
      ['x', '0.0.0.0'],
      ['x'.repeat(15), '127.0.0.1'],
      [`${'y'.repeat(16)} `, '127.0.0.1'],
    ] as const) {
      const e = await serve(loaded, { port: 0, host, token }).then(
        (s) => s.close().then(() => null),
        (err: { exitCode: number }) => err,
      );
      expect(e?.exitCode, token).toBe(2);
    }
    const s16 = await serve(loaded, { port: 0, token: 'z'.repeat(16) });
    expect(s16.token).toBe('z'.repeat(16));
    await s16.close();
    const cli = await runCli(
      MONITOR,
      ['serve', '--port', '0', '--token', 'short', '--repo', repo.dir],
      {
        cwd: repo.dir,
      },
    );
    expect(cli.code).toBe(2);
    expect(cli.stderr).toMatch(/--token must be 16 to 512 characters, got 5/);
  });
});
