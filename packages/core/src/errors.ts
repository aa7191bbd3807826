/**
 * The one error model of worktree-pool. Every expected failure is a WtpoolError with a stable
 * code (ERR_…), an exit code from the contract in CLI.md, and a hint: the next thing to do.
 * Anything else reaching the top level is an internal error.
 */

export const ExitCode = {
  OK: 0,
  FAILURE: 1,
  USAGE: 2,
  CONFIG: 3,
  NOT_FOUND: 4,
  CONFLICT: 5,
  SERVICE_UNAVAILABLE: 6,
  CAPACITY_EXHAUSTED: 7,
  /** monitor status / leaks: the worst finding is a warning (leaks: any leak found). */
  WARNING: 20,
  /** monitor status: the worst finding is an error. */
  ERROR: 21,
  POOL_FULL: 75,
  /** Stopped by a signal after restoring state: 128 + the signal number. */
  SIGHUP: 129,
  SIGINT: 130,
  SIGTERM: 143,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/**
 * Every error code a user can meet, in one list (CLI.md documents them by family). A new code
 * is added here first, so `--json` consumers have one place to read them from.
 */
export const ERROR_CODES = [
  // generic, one per exit code
  'ERR_USAGE',
  'ERR_CONFIG',
  'ERR_NOT_FOUND',
  'ERR_CONFLICT',
  'ERR_SERVICE_UNAVAILABLE',
  'ERR_CAPACITY',
  'ERR_POOL_FULL',
  'ERR_INTERNAL',
  'ERR_INTERRUPTED',
  'ERR_ABORTED',
  // child processes (@wtpool/core runner)
  'ERR_COMMAND',
  'ERR_COMMAND_TIMEOUT',
  'ERR_GIT',
  // lock / store
  'ERR_LOCK_TIMEOUT',
  'ERR_LOCK_COMPROMISED',
  'ERR_STORE_CONFLICT',
  'ERR_STORE_CORRUPT',
  // services
  'ERR_DEPS',
  'ERR_SETUP',
  'ERR_MIGRATE',
  'ERR_HOOKS_PATH',
  'ERR_REDIS_RESTART',
  'ERR_REDIS_PROVISION',
  'ERR_REDIS_PROTOCOL',
  // pool
  'ERR_POOL',
  'ERR_POOL_DISABLED',
  'ERR_ACQUIRE',
  'ERR_SLOT_PATH',
  'ERR_BRANCH_EXISTS',
  'ERR_ENV',
  // monitor
  'ERR_DAEMON_SPAWN',
  'ERR_DAEMON_SLOW',
  'ERR_DAEMON_DIED',
  'ERR_CLEANUP',
  // tracks
  'ERR_NOT_BEADS',
  'ERR_NOT_BV_PLAN',
  'ERR_MALFORMED_LINE',
  // gates
  'ERR_NO_BASE',
  'ERR_NOT_GREEN',
  'ERR_HOOKS_INACTIVE',
  'ERR_FORMAT',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

const KNOWN_CODES: ReadonlySet<string> = new Set(ERROR_CODES);
const KNOWN_EXITS: ReadonlySet<number> = new Set(Object.values(ExitCode));

/** A code read from another process's --json (ERR_INTERNAL when it is not one of ours). */
export function toErrorCode(code: unknown): ErrorCode {
  return typeof code === 'string' && KNOWN_CODES.has(code) ? (code as ErrorCode) : 'ERR_INTERNAL';
}

/** An exit code read from another process (FAILURE when it is not one of the contract's). */
export function toExitCode(code: unknown): ExitCode {
  return typeof code === 'number' && KNOWN_EXITS.has(code) ? (code as ExitCode) : ExitCode.FAILURE;
}

export interface ErrorOptions {
  hint?: string;
  cause?: unknown;
  details?: Record<string, unknown>;
}

export class WtpoolError extends Error {
  readonly code: ErrorCode;
  readonly exitCode: ExitCode;
  readonly hint: string | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, exitCode: ExitCode, message: string, opts: ErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.code = code;
    this.exitCode = exitCode;
    this.hint = opts.hint;
    this.details = opts.details;
  }

  toJSON(): Record<string, unknown> {
    return {
      code: this.code,
      message: redact(this.message),
      ...(this.hint ? { hint: redact(this.hint) } : {}),
      ...(this.details ? { details: redactDeep(this.details) } : {}),
    };
  }
}

const make =
  (code: ErrorCode, exitCode: ExitCode) =>
  (message: string, opts?: ErrorOptions): WtpoolError =>
    new WtpoolError(code, exitCode, message, opts);

/** Bad arguments: exit 2. */
export const usageError = make('ERR_USAGE', ExitCode.USAGE);
/** Invalid configuration: exit 3. */
export const configError = make('ERR_CONFIG', ExitCode.CONFIG);
/** Unknown slot, lease, file…: exit 4. */
export const notFoundError = make('ERR_NOT_FOUND', ExitCode.NOT_FOUND);
/** Not the holder, dirty worktree, lost race: exit 5. */
export const conflictError = make('ERR_CONFLICT', ExitCode.CONFLICT);
/** PostgreSQL / Redis unreachable: exit 6. */
export const serviceUnavailableError = make(
  'ERR_SERVICE_UNAVAILABLE',
  ExitCode.SERVICE_UNAVAILABLE,
);
/** Physical capacity (Redis databases) exhausted: exit 7. */
export const capacityError = make('ERR_CAPACITY', ExitCode.CAPACITY_EXHAUSTED);
/** Pool full with --no-wait, or the wait timed out: exit 75. */
export const poolFullError = make('ERR_POOL_FULL', ExitCode.POOL_FULL);
/** Generic, expected failure: exit 1. */
export const failure = (code: ErrorCode, message: string, opts?: ErrorOptions): WtpoolError =>
  new WtpoolError(code, ExitCode.FAILURE, message, opts);

export function isWtpoolError(e: unknown): e is WtpoolError {
  return e instanceof WtpoolError;
}

/** Error code of a Node system error (ENOENT, EEXIST…), or undefined. */
export function errno(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'string'
    ? e.code
    : undefined;
}

// user:password@ in any URL-ish string; also ?password=… query parameters. A match starts only
// at the start of a run of scheme characters (the lookbehind), so a long run without `://`
// is scanned once, not once per position (linear, whatever the text).
const URL_CREDENTIALS =
  /(?<![a-z0-9+.-])([0-9+.-]*[a-z][a-z0-9+.-]*:\/\/)([^:/?#@\s]*):([^@/?#\s]*)@/gi;
const URL_PASSWORD_PARAM = /([?&](?:password|pass|pwd)=)[^&\s]*/gi;

/** Removes passwords from URLs (postgres://u:secret@h → postgres://u:***@h). */
export function redact(text: string): string {
  return text.replace(URL_CREDENTIALS, '$1$2:***@').replace(URL_PASSWORD_PARAM, '$1***');
}

/** `redact` applied to every string inside a JSON-like value (error details, --json results). */
export function redactDeep<T>(value: T): T {
  if (typeof value === 'string') return redact(value) as T;
  if (Array.isArray(value)) return value.map((v) => redactDeep(v)) as T;
  if (
    value !== null &&
    typeof value === 'object' &&
    Object.getPrototypeOf(value) === Object.prototype
  ) {
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, redactDeep(v)]),
    ) as T;
  }
  return value;
}
