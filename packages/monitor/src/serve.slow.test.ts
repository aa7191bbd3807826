/**
 * `monitor serve` driven in a real headless chromium (Debian's, installed by
 * scripts/ensure-test-services.sh): the page follows the pool live, without a reload, and
 * survives the server restarting; a non-loopback bind refuses requests without the token.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrowserContext, Page } from 'playwright-core';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import {
  makeTempRepo,
  PROJECT_ROOT,
  runCli,
  startRedis,
  type RedisServer,
  type TempRepo,
} from '@wtpool/testkit';
import {
  HAVE_CHROMIUM,
  launchChromium,
  startServe,
  stopServe,
  type Started,
} from './serve.testutil.js';

const POOL = path.join(PROJECT_ROOT, 'packages/pool/bin/pool.js');

describe.skipIf(!HAVE_CHROMIUM)('monitor serve in headless chromium', () => {
  let repo: TempRepo;
  let redis: RedisServer;
  let browser: BrowserContext;
  let page: Page;
  let served: Started | undefined;
  const pool = (...args: string[]) =>
    runCli(POOL, [...args, '--repo', repo.dir], { cwd: repo.dir });

  beforeAll(async () => {
    [repo, redis] = await Promise.all([makeTempRepo(), startRedis({ databases: 32 })]);
    await fs.writeFile(
      path.join(repo.dir, 'pool.config.yaml'),
      ['scale:', '  min: 2', '  max: 3', 'redis:', `  url: ${redis.url}`, ''].join('\n'),
    );
    await repo.commit({
      'pool.config.yaml': await fs.readFile(path.join(repo.dir, 'pool.config.yaml'), 'utf8'),
    });
    expect((await pool('init', '--size', '2')).code).toBe(0);
    browser = await launchChromium();
    page = browser.pages()[0] ?? (await browser.newPage());
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await stopServe(served);
    await Promise.all([redis?.stop(), repo?.cleanup()]);
  });

  const slotRow = (id: string) => page.locator(`#slots tr[data-slot="${id}"]`);
  const bandUsed = async () => Number(await page.locator('#gauge-band').getAttribute('data-value'));

  it('shows a slot acquired from the CLI without a reload, removes it on release, moves the band gauge', async () => {
    served = await startServe(repo.dir, ['--port', '0']);
    // Without the token the page shell loads and says what it needs; the data stays behind it.
    await page.goto(served.url);
    await expect.poll(() => page.locator('#conn').textContent()).toMatch(/token required/);
    expect(await page.locator('#slots tr[data-slot]').count()).toBe(0);
    // The URL `monitor serve` prints: the token becomes a cookie, the address bar loses it.
    await page.goto(`${served.url}?token=${encodeURIComponent(served.token)}`);
    expect(page.url()).toBe(served.url);
    await expect.poll(() => page.locator('#conn').textContent()).toBe('live');
    await expect.poll(() => slotRow('wt-1').getAttribute('data-state')).toBe('ready');
    expect(await bandUsed()).toBe(0);
    // A marker in the page: a reload would lose it.
    await page.evaluate(() => ((globalThis as unknown as { marker: number }).marker = 42));

    const acq = await pool('acquire', 'agent-7', 'task-17', '--json');
    // Taken when the CLI has exited: the page's latency is measured from here.
    const cliExitedAt = Date.now();
    expect(acq.code).toBe(0);
    const lease = acq.json<{ slot: string; token: number; acquiredAt: string }>();
    // The page stamps, by its own clock, when it first rendered the lease: the wait below is
    // the test's, the figure is the product's (server watch, document, push, render).
    const seen = await page.waitForFunction(
      (key) => (globalThis as unknown as { leaseSeenAt: Record<string, string> }).leaseSeenAt[key],
      `${lease.slot}#${lease.token}`,
      { timeout: 20_000 },
    );
    const latency = Date.parse((await seen.jsonValue()) as string) - cliExitedAt;
    console.info(`slot on the page ${latency} ms after the CLI exited`);
    expect(latency).toBeLessThan(2000);
    expect(await slotRow(lease.slot).getAttribute('data-state')).toBe('leased');
    await expect.poll(() => slotRow(lease.slot).textContent()).toContain('agent-7');
    const firstDoc = await page.evaluate(
      (slot) =>
        fetch('/api/status')
          .then((r) => r.json())
          .then((d) =>
            (d as { pool: { slots: Array<{ id: string; lease: unknown }> } }).pool.slots.find(
              (s) => s.id === slot,
            ),
          ),
      lease.slot,
    );
    expect(firstDoc).toMatchObject({ lease: { agent: 'agent-7', task: 'task-17' } });
    // The lease's run log is shown redacted (the file itself is 0600).
    const logFile = path.join(repo.dir, '.git', 'wtpool', 'logs', `${lease.slot}.log`);
    await fs.mkdir(path.dirname(logFile), { recursive: true });
    await fs.writeFile(logFile, 'DATABASE_URL=postgres://app:pw-in-log@127.0.0.1/app\nready\n', {
      mode: 0o600,
    });
    await expect
      .poll(() => page.locator('#slots').textContent(), { timeout: 20_000 })
      .toContain('postgres://app:***@127.0.0.1/app');
    expect(await page.content()).not.toContain('pw-in-log');
    // An action from the page: the token goes in its Authorization header, same origin.
    const beat = page.waitForResponse((r) => r.url().endsWith('/api/actions/heartbeat'));
    await slotRow(lease.slot).getByRole('button', { name: 'heartbeat' }).click();
    expect((await beat).status()).toBe(200);
    await expect.poll(() => page.locator('#toast').textContent()).toBe('heartbeat: done');
    await expect.poll(bandUsed).toBe(1);
    expect(await page.locator('#slots').textContent()).toContain('task-17');

    expect((await pool('release', lease.slot, 'agent-7')).code).toBe(0);
    await expect
      .poll(() => slotRow(lease.slot).getAttribute('data-state'), { timeout: 20_000 })
      .not.toBe('leased');
    await expect.poll(() => page.locator('#slots').textContent()).not.toContain('agent-7');
    await expect.poll(bandUsed).toBe(0);
    expect(await page.evaluate(() => (globalThis as unknown as { marker?: number }).marker)).toBe(
      42,
    );
  }, 120_000);

  it('reconnects after the server restarts and keeps updating', async () => {
    const port = served!.port;
    await stopServe(served);
    await expect.poll(() => page.locator('#conn').textContent()).toBe('reconnecting…');
    served = await startServe(repo.dir, ['--port', String(port)]);
    await expect.poll(() => page.locator('#conn').textContent(), { timeout: 20_000 }).toBe('live');
    const acq = await pool('acquire', 'agent-9', 'task-19', '--json');
    const lease = acq.json<{ slot: string }>();
    await expect
      .poll(() => slotRow(lease.slot).textContent(), { timeout: 20_000 })
      .toContain('agent-9');
    expect((await pool('release', lease.slot, 'agent-9')).code).toBe(0);
  }, 60_000);

  it('serves /metrics that a Prometheus text parser reads', async () => {
    const text = await (
      await fetch(new URL('/metrics', served!.url), {
        headers: { Authorization: `Bearer ${served!.token}` },
      })
    ).text();
    const families = parsePrometheusTextFormat(text);
    const byName = new Map(families.map((f) => [f.name, f]));
    const slots = byName.get('wtpool_pool_slots')!;
    expect(slots.type).toBe('GAUGE');
    expect(slots.metrics.find((m) => m.labels?.state === 'all')?.value).toBe('2');
    const leases = byName.get('wtpool_lease_duration_seconds')!;
    expect(leases.type).toBe('SUMMARY');
    // Two leases were taken and released above.
    expect(Number(leases.metrics[0]!.count)).toBe(2);
    expect(
      byName.get('wtpool_redis_band')!.metrics.find((m) => m.labels?.kind === 'used')?.value,
    ).toBe('0');
  });

  it('a non-loopback bind refuses requests without the token (401) and lets the page in with it', async () => {
    const guarded = await startServe(repo.dir, [
      '--port',
      '0',
      '--host',
      '127.0.0.2',
      '--token',
      's3cret-token-0123456',
    ]);
    try {
      expect(guarded.url).toContain('127.0.0.2');
      for (const p of ['/', '/api/status', '/api/events', '/metrics', '/api/history']) {
        expect((await fetch(new URL(p, guarded.url))).status, p).toBe(401);
      }
      const wrong = await fetch(new URL('/api/status', guarded.url), {
        headers: { Authorization: 'Bearer s3cret-token-0123456X' },
      });
      expect(wrong.status).toBe(401);
      const ok = await fetch(new URL('/api/status', guarded.url), {
        headers: { Authorization: 'Bearer s3cret-token-0123456' },
      });
      expect(ok.status).toBe(200);
      // No CORS: nothing allows another origin to read.
      expect(ok.headers.get('access-control-allow-origin')).toBeNull();
      // The page with ?token= gets a cookie and a clean URL, then works live.
      const p2 = await browser.newPage();
      await p2.goto(`${guarded.url}?token=s3cret-token-0123456`);
      expect(p2.url()).not.toContain('token');
      await expect.poll(() => p2.locator('#conn').textContent()).toBe('live');
      await expect.poll(() => p2.locator('#slots tr[data-slot="wt-1"]').count()).toBe(1);
      await p2.close();
      // Actions need the token even on loopback; with it, a heartbeat goes through the pool.
      // Bound to every interface: refused without the token whichever address is used,
      // the machine's own non-loopback ones included.
      const wide = await startServe(repo.dir, ['--port', '0', '--host', '0.0.0.0']);
      try {
        const addrs = [
          '127.0.0.1',
          ...Object.values(os.networkInterfaces())
            .flat()
            .filter((a) => a && a.family === 'IPv4' && !a.internal)
            .map((a) => a!.address),
        ];
        for (const a of addrs) {
          const r = await fetch(`http://${a}:${wide.port}/api/status`);
          expect(r.status, a).toBe(401);
          const ok2 = await fetch(`http://${a}:${wide.port}/api/status`, {
            headers: { Authorization: `Bearer ${wide.token}` },
          });
          expect(ok2.status, a).toBe(200);
        }
      } finally {
        await stopServe(wide);
      }
      const unauth = await fetch(new URL('/api/actions/scale-out', served!.url), {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: '{}',
      });
      expect(unauth.status).toBe(401);
    } finally {
      await stopServe(guarded);
    }
  }, 60_000);
});
