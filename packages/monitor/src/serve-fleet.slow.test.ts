/**
 * The dashboard of a fleet (store.backend redis, docs/fleet.md), in a real headless chromium:
 * two hosts (two clones, each with its own `fleet.host`, state dir and CLI processes) share one
 * real redis-server; each holds a lease. The dashboard served from host-1 shows both hosts'
 * leases, filters by host, lists an `acquire --any-host` waiter until a host serves it, and
 * `/metrics` (read with curl) labels both hosts. A host that runs nothing turns lost.
 * Build first (`pnpm -s build`): this spawns the pool and monitor bins.
 *
 * WTPOOL_SCREENSHOT=<file> also saves the fleet dashboard there (docs/monitor-fleet.png).
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrowserContext, Page } from 'playwright-core';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { runCli, startRedis, type RedisServer } from '@wtpool/testkit';
import { makeFleet, type Fleet, type Host } from '../../pool/src/fleet.testutil.js';
import {
  HAVE_CHROMIUM,
  launchChromium,
  startServe,
  stopServe,
  type Started,
} from './serve.testutil.js';

interface Lease {
  slot: string;
  token: number;
  host: string;
}

describe.skipIf(!HAVE_CHROMIUM)('monitor serve of a two-host fleet in headless chromium', () => {
  let redis: RedisServer;
  let fleet: Fleet;
  let browser: BrowserContext;
  let page: Page;
  let served: Started | undefined;
  const leases: Lease[] = [];

  beforeAll(async () => {
    redis = await startRedis({ databases: 32 });
    fleet = await makeFleet({
      hosts: 2,
      storeUrl: `${redis.url}/0`,
      redisUrl: redis.url,
      // Neither host goes idle past this during the test (no host is lost here).
      hostTtl: '2m',
      scale: '  min: 2\n  max: 3\n  step: 1',
    });
    for (const h of fleet.hosts) {
      const r = await h.pool(['init', '--json']);
      expect(r.code, r.stderr).toBe(0);
    }
    for (const [i, h] of fleet.hosts.entries()) {
      const r = await h.pool(['acquire', `agent-${h.id}`, `task-${i + 1}`, '--json']);
      expect(r.code, r.stderr).toBe(0);
      leases.push(r.json<Lease>());
    }
    browser = await launchChromium();
    page = browser.pages()[0] ?? (await browser.newPage());
    served = await startServe(fleet.hosts[0]!.dir, ['--port', '0']);
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await stopServe(served);
    await fleet?.cleanup();
    await redis?.stop();
  });

  const row = (host: string, slot: string) =>
    page.locator(`#slots tr[data-host="${host}"][data-slot="${slot}"]`);

  it("shows both hosts' leases on host-1's dashboard, and filters by host", async () => {
    const [l1, l2] = leases as [Lease, Lease];
    // Each lease names its own host: the two grants are on different machines.
    expect([l1.host, l2.host]).toEqual(['host-1', 'host-2']);
    await page.setViewportSize({ width: 1400, height: 1000 });
    await page.goto(`${served!.url}?token=${encodeURIComponent(served!.token)}`);
    await expect.poll(() => page.locator('#conn').textContent()).toBe('live');
    await expect.poll(() => page.locator('#fleet-box').isVisible()).toBe(true);
    // The hosts table: both hosts, live, with their heartbeat.
    await expect.poll(() => page.locator('#hosts tr[data-host]').count()).toBe(2);
    for (const h of ['host-1', 'host-2'])
      expect(await page.locator(`#hosts tr[data-host="${h}"]`).getAttribute('data-state')).toBe(
        'live',
      );
    // Both leases, each on its host's row (both hosts have a wt-1: the host tells them apart).
    await expect.poll(() => row('host-1', l1.slot).getAttribute('data-state')).toBe('leased');
    await expect.poll(() => row('host-2', l2.slot).getAttribute('data-state')).toBe('leased');
    expect(await row('host-1', l1.slot).textContent()).toContain('agent-host-1');
    expect(await row('host-2', l2.slot).textContent()).toContain('agent-host-2');
    expect(await row('host-2', l2.slot).textContent()).toContain('task-2');
    // Every slot of both hosts is listed: 2 + 2.
    expect(await page.locator('#slots tr[data-host]').count()).toBe(4);
    // Actions only on this host's leases (the other host's worktree is not here).
    expect(await row('host-1', l1.slot).getByRole('button', { name: 'heartbeat' }).count()).toBe(1);
    expect(await row('host-2', l2.slot).getByRole('button').count()).toBe(0);

    if (process.env.WTPOOL_SCREENSHOT) {
      await page.screenshot({ path: path.resolve(process.env.WTPOOL_SCREENSHOT), fullPage: true });
    }

    // Filter: host-2 only.
    await page.selectOption('#host-filter', 'host-2');
    await expect.poll(() => page.locator('#slots tr[data-host="host-1"]').count()).toBe(0);
    expect(await page.locator('#slots tr[data-host="host-2"]').count()).toBe(2);
    expect(await page.locator('#hosts tr[data-host]').count()).toBe(1);
    expect(await page.locator('#slots').textContent()).not.toContain('agent-host-1');
    expect(new URL(page.url()).hash).toBe('#host=host-2');
    // A live push keeps the filter: a new lease on host-1 stays hidden, one on host-2 shows.
    // Its task holds a secret: another host's data is served redacted like this host's.
    const more = await fleet.hosts[1]!.pool([
      'acquire',
      'agent-late',
      'deploy PGPASSWORD=fleet-pw-s3cr3t',
      '--json',
    ]);
    expect(more.code, more.stderr).toBe(0);
    const late = more.json<Lease>();
    await expect
      .poll(() => row('host-2', late.slot).textContent(), { timeout: 20_000 })
      .toContain('agent-late');
    expect(await page.locator('#slots tr[data-host="host-1"]').count()).toBe(0);
    expect(await row('host-2', late.slot).textContent()).toContain('PGPASSWORD=***');
    expect(await page.content()).not.toContain('fleet-pw-s3cr3t');
    const raw = await page.evaluate(() => fetch('/api/status').then((r) => r.text()));
    expect(raw).toContain('"fleet"');
    expect(raw).not.toContain('fleet-pw-s3cr3t');
    // The address with #host= opens filtered; "all hosts" shows both again.
    await page.goto(`${served!.url}#host=host-1`);
    await expect.poll(() => page.locator('#slots tr[data-host="host-1"]').count()).toBe(2);
    expect(await page.locator('#slots tr[data-host="host-2"]').count()).toBe(0);
    await page.selectOption('#host-filter', '');
    await expect.poll(() => page.locator('#slots tr[data-host]').count()).toBe(4);
    expect((await fleet.hosts[1]!.pool(['release', late.slot, 'agent-late'])).code).toBe(0);
    await expect
      .poll(() => row('host-2', late.slot).getAttribute('data-state'), { timeout: 20_000 })
      .not.toBe('leased');

    // Every slot of the fleet leased: an `acquire --any-host` from host-1 waits in the fleet
    // queue, shown under every filter (any host may serve it), until host-2 frees a slot.
    const fill = async (h: Host, agent: string) => {
      const r = await h.pool(['acquire', agent, 'filler', '--json']);
      expect(r.code, r.stderr).toBe(0);
      return r.json<Lease>();
    };
    const f1 = await fill(fleet.hosts[0]!, 'filler-1');
    const f2 = await fill(fleet.hosts[1]!, 'filler-2');
    const waiter = fleet.hosts[0]!.pool([
      'acquire',
      'agent-any',
      'any-task',
      '--any-host',
      '--json',
      '--timeout',
      '5m',
    ]);
    await expect
      .poll(() => page.locator('#queue').textContent(), { timeout: 20_000 })
      .toContain('agent-any');
    expect(await page.locator('#queue tr[data-host="any"]').textContent()).toContain(
      'any host (from host-1)',
    );
    await page.selectOption('#host-filter', 'host-2');
    await expect.poll(() => page.locator('#slots tr[data-host="host-1"]').count()).toBe(0);
    expect(await page.locator('#queue').textContent()).toContain('agent-any');
    await page.selectOption('#host-filter', '');
    expect((await fleet.hosts[1]!.pool(['release', f2.slot, 'filler-2'])).code).toBe(0);
    const got = await waiter;
    expect(got.code, got.stderr).toBe(0);
    const anyLease = got.json<Lease>();
    expect(anyLease).toMatchObject({ host: 'host-2', slot: f2.slot });
    await expect
      .poll(() => page.locator('#queue').textContent(), { timeout: 20_000 })
      .not.toContain('agent-any');
    await expect
      .poll(() => row('host-2', f2.slot).textContent(), { timeout: 20_000 })
      .toContain('agent-any');
    expect((await fleet.hosts[1]!.pool(['release', anyLease.slot, 'agent-any'])).code).toBe(0);
    expect((await fleet.hosts[0]!.pool(['release', f1.slot, 'filler-1'])).code).toBe(0);
  }, 180_000);

  it('serves /metrics (curl) with both hosts labelled, behind the token', async () => {
    const url = new URL('/metrics', served!.url).toString();
    const anon = await runCli('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', url]);
    expect(anon.stdout).toBe('401');
    const r = await runCli('curl', ['-sS', '-H', `Authorization: Bearer ${served!.token}`, url]);
    expect(r.code, r.stderr).toBe(0);
    const families = new Map(parsePrometheusTextFormat(r.stdout).map((f) => [f.name, f]));
    const value = (name: string, labels: Record<string, string>) =>
      families
        .get(name)
        ?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))?.value;
    for (const host of ['host-1', 'host-2']) {
      expect(value('wtpool_pool_slots', { host, state: 'leased' }), host).toBe('1');
      expect(value('wtpool_pool_slots', { host, state: 'all' }), host).toBe('2');
      expect(value('wtpool_pool_waiters', { host }), host).toBe('0');
      expect(value('wtpool_host_up', { host }), host).toBe('1');
      expect(Number(value('wtpool_host_heartbeat_age_seconds', { host })), host).toBeLessThan(120);
    }
    // This host's own figures carry its label.
    expect(value('wtpool_disk_bytes', { host: 'host-1' })).toBeDefined();
    // One sample per host and state: no unlabelled duplicate of the fleet's gauges.
    expect(families.get('wtpool_pool_slots')!.metrics.every((m) => m.labels?.host)).toBe(true);
  }, 60_000);
});

describe.skipIf(!HAVE_CHROMIUM)('monitor serve of a fleet: a silent host turns lost', () => {
  let redis: RedisServer;
  let fleet: Fleet;
  let browser: BrowserContext;
  let served: Started | undefined;

  beforeAll(async () => {
    redis = await startRedis({ databases: 32 });
    fleet = await makeFleet({
      hosts: 2,
      storeUrl: `${redis.url}/0`,
      redisUrl: redis.url,
      hostTtl: '3s',
      scale: '  min: 1\n  max: 1\n  step: 1',
    });
    for (const h of fleet.hosts) expect((await h.pool(['init', '--json'])).code).toBe(0);
    const r = await fleet.hosts[1]!.pool(['acquire', 'agent-away', 'task-x', '--json']);
    expect(r.code, r.stderr).toBe(0);
    browser = await launchChromium();
    served = await startServe(fleet.hosts[0]!.dir, ['--port', '0']);
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await stopServe(served);
    await fleet?.cleanup();
    await redis?.stop();
  });

  it('host-2 runs nothing: the page and /metrics show it lost, its slots lost, its lease gone', async () => {
    const page = browser.pages()[0] ?? (await browser.newPage());
    await page.goto(`${served!.url}?token=${encodeURIComponent(served!.token)}`);
    await expect.poll(() => page.locator('#conn').textContent()).toBe('live');
    // host-2 beats no more (nothing runs there); host-1's dashboard keeps host-1 alive.
    await expect
      .poll(() => page.locator('#hosts tr[data-host="host-2"]').getAttribute('data-state'), {
        timeout: 60_000,
      })
      .toBe('lost');
    expect(await page.locator('#hosts tr[data-host="host-1"]').getAttribute('data-state')).toBe(
      'live',
    );
    const row = page.locator('#slots tr[data-host="host-2"][data-slot="wt-1"]');
    expect(await row.getAttribute('data-state')).toBe('lost');
    expect(await row.textContent()).not.toContain('agent-away');
    const metrics = await fetch(new URL('/metrics', served!.url), {
      headers: { Authorization: `Bearer ${served!.token}` },
    }).then((r) => r.text());
    expect(metrics).toContain('wtpool_host_up{host="host-2"} 0');
    expect(metrics).toContain('wtpool_host_up{host="host-1"} 1');
    expect(metrics).toContain('wtpool_pool_slots{host="host-2",state="lost"} 1');
  }, 120_000);
});
