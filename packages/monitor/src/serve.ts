/**
 * `monitor serve`: the live dashboard over node:http. One page (`/`, `/app.js`), the dashboard
 * document (`/api/status`), a server-sent event stream of it (`/api/events`), the chart samples
 * (`/api/history`), Prometheus metrics (`/metrics`) and a few token-guarded actions.
 *
 * Security (docs/monitor.md; serve-guard.ts decides): loopback (127.0.0.1, ::1, localhost) by
 * default. Everything beyond the page shell (`/`, `/app.js`) needs the token, on any bind: a
 * Bearer header or the cookie `/?token=…` sets (which redirects to `/`, never elsewhere); any
 * other bind needs it for the shell too. Actions need it in the Authorization header (never a
 * cookie or the query string), a same-origin request and a JSON body. On a loopback bind the
 * Host header must be a loopback name (DNS rebinding). Everything served is redacted.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { watch, type FSWatcher } from 'node:fs';
import { ExitCode, conflictError, isWtpoolError, notFoundError } from '@wtpool/core';
import type { LoadedConfig } from '@wtpool/config';
import { Dashboard, type DashboardDoc } from './dashboard.js';
import { History, historyFile, readHistory, toSample } from './history.js';
import { prometheusText } from './metrics.js';
import { APP_JS, PAGE_HTML } from './page.js';
import { poolOf } from './pool-access.js';
import {
  BodyError,
  bearerToken,
  checkToken,
  cookieName,
  cookieToken,
  crossOrigin,
  defaultToken,
  readJsonBody,
  redactText,
  redactView,
  tokenMatcher,
} from './serve-guard.js';

export const LOOPBACK_HOSTS = new Set(['127.0.0.1', '::1', 'localhost']);
export const isLoopback = (host: string) => LOOPBACK_HOSTS.has(host);

export interface ServeOptions {
  port?: number;
  host?: string;
  token?: string | null;
  /** How often the document is rebuilt and pushed (default 1 s). */
  tickMs?: number;
  /** How often a history sample is kept (default 10 s). */
  sampleEveryMs?: number;
  now?: () => number;
}

export interface Served {
  url: string;
  host: string;
  port: number;
  token: string;
  /** Whether reads need the token: always (D324); the page shell too on a non-loopback bind. */
  tokenRequired: boolean;
  close(): Promise<void>;
}

function hostName(header: string | undefined): string {
  if (!header) return '';
  if (header.startsWith('[')) return header.slice(1, header.indexOf(']'));
  return header.split(':')[0]!;
}

const SECURITY_HEADERS = {
  'Cache-Control': 'no-store',
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Content-Security-Policy':
    "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
};

function send(res: ServerResponse, code: number, type: string, body: string): void {
  res.writeHead(code, { ...SECURITY_HEADERS, 'Content-Type': type });
  res.end(body);
}
const sendJson = (res: ServerResponse, code: number, doc: unknown) =>
  send(res, code, 'application/json; charset=utf-8', JSON.stringify(doc));

/** The only actions: through the pool's public API, never anything else. */
async function runAction(
  loaded: LoadedConfig,
  name: string,
  body: Record<string, unknown>,
): Promise<unknown> {
  const pool = poolOf(loaded);
  const slotOf = async () => {
    const slot = typeof body.slot === 'string' ? body.slot : '';
    const st = await pool.getStatus({ sweep: false });
    const s = st.slots.find((x) => x.id === slot);
    if (!s?.lease) throw notFoundError(`${slot || '(no slot)'} has no lease`);
    return { slot: s.id, agent: s.lease.agent };
  };
  switch (name) {
    case 'release':
      // With rescue: uncommitted work is saved to a rescue ref before the reset.
      return pool.release({ ...(await slotOf()), force: true });
    case 'heartbeat':
      return pool.heartbeat(await slotOf());
    case 'scale-out':
      return pool.scaleOut();
    case 'scale-in':
      return pool.scaleIn();
    case 'cleanup-dry-run': {
      const [{ detectLeaks }, { cleanupLeaks }] = await Promise.all([
        import('./leaks.js'),
        import('./cleanup.js'),
      ]);
      const report = await detectLeaks(loaded);
      return cleanupLeaks(loaded, { dryRun: true, leaks: report.leaks });
    }
    default:
      throw notFoundError(`unknown action ${name}`, {
        hint: 'actions: release, heartbeat, scale-out, scale-in, cleanup-dry-run',
      });
  }
}

export async function serve(loaded: LoadedConfig, opts: ServeOptions = {}): Promise<Served> {
  const host = opts.host ?? '127.0.0.1';
  const shellNeedsToken = !isLoopback(host);
  const token = opts.token
    ? checkToken(opts.token, '--token')
    : await defaultToken(loaded.repo.stateDir);
  const tokenOk = tokenMatcher(token);
  let cookie = cookieName(opts.port ?? 7420);
  const now = opts.now ?? Date.now;
  const dashboard = new Dashboard(loaded, { now });
  const history = new History(historyFile(loaded.repo.stateDir));
  const clients = new Set<ServerResponse>();
  let lastJson = '';
  let building: Promise<DashboardDoc> | null = null;
  let lastSampleAt = 0;

  const build = (): Promise<DashboardDoc> =>
    (building ??= dashboard
      .build()
      .then(async (raw) => {
        // Logs, tasks, messages and URLs can hold secrets: nothing leaves unredacted.
        const doc = redactView(raw);
        lastJson = JSON.stringify(doc);
        if (now() - lastSampleAt >= (opts.sampleEveryMs ?? 10_000)) {
          lastSampleAt = now();
          await history.append(toSample(doc.monitor));
        }
        return doc;
      })
      .finally(() => (building = null)));

  const tick = async () => {
    try {
      await build();
      for (const c of clients) c.write(`event: status\ndata: ${lastJson}\n\n`);
    } catch (e) {
      for (const c of clients)
        c.write(
          `event: failure\ndata: ${JSON.stringify({ message: redactText(String((e as Error).message)) })}\n\n`,
        );
    }
  };

  const server = createServer((req, res) => {
    void handle(req, res).catch((e: unknown) => {
      if (res.headersSent) return res.end();
      if (e instanceof BodyError) return sendJson(res, e.status, { error: e.message });
      if (!isWtpoolError(e)) {
        // A bug: the details go to the server's stderr, the client gets a generic message.
        process.stderr.write(`monitor serve: ${redactText(String((e as Error)?.stack ?? e))}\n`);
        return sendJson(res, 500, { error: 'internal error' });
      }
      sendJson(res, e.exitCode === ExitCode.NOT_FOUND ? 404 : 409, {
        error: redactText(e.message),
        hint: e.hint === undefined ? undefined : redactText(e.hint),
      });
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (!shellNeedsToken && !isLoopback(hostName(req.headers.host)))
      return sendJson(res, 403, { error: 'the Host header must name a loopback address' });
    const header = bearerToken(req);
    const authed = tokenOk(header ?? cookieToken(req, cookie));
    const reading = req.method === 'GET' || req.method === 'HEAD';
    if (req.method === 'GET' && url.pathname === '/' && url.searchParams.has('token')) {
      // The printed URL: the token becomes a cookie, then the clean page. The target is fixed
      // (never the request's path: `/.//evil.example/?token=…` must not leave the origin).
      if (!tokenOk(url.searchParams.get('token')))
        return sendJson(res, 401, { error: 'wrong token' });
      res.writeHead(303, {
        ...SECURITY_HEADERS,
        'Set-Cookie': `${cookie}=${encodeURIComponent(token)}; HttpOnly; SameSite=Strict; Path=/`,
        Location: '/',
      });
      return void res.end();
    }
    const shell = reading && (url.pathname === '/' || url.pathname === '/app.js');
    if (!authed && !(shell && !shellNeedsToken))
      return sendJson(res, 401, {
        error:
          'a token is required (Authorization: Bearer …, or open the URL `monitor serve` printed)',
      });
    if (req.method === 'POST' && url.pathname.startsWith('/api/actions/')) {
      if (!tokenOk(header))
        return sendJson(res, 401, { error: 'actions need the token in an Authorization header' });
      const foreign = crossOrigin(req);
      if (foreign) return sendJson(res, 403, { error: `cross-origin action refused: ${foreign}` });
      const result = await runAction(
        loaded,
        url.pathname.slice('/api/actions/'.length),
        await readJsonBody(req),
      );
      void tick();
      return sendJson(res, 200, { ok: true, result });
    }
    if (!reading)
      return sendJson(res, 405, { error: 'read-only: GET, or POST /api/actions/… with the token' });
    switch (url.pathname) {
      case '/':
        return send(res, 200, 'text/html; charset=utf-8', PAGE_HTML);
      case '/app.js':
        return send(res, 200, 'text/javascript; charset=utf-8', APP_JS);
      case '/api/status': {
        const doc = await build();
        return sendJson(res, 200, { ...doc, actions: authed });
      }
      case '/api/history':
        return sendJson(res, 200, {
          samples: await readHistory(history.file, now() - 3_600_000),
        });
      case '/metrics': {
        const doc = await build();
        return send(
          res,
          200,
          'text/plain; version=0.0.4; charset=utf-8',
          prometheusText(
            doc.metrics,
            doc.monitor,
            doc.fleet && 'hosts' in doc.fleet ? doc.fleet : null,
          ),
        );
      }
      case '/api/events': {
        res.writeHead(200, {
          ...SECURITY_HEADERS,
          'Content-Type': 'text/event-stream',
          Connection: 'keep-alive',
        });
        // Reconnect quickly after a server restart.
        // The page's actions send the token in a header: it learns it here, from a stream only
        // its own origin can read (no CORS), already authenticated by its cookie.
        res.write(
          `retry: 1000\nevent: hello\ndata: ${JSON.stringify({ actions: authed, token })}\n\n`,
        );
        if (lastJson) res.write(`event: status\ndata: ${lastJson}\n\n`);
        clients.add(res);
        req.on('close', () => clients.delete(res));
        return;
      }
      default:
        return sendJson(res, 404, { error: `no such page: ${url.pathname}` });
    }
  }

  await build();
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(
        e.code === 'EADDRINUSE'
          ? conflictError(`port ${opts.port} on ${host} is in use`, {
              hint: 'pick another with --port, or --port 0 for any free port',
            })
          : e,
      ),
    );
    server.listen(opts.port ?? 7420, host, resolve);
  });
  const timer = setInterval(() => void tick(), opts.tickMs ?? 1000);
  // A registry or event-log write pushes a document at once, not at the next tick.
  let soon: NodeJS.Timeout | null = null;
  let watcher: FSWatcher | null = null;
  try {
    watcher = watch(loaded.repo.stateDir, () => {
      soon ??= setTimeout(() => {
        soon = null;
        void tick();
      }, 50);
    });
    watcher.on('error', () => watcher?.close());
  } catch {
    // no state dir yet (before `pool init`): the ticks still run
  }
  const port = (server.address() as AddressInfo).port;
  cookie = cookieName(port);
  const shown = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${shown === '0.0.0.0' ? '127.0.0.1' : shown}:${port}/`,
    host,
    port,
    token,
    tokenRequired: true,
    async close() {
      clearInterval(timer);
      if (soon) clearTimeout(soon);
      watcher?.close();
      for (const c of clients) c.end();
      // close() waits for every connection to end: drop them first (a browser keeps its
      // sockets alive), or a SIGTERM'd server can hang until the client goes away.
      const closed = new Promise<void>((r) => server.close(() => r()));
      server.closeAllConnections();
      await closed;
    },
  };
}
