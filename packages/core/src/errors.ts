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
  POOL_FULL: 75,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export interface ErrorOptions {
  hint?: string;
  cause?: unknown;
  details?: Record<string, unknown>;
}

export class WtpoolError extends Error {
  readonly code: string;
  readonly exitCode: number;
  readonly hint: string | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: string, exitCode: number, message: string, opts: ErrorOptions = {}) {
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
      ...(this.details ? { details: this.details } : {}),
    };
  }
}

const make =
  (code: string, exitCode: number) =>
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
export const failure = (code: string, message: string, opts?: ErrorOptions): WtpoolError =>
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

// user:password@ in any URL-ish string; also ?password=… query parameters.
const URL_CREDENTIALS = /([a-z][a-z0-9+.-]*:\/\/)([^:/?#@\s]*):([^@/?#\s]*)@/gi;
const URL_PASSWORD_PARAM = /([?&](?:password|pass|pwd)=)[^&\s]*/gi;

/** Removes passwords from URLs (postgres://u:secret@h → postgres://u:***@h). */
export function redact(text: string): string {
  return text.replace(URL_CREDENTIALS, '$1$2:***@').replace(URL_PASSWORD_PARAM, '$1***');
}
