/**
 * The dashboard's guards (docs/monitor.md, "Security"; D324–D326): the token (its minimum
 * length, where a request carries it, exact constant-time comparison), the same-origin check of
 * actions, JSON body parsing (400/413/415 with generic messages) and the redaction of everything
 * the dashboard serves. serve.ts routes; this module decides.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { IncomingMessage } from 'node:http';
import { redact, usageError } from '@wtpool/core';
import { createExclusive } from '@wtpool/lock';

/** A token shorter than this is refused, whatever the bind (a short one is guessed online). */
export const TOKEN_MIN_LENGTH = 16;
const TOKEN_MAX_LENGTH = 512;
// Visible ASCII only: what a header, a cookie and a shell carry unchanged.
const TOKEN_CHARS = /^[\x21-\x7e]+$/;

/** Checks a token given by --token or WTPOOL_MONITOR_TOKEN: a usage error (exit 2) if weak. */
export function checkToken(token: string, from: string): string {
  if (token.length < TOKEN_MIN_LENGTH || token.length > TOKEN_MAX_LENGTH) {
    throw usageError(
      `${from} must be ${TOKEN_MIN_LENGTH} to ${TOKEN_MAX_LENGTH} characters, got ${token.length}`,
      { hint: 'leave it out to use a generated one, or e.g. `openssl rand -base64 24`' },
    );
  }
  if (!TOKEN_CHARS.test(token)) {
    throw usageError(`${from} must be visible ASCII characters (no spaces or control characters)`);
  }
  return token;
}

/**
 * The token when none is given: generated once per repository and kept in the state dir
 * (`dashboard-token`, mode 0600, so only the pool's user reads it), so a restarted server keeps
 * the page's cookie valid. Without a state dir yet (before `pool init`) it lives in memory only.
 */
export async function defaultToken(stateDir: string): Promise<string> {
  const file = path.join(stateDir, 'dashboard-token');
  const fresh = randomBytes(24).toString('base64url');
  if (!existsSync(stateDir)) return fresh;
  await createExclusive(file, fresh);
  const kept = readFileSync(file, 'utf8').trim();
  return kept.length >= TOKEN_MIN_LENGTH && TOKEN_CHARS.test(kept) ? kept : fresh;
}

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/** Exact comparison in constant time (both sides hashed: no length leak, no trimming). */
export function tokenMatcher(token: string): (given: string | null) => boolean {
  const want = digest(token);
  return (given) => given !== null && timingSafeEqual(digest(given), want);
}

/** The cookie the page gets from `/?token=…`; per port, as cookies ignore ports. */
export const cookieName = (port: number) => `wtpool_token_${port}`;

/** The token of an `Authorization: Bearer <token>` header, taken exactly as sent. */
export function bearerToken(req: IncomingMessage): string | null {
  const auth = req.headers.authorization;
  return auth !== undefined && auth.startsWith('Bearer ') ? auth.slice('Bearer '.length) : null;
}

export function cookieToken(req: IncomingMessage, name: string): string | null {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq !== -1 && part.slice(0, eq).trim() === name) {
      try {
        return decodeURIComponent(part.slice(eq + 1).trim());
      } catch {
        return null;
      }
    }
  }
  return null;
}

/**
 * Whether a state-changing request comes from the dashboard's own origin: a browser sends
 * `Origin` on every POST (and `Sec-Fetch-Site`); a cross-site form or fetch carries another
 * origin (or `null`). A client without either (curl) is not a browser and must hold the token
 * in its header anyway. Returns what is wrong, or null.
 */
export function crossOrigin(req: IncomingMessage): string | null {
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') {
    return `a ${site} request`;
  }
  const origin = req.headers.origin;
  if (origin === undefined) return null;
  const host = req.headers.host;
  if (!host || origin !== `http://${host}`) return `Origin ${origin} is not this dashboard's`;
  return null;
}

export class BodyError {
  constructor(
    readonly status: 400 | 413 | 415,
    readonly message: string,
  ) {}
}

const BODY_MAX = 16_384;

/** An action's body: `application/json` (parameters allowed), at most 16 kB, a JSON object. */
export async function readJsonBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json') {
    throw new BodyError(415, 'actions take Content-Type: application/json');
  }
  const chunks: Buffer[] = [];
  let len = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    len += c.length;
    if (len > BODY_MAX) throw new BodyError(413, 'the body is too large');
    chunks.push(c);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (!text.trim()) return {};
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new BodyError(400, 'the body must be a JSON object');
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new BodyError(400, 'the body must be a JSON object');
  }
  return doc as Record<string, unknown>;
}

// Secrets as they appear in logs and free text, beyond core's URL passwords: assignments to a
// secret-looking name (PGPASSWORD=…, api_key: …, "token": "…"), Bearer credentials, private key
// blocks and the well-known token formats (GitHub, AWS, Slack, JWT).
const SECRET_ASSIGNMENT =
  /((?:[A-Za-z0-9_.-]*(?:passw(?:or)?d|passwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credentials?|auth[_-]?token|authorization)[A-Za-z0-9_.-]*)["']?\s*[=:]\s*)("[^"]*"|'[^']*'|[^\s,;&"']+)/gi;
const BEARER = /\b(Bearer|Basic|Token)\s+[A-Za-z0-9._~+/=-]{6,}/g;
const PRIVATE_KEY =
  /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)/g;
const KNOWN_TOKENS =
  /\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|AKIA[0-9A-Z]{16}|xox[abposr]-[A-Za-z0-9-]{10,}|eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})\b/g;

/** Redacts one text the dashboard shows (a log line, a task, a message). */
export function redactText(text: string, found?: Set<string>): string {
  const keep = (value: string) => {
    const v = value.replace(/^["']|["']$/g, '');
    if (found && v.length >= 6) found.add(v);
  };
  return redact(text)
    .replace(PRIVATE_KEY, '-----BEGIN PRIVATE KEY----- *** (redacted)')
    .replace(BEARER, (m: string, scheme: string) => {
      keep(m.slice(scheme.length).trim());
      return `${scheme} ***`;
    })
    .replace(SECRET_ASSIGNMENT, (_m: string, name: string, value: string) => {
      if (value !== '***') keep(value);
      return `${name}***`;
    })
    .replace(KNOWN_TOKENS, (m: string) => {
      keep(m);
      return '***';
    });
}

const slugOf = (s: string) =>
  s
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');

function mapStrings(value: unknown, f: (s: string) => string): unknown {
  if (typeof value === 'string') return f(value);
  if (Array.isArray(value)) return value.map((v) => mapStrings(v, f));
  if (
    value !== null &&
    typeof value === 'object' &&
    Object.getPrototypeOf(value) === Object.prototype
  ) {
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, mapStrings(v, f)]),
    );
  }
  return value;
}

/**
 * Every string of a document redacted (object keys are the program's own, kept). A secret found
 * in one field is also removed wherever else it appears, as written or slugged (a task's
 * password reappears in its lease branch, `pool/wt-1/deploy-with-pgpassword-<it>`).
 */
export function redactView<T>(value: T): T {
  const found = new Set<string>();
  const first = mapStrings(value, (s) => redactText(s, found));
  if (!found.size) return first as T;
  const needles = [...found].flatMap((v) => [v, slugOf(v)]).filter((n) => n.length >= 6);
  return mapStrings(first, (s) => needles.reduce((t, n) => t.split(n).join('***'), s)) as T;
}
